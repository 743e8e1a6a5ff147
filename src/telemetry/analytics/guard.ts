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
  if (typeof sql !== 'string' || sql.trim().length === 0) throw new QueryRefusedError('the query is empty');
  let statements: Awaited<ReturnType<DuckDBConnection['extractStatements']>>;
  try {
    statements = await connection.extractStatements(sql);
  } catch (error) {
    throw new QueryRefusedError(`the query does not parse: ${messageOf(error)}`, { cause: error });
  }
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
  /** The common table expressions a query defines: a name of theirs may hold a dot. */
  const ctes = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
    } else if (typeof node === 'object' && node !== null) {
      const entry = node as Record<string, unknown>;
      if (entry.type === 'BASE_TABLE' && typeof entry.table_name === 'string') {
        named.add(entry.table_name);
        tables.add(entry.table_name.toLowerCase());
      }
      const map = (entry.cte_map as { map?: unknown } | undefined)?.map;
      if (Array.isArray(map)) {
        for (const cte of map) {
          const key = (cte as { key?: unknown } | null)?.key;
          if (typeof key === 'string') ctes.add(key.toLowerCase());
        }
      }
      if (entry.type === 'TABLE_FUNCTION') refuseTableFunction(entry.function);
      for (const value of Object.values(entry)) walk(value);
    }
  };
  walk(parse);
  // A name a CTE defines is let through if a dot is its only file-like character (`"a.b"`): one
  // with a path's or a glob's (`"/x/*.parquet"`) could name the file outside the CTE's scope.
  for (const name of named) refuseFileAsTable(name, ctes.has(name.toLowerCase()));
  return { tables };
}

/**
 * The table functions a query may call: generators, and the engine's read-only catalogs. Others
 * are refused, however deep in the query: DuckDB's `enable_logging`, `enable_profiling`,
 * `checkpoint`, `query` and the like change the engine for every query, or run SQL of their own
 * (logging to a directory the engine may not write aborted the whole server), and the files a
 * query reads are the views'.
 */
const TABLE_FUNCTIONS = new Set([
  'range',
  'generate_series',
  'unnest',
  'json_each',
  'json_tree',
  'pragma_table_info',
]);
/** Catalogs (`duckdb_…`) left out: what they show is not the analytics' to give. */
const HIDDEN_CATALOGS = new Set(['duckdb_secrets', 'duckdb_logs', 'duckdb_log_contexts']);

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
  if (TABLE_FUNCTIONS.has(lower) || (lower.startsWith('duckdb_') && !HIDDEN_CATALOGS.has(lower))) return;
  throw new QueryRefusedError(
    `the query calls the table function ${typeof name === 'string' ? `'${name}'` : '(unnamed)'}: a query may call ${[...TABLE_FUNCTIONS].join(', ')} and the duckdb_… catalogs, and reads files only through the views`,
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
