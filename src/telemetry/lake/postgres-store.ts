import { createRequire } from 'node:module';
import type pg from 'pg';
import { isTimerMs, MAX_TIMER_MS, TIMER_MS_RANGE } from '../../timer-ms.js';
import { asLakeError, errorCode, LakeConfigError, LakeNotFoundError } from '../errors.js';
import type { BlockHeader, DropReport, ProcessInfo, StreamInfo } from '../wire/index.js';
import { nowRfc3339Ns } from '../wire/index.js';
import {
  adminSql,
  DROP_COLUMNS,
  dropParams,
  partitionGarbage,
  partitionParams,
  toApiKeyRow,
  toDropReportRow,
  toPartitionRow,
} from './admin-sql.js';
import { parseLakeUrl } from './lake-url.js';
import { RowGroups } from './row-groups.js';
import {
  BLOB_PATH_SQL,
  BLOCK_COLUMNS,
  blockParams,
  blockWhere,
  PROCESS_COLUMNS,
  processParams,
  type RawRow,
  STREAM_COLUMNS,
  streamParams,
  streamWhere,
  toBlockRow,
  toProcessRow,
  toStreamRow,
} from './rows.js';
import { LAKE_TABLES, MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE } from './schema.js';
import {
  type ApiKeyRow,
  type BlockFilter,
  type BlockRow,
  type DropReportRow,
  type MetadataStore,
  type PartitionRow,
  type ProcessRow,
  type StreamFilter,
  type StreamRow,
  streamBlobDirectory,
  type WindowDeletion,
} from './types.js';

const require = createRequire(import.meta.url);
let driver: typeof pg | undefined;
/** pg, loaded when the first PostgreSQL store is made: an embedded lake never loads it. */
const loadDriver = (): typeof pg => {
  driver ??= require('pg') as typeof pg;
  return driver;
};

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const placeholder = (i: number): string => `$${i}`;
const SQL = adminSql(placeholder);

/**
 * Retention's batch in one statement: the oldest block rows deleted (rows another pass holds are
 * skipped) and their blob paths recorded as garbage, atomically.
 */
const DELETE_OLD_BLOCKS = `WITH gone AS (
  DELETE FROM blocks WHERE block_id IN (
    SELECT block_id FROM blocks WHERE insert_time < $1 ORDER BY insert_time LIMIT $2 FOR UPDATE SKIP LOCKED)
  RETURNING ${BLOB_PATH_SQL} AS path, block_id),
recorded AS (
  INSERT INTO blob_garbage (path, block_id, since) SELECT path, block_id, $3 FROM gone ON CONFLICT DO NOTHING)
SELECT path FROM gone`;

/** Types of the `blocks` columns in column order: parameters in a VALUES list need them. */
const BLOCK_TYPES = [
  'text',
  'text',
  'text',
  'text',
  'bigint',
  'text',
  'bigint',
  'integer',
  'bigint',
  'text',
  'text',
];
const BLOCK_COLUMN_COUNT = BLOCK_TYPES.length;
/** Index of `blob_path` in a row's parameters. */
const BLOB_PATH_PARAM = BLOCK_COLUMN_COUNT - 1;

/**
 * `INSERT … ON CONFLICT DO NOTHING` of `rows` block rows, numbered $1, $2, … in column order,
 * each inserted only if its stream has a row under its process. `FOR KEY SHARE` holds that stream
 * row until the insert commits: retention, which locks a stream `FOR UPDATE SKIP LOCKED` before it
 * deletes it, leaves it; had retention locked it first, the insert waits and finds it gone. Rows
 * go in in block id order, whatever order they arrived in: two servers inserting the same blocks
 * then wait on each other's unique-index entries in one order, never crosswise (a deadlock, which
 * fails one group with 503 where its blocks were only "already there").
 */
