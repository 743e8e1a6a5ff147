import type { DuckDBConnection, DuckDBPreparedStatement } from '@duckdb/node-api';
import { DorsalError } from '../../errors.js';

/** A query the analytics refuse: not one read-only statement, or malformed. Answered with 400. */
export class QueryRefusedError extends DorsalError {
  declare readonly code: 'DORSAL_QUERY_REFUSED';

  constructor(message: string, options?: { cause?: unknown }) {
    super('DORSAL_QUERY_REFUSED', message, options);
  }
}

/** A query stopped at its time limit (answered with 400: the caller can narrow it). */
export class QueryTimeoutError extends DorsalError {
  declare readonly code: 'DORSAL_QUERY_TIMEOUT';

  constructor(message: string) {
    super('DORSAL_QUERY_TIMEOUT', message);
  }
}

/**
 * A query bounded whole (see `QueryScope.timeLimit`) whose time limit passed before its SQL had its
 * share of it: the lake was still being read for it (its blocks no query had read before decoded),
 * or queries of the same scope asked before it still ran. What was read goes on and is kept: ask
 * again in a moment (answered with 503 and `Retry-After`).
 */
export class QueryNotReadyError extends DorsalError {
  declare readonly code: 'DORSAL_QUERY_NOT_READY';

  constructor(message: string) {
    super('DORSAL_QUERY_NOT_READY', message);
  }
}

/**
 * A query stopped before its end because its `signal` aborted: its client went away, or the server
 * that ran it is stopping (answered with 503: retry later).
 */
export class QueryCancelledError extends DorsalError {
  declare readonly code: 'DORSAL_QUERY_CANCELLED';

  constructor(message: string) {
    super('DORSAL_QUERY_CANCELLED', message);
  }
}

/** DuckDB's statement types (duckdb.h), by number: what a refusal names. */
const STATEMENT_TYPES: Readonly<Record<number, string>> = {
  0: 'an invalid statement',
  1: 'SELECT',
  2: 'INSERT',
  3: 'UPDATE',
  4: 'EXPLAIN',
  5: 'DELETE',
  6: 'PREPARE',
  7: 'CREATE',
  8: 'EXECUTE',
  9: 'ALTER',
  10: 'a transaction statement',
  11: 'COPY',
  12: 'ANALYZE',
  13: 'a variable SET',
  14: 'CREATE FUNCTION',
  15: 'DROP',
  16: 'EXPORT',
  17: 'PRAGMA',
  18: 'VACUUM',
  19: 'CALL',
  20: 'SET',
  21: 'LOAD',
  22: 'a relation',
  23: 'an extension statement',
  24: 'a logical plan',
  25: 'ATTACH',
  26: 'DETACH',
  27: 'a multi-statement',
};
const SELECT = 1;
const EXPLAIN_TYPE = 4;

/**
 * Refuses anything but one SELECT statement (a query, `FROM t`, `VALUES`, `DESCRIBE`, `SHOW`,
 * `SUMMARIZE`, set operations, or `EXPLAIN` of one), naming what it got, with DuckDB's own parser: several
 * statements, or a statement that writes or changes the session (INSERT, UPDATE, DELETE, CREATE,
 * COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA, EXPLAIN ANALYZE…). A SELECT cannot read files outside
 * the analytics' own directory either: the engine runs with external access off.
 *
 * Two steps: `parseOne`, before the tables exist (one statement, which `json_serialize_sql`
 * accepts only if it is a SELECT, without binding it), and `checkBound`, on the connection that
 * runs it (its type once DuckDB binds it to the tables: a second fence, in case the two ever
 * disagree).
 */