function insertSql(rows: number): string {
  const values = Array.from(
    { length: rows },
    (_, r) =>
      `(${BLOCK_TYPES.map((type, c) => `${placeholder(r * BLOCK_COLUMN_COUNT + c + 1)}::${type}`).join(',')})`,
  );
  return `INSERT INTO blocks (${BLOCK_COLUMNS})
SELECT v.* FROM (VALUES ${values.join(',')}) AS v (${BLOCK_COLUMNS})
JOIN streams s ON s.stream_id = v.stream_id AND s.process_id = v.process_id
ORDER BY v.block_id
FOR KEY SHARE OF s
ON CONFLICT DO NOTHING`;
}

/** The stream insert, only while its process has a row (held as the block insert holds its stream). */
const INSERT_STREAM = `INSERT INTO streams (${STREAM_COLUMNS})
SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text FROM processes p
WHERE p.process_id = $2 FOR KEY SHARE
ON CONFLICT DO NOTHING`;

/**
 * The drop report insert, only while its process has a row (held as the stream insert holds its
 * process: retention cannot delete the process under a report it has not seen).
 */
const INSERT_DROP_REPORT = `INSERT INTO sink_drops (${DROP_COLUMNS})
SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint, $6::text FROM processes p
WHERE p.process_id = $7 FOR KEY SHARE
ON CONFLICT DO NOTHING`;

/** A table whose rows retention deletes once no row refers to them, and what would refer to one. */
interface EmptyRowsSql {
  readonly table: 'streams' | 'processes';
  readonly id: 'stream_id' | 'process_id';
  /** The rows that would refer to one of the table's rows (`t`), given the cutoff's placeholder. */
  readonly referring: (cutoff: string) => string;
}

const EMPTY_STREAMS: EmptyRowsSql = {
  table: 'streams',
  id: 'stream_id',
  referring: () => 'SELECT 1 FROM blocks b WHERE b.stream_id = t.stream_id',
};
const EMPTY_PROCESSES: EmptyRowsSql = {
  table: 'processes',
  id: 'process_id',
  // A process's drop reports refer to it as its streams do: it is kept while one newer than the
  // cutoff is there (retention deletes the older ones first).
  referring: (cutoff) =>
    `SELECT 1 FROM streams s WHERE s.process_id = t.process_id UNION ALL SELECT 1 FROM sink_drops d WHERE d.process_id = t.process_id AND d.insert_time >= ${cutoff}`,
};

/** Options of the PostgreSQL store beyond its URL. */
/** How long after the server should have cancelled a statement the client gives up on its answer. */
const CLIENT_GRACE_MS = 5000;

export interface PostgresStoreOptions {
  /** Pool size (default 10). */
  readonly maxConnections?: number;
  /** How long to wait for a connection before failing a call (default 5000 ms). */
  readonly connectTimeoutMs?: number;
  /**
   * How long a statement may run, in ms (default 30 000): the server cancels it past that (a
   * statement waiting on a lock held elsewhere, say), and the client gives up on an answer 5 s
   * later (a server or network that stopped answering): the call fails with
   * `LakeUnavailableError`, it does not hang. Migrations are not bounded. The URL's
   * `?statementTimeoutMs=` overrides it.
   */
  readonly statementTimeoutMs?: number;
  /**
   * Whether the first call may create the schema and the lake's tables (default true). False for
   * work on an existing lake (listing keys, retention): a mistyped `?schema=` is then refused with
   * `LakeNotFoundError`, and nothing is created, rather than answered from a new empty lake.
   */
  readonly create?: boolean;
}

/**
 * The scale-out metadata store. Several ingestion servers may share one database: inserts are
 * `ON CONFLICT DO NOTHING` and migrations run under an advisory lock. The URL may name a schema
 * with `?schema=name` (created if missing, unless `create` is false), e.g.
 * `postgres://user@db:5432/lake?schema=dorsal`.
 *
 * @example
 * const store = new PostgresMetadataStore('postgres://dorsal@127.0.0.1:5432/lake?schema=dorsal');
 */
export class PostgresMetadataStore implements MetadataStore {
  readonly kind = 'postgres';
  /** The schema tables live in (`public` unless the URL names one). */
  readonly schema: string;
  /** The server and database, for messages: no user, password or options. */
  private readonly where: string;
  private readonly create: boolean;
  private readonly pool: pg.Pool;
  private migrated: Promise<void> | undefined;
  /** Block rows that arrive together go in one multi-row INSERT (one round trip). */
  private readonly blockRows = new RowGroups<unknown[]>({
    group: (rows) => this.insertBlockRows(rows),
    one: async (row) => (await this.query('inserting a block', insertSql(1), row)).rowCount === 1,
    // SQLSTATE classes 22 (a value) and 23 (a constraint): a row's fault, not the database's.
    blamesRows: (error) => /^2[23]/.test(errorCode(error)),
  });

  constructor(url: string, options: PostgresStoreOptions = {}) {
    const parsed = parseLakeUrl(url, 'PostgreSQL');
    // What the driver would take from the URL over the settings below (a search_path moving the
    // lake's tables out of its schema, a statement timeout of 0) is taken here or refused.
    if (parsed.searchParams.has('query_timeout'))
      throw new LakeConfigError(
        "PostgreSQL URL parameter 'query_timeout' is not taken: the client waits statementTimeoutMs and 5 s more",
      );
    const urlOptions = parsed.searchParams.get('options');
    parsed.searchParams.delete('options');
    const overridden =
      urlOptions === null
        ? null
        : /(?:^|\s)(?:-c\s*|--)(search[_-]path|statement[_-]timeout)\s*=/i.exec(urlOptions);
    if (overridden !== null)
      throw new LakeConfigError(
        `PostgreSQL URL options may not set ${overridden[1]!.toLowerCase()}: give ${/^search/i.test(overridden[1]!) ? '?schema=' : "'statementTimeoutMs'"}`,
      );
    const schema = parsed.searchParams.get('schema') ?? 'public';
    if (!SCHEMA_NAME.test(schema))
      throw new LakeConfigError(`invalid PostgreSQL schema name ${JSON.stringify(schema)}`);
    parsed.searchParams.delete('schema');
    this.schema = schema;
    this.where = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
    this.create = options.create ?? true;
    // Also under the driver's own name, as a URL that set it there meant it.
    const named = ['statementTimeoutMs', 'statement_timeout'].filter((name) => parsed.searchParams.has(name));
    if (named.length > 1)
      throw new LakeConfigError("PostgreSQL URL: give 'statementTimeoutMs' or 'statement_timeout', not both");
    const inUrl = named.length === 0 ? null : parsed.searchParams.get(named[0]!);
    for (const name of named) parsed.searchParams.delete(name);
    const statementTimeoutMs = inUrl === null ? (options.statementTimeoutMs ?? 30_000) : Number(inUrl);
    if (!isTimerMs(statementTimeoutMs)) {
      throw new LakeConfigError(
        `PostgreSQL option 'statementTimeoutMs' must be ${TIMER_MS_RANGE}, got ${String(statementTimeoutMs)}`,
      );
    }
    this.pool = new (loadDriver().Pool)({
      connectionString: parsed.toString(),
      // Quoted, as CREATE SCHEMA makes it: unquoted, PostgreSQL folds the name to lowercase (a
      // schema `Dorsal` was made, and then looked for as `dorsal`). SCHEMA_NAME has no quote.
      // After the URL's own `options`: a later -c of the same setting wins.
      options: `${urlOptions === null ? '' : `${urlOptions} `}-c search_path="${schema}" -c statement_timeout=${statementTimeoutMs}`,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      // Within what a Node timer takes (past it, a timer fires after 1 ms: every query failed).
      query_timeout: Math.min(statementTimeoutMs + CLIENT_GRACE_MS, MAX_TIMER_MS),
    });
    // An idle connection dropped by the server must not become an uncaught error: the next
    // query gets a fresh connection, or fails and is answered with 503.
    this.pool.on('error', () => {});
  }