export async function parseOne(connection: DuckDBConnection, sql: string): Promise<ParsedQuery> {
  if (typeof sql !== 'string' || isEmptyQuery(sql)) throw emptyQuery();
  let statements: Awaited<ReturnType<DuckDBConnection['extractStatements']>>;
  try {
    statements = await connection.extractStatements(sql);
  } catch (error) {
    throw new QueryRefusedError(`the query does not parse: ${messageOf(error)}`, { cause: error });
  }
  // A text of comments and semicolons alone holds no statement (DuckDB's node binding threw
  // 'Error in native callback' for it, which said nothing of why).
  if (statements.count === 0) throw emptyQuery();
  if (statements.count !== 1) {
    throw new QueryRefusedError(`one statement per query, got ${statements.count}`);
  }
  // EXPLAIN (without ANALYZE, which runs the statement) of a SELECT shows its plan.
  const explained = EXPLAIN.exec(sql);
  const statement = explained === null ? sql : sql.slice(explained[0].length);
  const serialized = await connection.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [statement]);
  const parse = JSON.parse(String(serialized.getRowsJson()[0]?.[0])) as {
    error?: boolean;
    error_message?: string;
  };
  if (parse.error === true) {
    if (parse.error_message?.startsWith('Only SELECT') === true) throw readOnly(firstKeyword(statement));
    throw new QueryRefusedError(`the query does not parse: ${parse.error_message ?? 'unknown error'}`);
  }
  const tables = new Set<string>();
  const named = new Set<string>();
  /** Names referenced with a schema or a catalog (`main.x`, `pg_catalog.x`): never a CTE's. */
  const qualified = new Set<string>();
  /** The common table expressions a query defines, by name (lower case), with their bodies. */
  const ctes = new Map<string, unknown[]>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
    } else if (typeof node === 'object' && node !== null) {
      const entry = node as Record<string, unknown>;
      if (entry.type === 'BASE_TABLE' && typeof entry.table_name === 'string') {
        if (isQualified(entry)) qualified.add(entry.table_name);
        else named.add(entry.table_name);
        tables.add(entry.table_name.toLowerCase());
      }
      for (const [name, body] of cteEntries(entry)) {
        const bodies = ctes.get(name);
        if (bodies === undefined) ctes.set(name, [body]);
        else bodies.push(body);
      }
      if (entry.type === 'TABLE_FUNCTION') refuseTableFunction(entry.function);
      if (entry.class === 'FUNCTION') refuseFunction(entry);
      for (const value of Object.values(entry)) walk(value);
    }
  };
  walk(parse);
  // A name a CTE defines is let through if a dot is its only file-like character (`"a.b"`): one
  // with a path's or a glob's (`"/x/*.parquet"`) could name the file outside the CTE's scope.
  for (const name of named) {
    const cte = ctes.has(name.toLowerCase());
    refuseFileAsTable(name, cte);
    if (!cte) refuseHiddenTable(name);
  }
  // A CTE of the same name does not let a qualified reference through: `WITH pg_settings AS
  // (…) SELECT … FROM pg_catalog.pg_settings` reads the catalog, not the CTE.
  for (const name of qualified) {
    refuseFileAsTable(name, false);
    refuseHiddenTable(name);
  }
  refuseInlinedBlowUp(parse, ctes);
  return { tables };
}

/** Whether a table reference names a schema or a catalog: then it is never a CTE's. */
function isQualified(entry: Record<string, unknown>): boolean {
  const given = (value: unknown) => typeof value === 'string' && value !== '';
  return given(entry.schema_name) || given(entry.catalog_name);
}

/** The common table expressions a parsed node defines: their names (lower case) and bodies. */
function* cteEntries(entry: Record<string, unknown>): Generator<[string, unknown]> {
  const map = (entry.cte_map as { map?: unknown } | undefined)?.map;
  if (!Array.isArray(map)) return;
  for (const cte of map) {
    const { key, value } = (cte ?? {}) as { key?: unknown; value?: unknown };
    if (typeof key === 'string') yield [key.toLowerCase(), value];
  }
}

/**
 * Tables a query may name (besides its own common table expressions): the views and tables
 * `createViews` makes, and `stream_<name>`, one per spine stream. Another is refused by name: the
 * engine's own catalogs as tables (`information_schema.views`, `pg_settings`, `sqlite_master`,
 * `duckdb_views`…) show the views' SQL, which names the partitions' files, or the engine's
 * settings, and the internal `_instrumented_files` holds those files' paths. `_actors` and
 * `_stream_names` hold what records name, and the analytics' own questions join them.
 */
const TABLES = new Set([
  'processes',
  'streams',
  'blocks',
  'messages',
  'timings',
  'timing_records',
  'log_entries',
  'measures',
  'thread_spans',
  'losses',
  'run_counts',
  'actor_counts',
  'timing_reads',
  'persister_accounts',
  'unreadable_blocks',
  'replay_diffs',
  'replay_diff_streams',
  'replay_divergences',
  '_actors',
  '_stream_names',
]);

function refuseHiddenTable(name: string): void {
  const lower = name.toLowerCase();
  if (TABLES.has(lower) || lower.startsWith('stream_')) return;
  throw new QueryRefusedError(
    `the query names the table '${name.length > 80 ? `${name.slice(0, 79)}…` : name}', which is not one of the analytics' tables: ${[...TABLES].join(', ')} and stream_<name>`,
  );
}

/**
 * Scalar functions a query may not call: what they show is the server's (`getenv`, where DuckDB
 * has it: its environment), or what they do changes the engine (`write_log`). `current_setting`
 * shows only the settings of `SETTINGS`, named as a constant: the others name the server's
 * directories (the cache, the spill directory with its host and process id, the home directory).
 */