  ready(): Promise<void> {
    if (this.migrated === undefined) {
      this.migrated = this.migrate().catch((error: unknown) => {
        this.migrated = undefined;
        throw asLakeError('PostgreSQL lake: migrating the schema', error);
      });
    }
    return this.migrated;
  }

  async ping(): Promise<void> {
    await this.query('checking the database', 'SELECT 1', []);
  }

  async insertProcess(process: ProcessInfo): Promise<boolean> {
    const sql = `INSERT INTO processes (${PROCESS_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT DO NOTHING`;
    return (
      (await this.query('inserting a process', sql, processParams(process, nowRfc3339Ns()))).rowCount === 1
    );
  }

  async insertStream(stream: StreamInfo): Promise<boolean> {
    const params = streamParams(stream, nowRfc3339Ns());
    return (await this.query('inserting a stream', INSERT_STREAM, params)).rowCount === 1;
  }

  /** Block rows are inserted in groups (see RowGroups). */
  async insertBlock(block: BlockHeader, payloadSize: number, blobPath: string): Promise<boolean> {
    return this.blockRows.add(blockParams(block, payloadSize, nowRfc3339Ns(), blobPath));
  }

  async findProcess(processId: string): Promise<ProcessRow | undefined> {
    const sql = `SELECT ${PROCESS_COLUMNS} FROM processes WHERE process_id = $1`;
    const row = (await this.query('reading a process', sql, [processId])).rows[0];
    return row === undefined ? undefined : toProcessRow(row);
  }

  async findStream(streamId: string): Promise<StreamRow | undefined> {
    const sql = `SELECT ${STREAM_COLUMNS} FROM streams WHERE stream_id = $1`;
    const row = (await this.query('reading a stream', sql, [streamId])).rows[0];
    return row === undefined ? undefined : toStreamRow(row);
  }

  async findBlock(blockId: string): Promise<BlockRow | undefined> {
    const sql = `SELECT ${BLOCK_COLUMNS} FROM blocks WHERE block_id = $1`;
    const row = (await this.query('reading a block', sql, [blockId])).rows[0];
    return row === undefined ? undefined : toBlockRow(row);
  }

  async findProcessIds(processIds: readonly string[]): Promise<string[]> {
    if (processIds.length === 0) return [];
    const sql = 'SELECT process_id FROM processes WHERE process_id = ANY($1::text[])';
    const { rows } = await this.query('finding processes', sql, [[...processIds]]);
    return rows.map((row) => String(row.process_id));
  }

  async listProcesses(): Promise<ProcessRow[]> {
    const sql = `SELECT ${PROCESS_COLUMNS} FROM processes ORDER BY start_time, process_id`;
    return (await this.query('listing processes', sql, [])).rows.map(toProcessRow);
  }

  async listStreams(filter: StreamFilter = {}): Promise<StreamRow[]> {
    const where = streamWhere(filter, placeholder);
    const sql = `SELECT ${STREAM_COLUMNS} FROM streams ${where.sql} ORDER BY insert_time, stream_id`;
    const rows = (await this.query('listing streams', sql, where.params)).rows.map(toStreamRow);
    return filter.tag === undefined ? rows : rows.filter((s) => s.tags.includes(filter.tag as string));
  }

  async sampleStreamIds(n: number): Promise<string[]> {
    return (await this.query('sampling streams', SQL.sampleStreamIds, [n, n])).rows.map((row) =>
      String(row.stream_id),
    );
  }

  async listBlocks(filter: BlockFilter = {}): Promise<BlockRow[]> {
    const where = blockWhere(filter, placeholder);
    const sql = `SELECT ${BLOCK_COLUMNS} FROM blocks ${where.sql}`;
    return (await this.query('listing blocks', sql, where.params)).rows.map(toBlockRow);
  }

  async insertApiKey(name: string, keyHash: string, createdTime: string): Promise<boolean> {
    return (
      (await this.query('storing an API key', SQL.insertApiKey, [name, keyHash, createdTime])).rowCount === 1
    );
  }

  async findApiKey(keyHash: string): Promise<ApiKeyRow | undefined> {
    const row = (await this.query('reading an API key', SQL.findApiKey, [keyHash])).rows[0];
    return row === undefined ? undefined : toApiKeyRow(row);
  }

  async listApiKeys(): Promise<ApiKeyRow[]> {
    return (await this.query('listing API keys', SQL.listApiKeys, [])).rows.map(toApiKeyRow);
  }

  async revokeApiKey(name: string, time: string): Promise<ApiKeyRow | undefined> {
    await this.query('revoking an API key', SQL.revokeApiKey, [time, name]);
    const row = (await this.query('reading an API key', SQL.findApiKeyByName, [name])).rows[0];
    return row === undefined ? undefined : toApiKeyRow(row);
  }

  async countApiKeys(): Promise<number> {
    return Number((await this.query('counting API keys', SQL.countApiKeys, [])).rows[0]?.n ?? 0);
  }

  async insertDropReport(report: DropReport): Promise<boolean> {
    const params = dropParams(report, nowRfc3339Ns());
    return (await this.query('storing a drop report', INSERT_DROP_REPORT, params)).rowCount === 1;
  }

  async listDropReports(processId?: string): Promise<DropReportRow[]> {
    const result =
      processId === undefined
        ? await this.query('listing drop reports', SQL.listDropReports, [])
        : await this.query('listing drop reports', SQL.listProcessDropReports, [processId]);
    return result.rows.map(toDropReportRow);
  }

  async deleteBlocksBefore(cutoff: string, limit: number): Promise<string[]> {
    const result = await this.query('deleting old blocks', DELETE_OLD_BLOCKS, [
      cutoff,
      limit,
      nowRfc3339Ns(),
    ]);
    return result.rows.map((row) => String(row.path));
  }

  async listGarbage(limit: number): Promise<string[]> {
    return (await this.query('listing blob garbage', SQL.listGarbage, [limit])).rows.map((row) =>
      String(row.path),
    );
  }

  async forgetGarbage(paths: readonly string[]): Promise<void> {
    await this.query('forgetting blob garbage', 'DELETE FROM blob_garbage WHERE path = ANY($1)', [
      [...paths],
    ]);
  }

  async listStreamSweeps(limit: number): Promise<string[]> {
    return (await this.query('listing stream sweeps', SQL.listStreamSweeps, [limit])).rows.map((row) =>
      String(row.directory),
    );
  }

  async forgetStreamSweeps(directories: readonly string[]): Promise<void> {
    await this.query('forgetting stream sweeps', 'DELETE FROM stream_sweeps WHERE directory = ANY($1)', [
      [...directories],
    ]);
  }

  async deleteEmptyStreamsBefore(cutoff: string, limit: number, after: string): Promise<WindowDeletion> {
    return this.deleteEmpty(
      'deleting old streams',
      EMPTY_STREAMS,
      SQL.streamWindowEnd,
      cutoff,
      limit,
      after,
      // The deleted streams' directories, recorded in the deletion's transaction.
      async (client, gone) => {
        const directories = gone.map((row) =>
          streamBlobDirectory(String(row.process_id), String(row.stream_id)),
        );
        await client.query(
          'INSERT INTO stream_sweeps (directory, since) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING',
          [directories, nowRfc3339Ns()],
        );
      },
    );
  }

  async deleteEmptyProcessesBefore(cutoff: string, limit: number, after: string): Promise<WindowDeletion> {
    return this.deleteEmpty(
      'deleting old processes',
      EMPTY_PROCESSES,
      SQL.processWindowEnd,
      cutoff,
      limit,
      after,
    );
  }

  async deleteDropReportsBefore(cutoff: string, limit: number): Promise<number> {
    return (
      (await this.query('deleting old drop reports', SQL.deleteDropReports, [cutoff, limit])).rowCount ?? 0
    );
  }

  async insertPartition(row: PartitionRow): Promise<boolean> {
    return (
      (await this.query('storing a partition', SQL.insertPartition, partitionParams(row))).rowCount === 1
    );
  }