const REFUSED_FUNCTIONS = new Set(['getenv', 'write_log']);
/** Settings `current_setting` may show: how much DuckDB may hold and use, and how it shows times. */
const SETTINGS = new Set(['memory_limit', 'max_memory', 'threads', 'worker_threads', 'timezone', 'calendar']);

function refuseFunction(entry: Record<string, unknown>): void {
  const name = entry.function_name;
  if (typeof name !== 'string') return;
  const lower = name.toLowerCase();
  if (lower === 'current_setting') {
    const [setting, ...rest] = Array.isArray(entry.children) ? (entry.children as unknown[]) : [];
    const value = (setting as { class?: unknown; value?: { value?: unknown } } | undefined)?.value?.value;
    const constant = (setting as { class?: unknown } | undefined)?.class === 'CONSTANT';
    if (rest.length === 0 && constant && typeof value === 'string' && SETTINGS.has(value.toLowerCase()))
      return;
    throw new QueryRefusedError(
      `the query calls current_setting(${constant && typeof value === 'string' ? `'${value.slice(0, 80)}'` : '…'}): a query may read only ${[...SETTINGS].join(', ')}, each named as a constant (the others name the server's directories)`,
    );
  }
  if (!REFUSED_FUNCTIONS.has(lower)) return;
  throw new QueryRefusedError(
    `the query calls the function '${name}', which shows the server's environment or changes the engine: ${[...REFUSED_FUNCTIONS].join(', ')} are refused`,
  );
}

/**
 * The most table references a query may make, its common table expressions inlined. A CTE that
 * DuckDB inlines (`NOT MATERIALIZED`; the parse does not say which) is bound again at each of its
 * references, so CTEs that each name the one before twice bind 2^n tables: 1.2 KB of SQL bound for
 * minutes, holding one of libuv's threads (which the server's file I/O shares) past any time
 * limit, as DuckDB checks its interrupt ever more seldom in such a binding (measured, DuckDB
 * 1.5: 2^17 references heeded an interrupt 0.2 s late, 2^19 2.4 s, 2^21 12 s); a reference to a
 * view binds every view under it (`messages`: a view per stream), and 2^13 references of
 * `messages` bound for minutes, heeding no interrupt. 256 bind over `messages` in about a second
 * and heed the interrupt at once, so the query's time limit bounds them; a query written by hand
 * names a few dozen (dorsal's own, about 60).
 */
export const MAX_INLINED_TABLES = 256;

function refuseInlinedBlowUp(parse: unknown, ctes: ReadonlyMap<string, readonly unknown[]>): void {
  if (ctes.size === 0) return;
  const weights = new Map<string, number>();
  /** References of `node`, each CTE's counted as its body's (the largest of a name's, if several). */
  const weigh = (node: unknown): number => {
    if (Array.isArray(node)) return node.reduce((n: number, item) => n + weigh(item), 0);
    if (typeof node !== 'object' || node === null) return 0;
    const entry = node as Record<string, unknown>;
    let weight = 0;
    if (entry.type === 'BASE_TABLE' && typeof entry.table_name === 'string') {
      const name = entry.table_name.toLowerCase();
      const bodies = isQualified(entry) ? undefined : ctes.get(name);
      if (bodies === undefined) weight = 1;
      else {
        // Itself and what its body names, bound again here if DuckDB inlines it.
        let known = weights.get(name);
        if (known === undefined) {
          // A recursive CTE names itself: that reference counts once.
          weights.set(name, 1);
          known = 1 + Math.max(...bodies.map(weigh));
          weights.set(name, known);
        }
        weight = known;
      }
    }
    for (const [key, value] of Object.entries(entry)) {
      // A CTE's body counts where it is referenced.
      if (key !== 'cte_map') weight += weigh(value);
      if (weight > MAX_INLINED_TABLES) break;
    }
    return Math.min(weight, MAX_INLINED_TABLES + 1);
  };
  // The CTEs no reference reaches are bound once each at most: as many as the text writes.
  if (weigh(parse) <= MAX_INLINED_TABLES) return;
  throw new QueryRefusedError(
    `the query's common table expressions, inlined, name more than ${MAX_INLINED_TABLES} tables (CTEs that each name the one before several times): binding it would take too long; materialize them, or name fewer`,
  );
}

/**
 * The table functions a query may call: generators, and the engine's catalogs of what a query
 * can name (tables, columns, functions, types, schemas, keywords, constraints). Others are
 * refused, however deep in the query: DuckDB's `enable_logging`, `enable_profiling`,
 * `checkpoint`, `query` and the like change the engine for every query, or run SQL of their own
 * (logging to a directory the engine may not write aborted the whole server); the files a query
 * reads are the views'; and the other catalogs show the server's paths and settings
 * (`duckdb_settings`, `duckdb_extensions`, `duckdb_databases`, `duckdb_temporary_files`,
 * `duckdb_views`, whose SQL names the partitions' files, `duckdb_secrets`, `pragma_…`).
 */