  async listPartitions(processId: string): Promise<PartitionRow[]> {
    return (await this.query('listing partitions', SQL.listPartitions, [processId])).rows.map(toPartitionRow);
  }

  async deletePartitions(partitionIds: readonly string[]): Promise<string[]> {
    return this.deletePartitionRows('deleting partitions', async (client) => {
      const rows: RawRow[] = [];
      for (const id of partitionIds)
        rows.push(...(await client.query<RawRow>(SQL.deletePartition, [id])).rows);
      return rows;
    });
  }

  async deletePartitionsBefore(cutoff: string, limit: number): Promise<string[]> {
    return this.deletePartitionRows(
      'deleting old partitions',
      async (client) =>
        (await client.query<RawRow>(SQL.deleteOldPartitions, [cutoff, limit, cutoff, limit, limit])).rows,
    );
  }

  /** Deletes partition rows and records their paths as garbage, in one transaction. */
  private deletePartitionRows(
    what: string,
    remove: (client: pg.PoolClient) => Promise<RawRow[]>,
  ): Promise<string[]> {
    return this.transaction(what, async (client) => {
      const garbage = partitionGarbage(await remove(client));
      const since = nowRfc3339Ns();
      for (const { path, id } of garbage) await client.query(SQL.insertGarbage, [path, id, since]);
      return garbage.map((g) => g.path);
    });
  }

  async close(): Promise<void> {
    await this.blockRows.flush();
    await this.pool.end();
  }

  /**
   * Inserts block rows in one statement. `RETURNING` names the rows it inserted by their blob
   * paths, which are unique per write: of a block sent twice in one group, the send whose row went
   * in is known exactly (the join may emit the rows in any order).
   */
  private async insertBlockRows(rows: readonly unknown[][]): Promise<boolean[]> {
    const sql = `${insertSql(rows.length)} RETURNING blob_path`;
    const result = await this.query('inserting blocks', sql, rows.flat());
    const inserted = new Set(result.rows.map((r) => String(r.blob_path)));
    return rows.map((row) => inserted.has(String(row[BLOB_PATH_PARAM])));
  }

  /**
   * Retention's deletion of streams or processes left empty, in one window of ids. The rows are
   * locked first (`FOR UPDATE`, skipping those an insert holds), then deleted by a statement whose
   * fresh snapshot sees every row committed meanwhile that refers to them: one inserted between
   * the two is seen, one inserted after waits for the lock and finds its parent gone. (In one
   * statement, a row committed while it waited for a lock would not be seen.)
   */
  /** Deletes a window's rows that nothing refers to; `record` runs in the deletion's transaction. */
  private async deleteEmpty(
    what: string,
    rows: EmptyRowsSql,
    windowEnd: string,
    cutoff: string,
    limit: number,
    after: string,
    record?: (client: pg.PoolClient, gone: RawRow[]) => Promise<void>,
  ): Promise<WindowDeletion> {
    const end = (await this.query(what, windowEnd, [after, limit])).rows[0]?.last;
    if (end === null || end === undefined) return { deleted: 0, last: undefined };
    const last = String(end);
    const { table, id, referring } = rows;
    // The ids only: a stream's row also holds its layouts and properties.
    const returning = table === 'streams' ? 'process_id, stream_id' : id;
    const gone = await this.transaction(what, async (client) => {
      const locked = await client.query<RawRow>(
        `SELECT ${id} FROM ${table} t WHERE ${id} > $1 AND ${id} <= $2 AND insert_time < $3 AND NOT EXISTS (${referring('$3')}) FOR UPDATE SKIP LOCKED`,
        [after, last, cutoff],
      );
      if (locked.rows.length === 0) return [];
      const deleted = (
        await client.query<RawRow>(
          `DELETE FROM ${table} t WHERE ${id} = ANY($1) AND insert_time < $2 AND NOT EXISTS (${referring('$2')}) RETURNING ${returning}`,
          [locked.rows.map((row) => String(row[id])), cutoff],
        )
      ).rows;
      if (deleted.length > 0) await record?.(client, deleted);
      return deleted;
    });
    return { deleted: gone.length, last };
  }

  /** Runs `fn` in a transaction on one connection; rejects with a lake error. */
  private async transaction<T>(what: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    await this.ready();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw asLakeError(`PostgreSQL lake ${what}`, error);
    }
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      // A connection that failed mid-transaction is discarded, not returned to the pool.
      client.release(error instanceof Error ? error : true);
      throw asLakeError(`PostgreSQL lake ${what}`, error);
    }
  }

  private async query(what: string, sql: string, params: unknown[]): Promise<pg.QueryResult<RawRow>> {
    await this.ready();
    try {
      return await this.pool.query<RawRow>(sql, params);
    } catch (error) {
      throw asLakeError(`PostgreSQL lake ${what}`, error);
    }
  }

  /**
   * Applies missing migrations in one transaction, under an advisory lock per schema, with no time
   * limit: one cut short would roll back and be tried, and cut, again at every start. Without
   * `create`, a schema with no lake (no version table) is refused before anything is made.
   */
  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    // pg reads a query's own `query_timeout` before the pool's (its types do not list it).
    const unbounded = <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) =>
      // The longest a timer waits: what "no time limit" is here.
      client.query<R>({ text, values, query_timeout: MAX_TIMER_MS } as pg.QueryConfig);
    try {
      await unbounded('BEGIN');
      await unbounded('SET LOCAL statement_timeout = 0');
      await unbounded('SELECT pg_advisory_xact_lock(hashtext($1))', [`dorsal-migrate:${this.schema}`]);
      if (this.create) {
        // A schema holding tables of the lake's names but no lake is another program's: refused
        // (its `processes` would be taken for the lake's, or the migration fail on it).
        const { rows: clashing } = await unbounded<{ name: string }>(
          'SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 AND tablename = ANY($2) AND NOT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $3) ORDER BY tablename',
          [this.schema, [...LAKE_TABLES], VERSION_TABLE],
        );
        if (clashing.length > 0) {
          throw new LakeConfigError(
            `schema "${this.schema}" of ${this.where} is not a dorsal lake: it holds tables named as the lake's (${clashing.map((r) => r.name).join(', ')}) and no ${VERSION_TABLE}; nothing was changed in it`,
          );
        }
        await unbounded(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
        await unbounded(
          `CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (version INTEGER PRIMARY KEY, applied_time TEXT NOT NULL)`,
        );
      } else {
        const { rows: there } = await unbounded<{ schema: boolean; lake: boolean }>(
          "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema, to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL AS lake",
          [this.schema, VERSION_TABLE],
        );
        if (there[0]?.lake !== true) {
          const why = there[0]?.schema === true ? 'the schema holds no lake' : 'there is no such schema';
          throw new LakeNotFoundError(
            `no lake in schema "${this.schema}" of ${this.where} (${why}): give the URL of an existing lake`,
          );
        }
      }
      const { rows } = await unbounded<{ v: number | null }>(
        `SELECT MAX(version) AS v FROM ${VERSION_TABLE}`,
      );
      const current = rows[0]?.v ?? 0;
      if (current > SCHEMA_VERSION) {
        throw new LakeConfigError(
          `the PostgreSQL lake has schema version ${current}, newer than this dorsal knows (${SCHEMA_VERSION})`,
        );
      }
      for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
        for (const sql of MIGRATIONS[version - 1] ?? []) await unbounded(sql);
        await unbounded(`INSERT INTO ${VERSION_TABLE} (version, applied_time) VALUES ($1, $2)`, [
          version,
          nowRfc3339Ns(),
        ]);
      }
      await unbounded('COMMIT');
      client.release();
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      // A connection that failed mid-transaction is discarded, not returned to the pool.
      client.release(error instanceof Error ? error : true);
      throw error;
    }
  }
}