const TABLE_FUNCTIONS = new Set([
  'range',
  'generate_series',
  'unnest',
  'json_each',
  'json_tree',
  'pragma_table_info',
  'duckdb_tables',
  'duckdb_columns',
  'duckdb_functions',
  'duckdb_types',
  'duckdb_schemas',
  'duckdb_keywords',
  'duckdb_constraints',
]);

/**
 * Characters of a file's path, a glob or a URL, which no view's name holds: DuckDB reads a table
 * named `'dir/*.parquet'` or `"x.csv"` as that file (a replacement scan), past the table-function
 * check. A dot alone (`"x.csv"`) is one too, but not in the name of a CTE (`"a.b"`).
 */
const PATH_LIKE = /[/\\:*?[\]{}~]/;

function refuseFileAsTable(name: string, cte: boolean): void {
  if (!PATH_LIKE.test(name) && (cte || !name.includes('.'))) return;
  throw new QueryRefusedError(
    `the query names a file, not a table ('${name.length > 80 ? `${name.slice(0, 79)}…` : name}'): a query reads files only through the views`,
  );
}

function refuseTableFunction(call: unknown): void {
  const name =
    typeof call === 'object' && call !== null
      ? (call as { function_name?: unknown }).function_name
      : undefined;
  const lower = typeof name === 'string' ? name.toLowerCase() : '';
  if (TABLE_FUNCTIONS.has(lower)) return;
  throw new QueryRefusedError(
    `the query calls the table function ${typeof name === 'string' ? `'${name}'` : '(unnamed)'}: a query may call ${[...TABLE_FUNCTIONS].join(', ')} only (the others read files, change the engine, or show the server's paths and settings)`,
  );
}

/** What the parse says of a query: the tables (and common table expressions) it names. */
export interface ParsedQuery {
  readonly tables: ReadonlySet<string>;
}

/**
 * The second step of `parseOne`: the statement, bound to the tables of `connection`, is a SELECT.
 * Returns it prepared, to be run as it is: binding it again (its views' Parquet files among them)
 * would cost a query as much once more.
 */
export async function checkBound(
  connection: DuckDBConnection,
  sql: string,
): Promise<DuckDBPreparedStatement> {
  let prepared: DuckDBPreparedStatement;
  try {
    const statements = await connection.extractStatements(sql);
    if (statements.count !== 1) throw readOnly(`${statements.count} statements`);
    prepared = await statements.prepare(0);
  } catch (error) {
    if (error instanceof QueryRefusedError) throw error;
    throw new QueryRefusedError(messageOf(error), { cause: error });
  }
  const type = prepared.statementType;
  if (type === SELECT || (type === EXPLAIN_TYPE && EXPLAIN.test(sql))) return prepared;
  prepared.destroySync();
  throw readOnly(STATEMENT_TYPES[type] ?? `statement type ${type}`);
}

/** `EXPLAIN` not followed by `ANALYZE` (which would run the statement), at the start of a query. */
const EXPLAIN = /^\s*EXPLAIN\s+(?!ANALY[SZ]E\b)/i;

function emptyQuery(): QueryRefusedError {
  return new QueryRefusedError('the query is empty (it holds no statement, only comments or nothing)');
}

/**
 * Whether `sql` holds nothing but white space, semicolons and comments (`-- …`, and `/* … *\/`,
 * nested as DuckDB nests them). Only decides the refusal's words: a text this finds not empty is
 * parsed by DuckDB, which says what it holds.
 */
export function isEmptyQuery(sql: string): boolean {
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === ';' || /\s/.test(c)) i++;
    else if (sql.startsWith('--', i)) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end + 1;
    } else if (sql.startsWith('/*', i)) {
      let depth = 0;
      do {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
      } while (depth > 0 && i < sql.length);
      // Unterminated: DuckDB's refusal says so.
      if (depth > 0) return false;
    } else return false;
  }
  return true;
}

function readOnly(what: string): QueryRefusedError {
  return new QueryRefusedError(`the analytics are read-only: only SELECT is answered, got ${what}`);
}

/** The statement's first word, upper case (what a refusal names). */
function firstKeyword(sql: string): string {
  const word = /^[\s(]*(?:--[^\n]*\n\s*|\/\*[\s\S]*?\*\/\s*)*([A-Za-z]+)/.exec(sql)?.[1];
  return word === undefined ? 'a statement that is not a SELECT' : word.toUpperCase();
}

/** The first line of an error's message, bounded: DuckDB's messages can quote the whole query. */
export function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = text.split('\n')[0] ?? '';
  return line.length > 500 ? `${line.slice(0, 500)}…` : line;
}
