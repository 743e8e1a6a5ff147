import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { makeDirectoriesSync } from '../../directories.js';
import { asLakeError, errorCode, LakeConfigError, LakeUnavailableError } from '../errors.js';
import type { BlockHeader, DropReport, ProcessInfo, StreamInfo } from '../wire/index.js';
import { nowRfc3339Ns } from '../wire/index.js';
import {
  adminSql,
  dropParams,
  partitionGarbage,
  partitionParams,
  toApiKeyRow,
  toDropReportRow,
  toPartitionRow,
} from './admin-sql.js';
import { RowGroups } from './row-groups.js';
import {
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
import { MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE } from './schema.js';
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

type Statement = Database.Statement<unknown[], RawRow>;

interface Prepared {
  readonly db: Database.Database;
  readonly insertProcess: Statement;
  readonly insertStream: Statement;
  /** Inserts one block row; returns its change count. */
  readonly insertBlock: (row: readonly unknown[]) => number;
  /** Inserts rows in one transaction; returns each row's change count. */
  readonly insertBlocks: (rows: readonly unknown[][]) => number[];
  readonly findProcess: Statement;
  readonly findStream: Statement;
  readonly findBlock: Statement;
}

const placeholder = (): string => '?';
const SQL = adminSql(placeholder);

/** How long a statement waits for a database another connection holds locked (SQLite's busy_timeout was 5 s). */
const BUSY_WAIT_MS = 5000;

/**
 * The embedded metadata store: one SQLite file in WAL mode (readers never block the writer).
 * `synchronous = NORMAL`: a commit survives a crash of the process; after a power loss the last
 * commits may be missing, which leaves blobs without rows — never rows without blobs.
 *
 * @example
 * const store = new SqliteMetadataStore('./dorsal-data/lake.sqlite');
 * await store.ready();
 */
export class SqliteMetadataStore implements MetadataStore {
  readonly kind = 'sqlite';
  readonly path: string;
  private prepared: Prepared | undefined;
  /** `close` ran: no call opens the file again (one that waited for a lock across it gives up). */
  private closed = false;
  /** Block rows that arrive together share one transaction (one WAL commit). */
  private readonly blockRows = new RowGroups<unknown[]>({
    group: async (rows) =>
      (await this.run('inserting blocks', (p) => p.insertBlocks(rows))).map((changes) => changes > 0),
    one: (row) => this.run('inserting a block', (p) => p.insertBlock(row) > 0),
    // A row's fault (a constraint, a value), not the database's (busy, locked, I/O, full).
    blamesRows: (error) => /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/.test(errorCode(error)),
  });

  constructor(path: string) {
    this.path = path;
  }

  async ready(): Promise<void> {
    await this.run('opening', () => undefined);
  }

  async ping(): Promise<void> {
    await this.run('checking the SQLite database', (p) => p.db.prepare('SELECT 1').get());
  }

  async insertProcess(process: ProcessInfo): Promise<boolean> {
    return this.run(
      'inserting a process',
      (p) => p.insertProcess.run(...processParams(process, nowRfc3339Ns())).changes > 0,
    );
  }

  async insertStream(stream: StreamInfo): Promise<boolean> {
    return this.run(
      'inserting a stream',
      (p) => p.insertStream.run(...streamParams(stream, nowRfc3339Ns()), stream.processId).changes > 0,
    );
  }

  /** Block rows are inserted in groups (see RowGroups). */
  async insertBlock(block: BlockHeader, payloadSize: number, blobPath: string): Promise<boolean> {
    return this.blockRows.add(blockParams(block, payloadSize, nowRfc3339Ns(), blobPath));
  }

  async findProcess(processId: string): Promise<ProcessRow | undefined> {
    const row = await this.run('reading a process', (p) => p.findProcess.get(processId));
    return row === undefined ? undefined : toProcessRow(row);
  }

  async findStream(streamId: string): Promise<StreamRow | undefined> {
    const row = await this.run('reading a stream', (p) => p.findStream.get(streamId));
    return row === undefined ? undefined : toStreamRow(row);
  }

  async findBlock(blockId: string): Promise<BlockRow | undefined> {
    const row = await this.run('reading a block', (p) => p.findBlock.get(blockId));
    return row === undefined ? undefined : toBlockRow(row);
  }

  async findProcessIds(processIds: readonly string[]): Promise<string[]> {
    if (processIds.length === 0) return [];
    const sql = `SELECT process_id FROM processes WHERE process_id IN (${processIds.map(() => '?').join(', ')})`;
    return (await this.all('finding processes', sql, [...processIds])).map((row) => String(row.process_id));
  }

  async listProcesses(): Promise<ProcessRow[]> {
    const sql = `SELECT ${PROCESS_COLUMNS} FROM processes ORDER BY start_time, process_id`;
    return (await this.all('listing processes', sql, [])).map(toProcessRow);
  }

  async listStreams(filter: StreamFilter = {}): Promise<StreamRow[]> {
    const where = streamWhere(filter, placeholder);
    const sql = `SELECT ${STREAM_COLUMNS} FROM streams ${where.sql} ORDER BY insert_time, stream_id`;
    const rows = (await this.all('listing streams', sql, where.params)).map(toStreamRow);
    return filter.tag === undefined ? rows : rows.filter((s) => s.tags.includes(filter.tag as string));
  }

  async sampleStreamIds(n: number): Promise<string[]> {
    return (await this.all('sampling streams', SQL.sampleStreamIds, [n, n])).map((row) =>
      String(row.stream_id),
    );
  }

  async listBlocks(filter: BlockFilter = {}): Promise<BlockRow[]> {
    const where = blockWhere(filter, placeholder);
    return (
      await this.all('listing blocks', `SELECT ${BLOCK_COLUMNS} FROM blocks ${where.sql}`, where.params)
    ).map(toBlockRow);
  }

  async insertApiKey(name: string, keyHash: string, createdTime: string): Promise<boolean> {
    return (await this.change('storing an API key', SQL.insertApiKey, [name, keyHash, createdTime])) > 0;
  }

  async findApiKey(keyHash: string): Promise<ApiKeyRow | undefined> {
    const row = (await this.all('reading an API key', SQL.findApiKey, [keyHash]))[0];
    return row === undefined ? undefined : toApiKeyRow(row);
  }

  async listApiKeys(): Promise<ApiKeyRow[]> {
    return (await this.all('listing API keys', SQL.listApiKeys, [])).map(toApiKeyRow);
  }

  async revokeApiKey(name: string, time: string): Promise<ApiKeyRow | undefined> {
    await this.change('revoking an API key', SQL.revokeApiKey, [time, name]);
    const row = (await this.all('reading an API key', SQL.findApiKeyByName, [name]))[0];
    return row === undefined ? undefined : toApiKeyRow(row);
  }

  async countApiKeys(): Promise<number> {
    return Number((await this.all('counting API keys', SQL.countApiKeys, []))[0]?.n ?? 0);
  }

  async insertDropReport(report: DropReport): Promise<boolean> {
    return (
      (await this.change('storing a drop report', SQL.insertDropReport, dropParams(report, nowRfc3339Ns()))) >
      0
    );
  }

  async listDropReports(processId?: string): Promise<DropReportRow[]> {
    const rows =
      processId === undefined
        ? await this.all('listing drop reports', SQL.listDropReports, [])
        : await this.all('listing drop reports', SQL.listProcessDropReports, [processId]);
    return rows.map(toDropReportRow);
  }

  async deleteBlocksBefore(cutoff: string, limit: number): Promise<string[]> {
    return this.run('deleting old blocks', (p) =>
      durably(p.db, () => {
        const rows = p.db.prepare<unknown[], RawRow>(SQL.deleteOldBlocks).all(cutoff, limit);
        const insert = p.db.prepare(SQL.insertGarbage);
        const since = nowRfc3339Ns();
        for (const row of rows) insert.run(String(row.path), String(row.block_id), since);
        return rows.map((row) => String(row.path));
      }),
    );
  }

  async listGarbage(limit: number): Promise<string[]> {
    return (await this.all('listing blob garbage', SQL.listGarbage, [limit])).map((row) => String(row.path));
  }

  async forgetGarbage(paths: readonly string[]): Promise<void> {
    await this.run('forgetting blob garbage', (p) => {
      const forget = p.db.prepare(SQL.forgetGarbage);
      p.db.transaction(() => {
        for (const path of paths) forget.run(path);
      })();
    });
  }

  async listStreamSweeps(limit: number): Promise<string[]> {
    return (await this.all('listing stream sweeps', SQL.listStreamSweeps, [limit])).map((row) =>
      String(row.directory),
    );
  }

  async forgetStreamSweeps(directories: readonly string[]): Promise<void> {
    await this.run('forgetting stream sweeps', (p) => {
      const forget = p.db.prepare(SQL.forgetStreamSweep);
      p.db.transaction(() => {
        for (const directory of directories) forget.run(directory);
      })();
    });
  }

  /**
   * One statement deletes: SQLite runs one writer at a time, so the test that the stream has no
   * blocks and a conditional block insert (which needs the stream) never interleave. The deleted
   * streams' directories are recorded in the same transaction.
   */
  async deleteEmptyStreamsBefore(cutoff: string, limit: number, after: string): Promise<WindowDeletion> {
    const what = 'deleting old streams';
    const end = (await this.all(what, SQL.streamWindowEnd, [after, limit]))[0]?.last;
    if (end === null || end === undefined) return { deleted: 0, last: undefined };
    const last = String(end);
    const deleted = await this.run(what, (p) =>
      durably(p.db, () => {
        const gone = p.db
          .prepare<unknown[], RawRow>(`${SQL.deleteEmptyStreams} RETURNING process_id, stream_id`)
          .all(after, last, cutoff);
        const record = p.db.prepare(SQL.insertStreamSweep);
        const since = nowRfc3339Ns();
        for (const row of gone)
          record.run(streamBlobDirectory(String(row.process_id), String(row.stream_id)), since);
        return gone.length;
      }),
    );
    return { deleted, last };
  }

  async deleteEmptyProcessesBefore(cutoff: string, limit: number, after: string): Promise<WindowDeletion> {
    return this.window(
      'deleting old processes',
      SQL.processWindowEnd,
      SQL.deleteEmptyProcesses,
      cutoff,
      limit,
      after,
    );
  }

  async deleteDropReportsBefore(cutoff: string, limit: number): Promise<number> {
    return this.change('deleting old drop reports', SQL.deleteDropReports, [cutoff, limit]);
  }

  async insertPartition(row: PartitionRow): Promise<boolean> {
    return (await this.change('storing a partition', SQL.insertPartition, partitionParams(row))) > 0;
  }

  async listPartitions(processId: string): Promise<PartitionRow[]> {
    return (await this.all('listing partitions', SQL.listPartitions, [processId])).map(toPartitionRow);
  }

  async deletePartitions(partitionIds: readonly string[]): Promise<string[]> {
    return this.deletePartitionRows('deleting partitions', (p) =>
      partitionIds.flatMap((id) => p.db.prepare<unknown[], RawRow>(SQL.deletePartition).all(id)),
    );
  }

  async deletePartitionsBefore(cutoff: string, limit: number): Promise<string[]> {
    return this.deletePartitionRows('deleting old partitions', (p) =>
      p.db.prepare<unknown[], RawRow>(SQL.deleteOldPartitions).all(cutoff, limit, cutoff, limit, limit),
    );
  }

  /** Deletes partition rows and records their paths as garbage, in one transaction. */
  private deletePartitionRows(what: string, remove: (p: Prepared) => RawRow[]): Promise<string[]> {
    return this.run(what, (p) =>
      durably(p.db, () => {
        const garbage = partitionGarbage(remove(p));
        const insert = p.db.prepare(SQL.insertGarbage);
        const since = nowRfc3339Ns();
        for (const { path, id } of garbage) insert.run(path, id, since);
        return garbage.map((g) => g.path);
      }),
    );
  }

  async close(): Promise<void> {
    await this.blockRows.flush();
    // A call waiting for a lock, woken after this, gives up instead of opening the file again.
    this.closed = true;
    this.prepared?.db.close();
    this.prepared = undefined;
  }

  private async window(
    what: string,
    windowEnd: string,
    deletion: string,
    cutoff: string,
    limit: number,
    after: string,
  ): Promise<WindowDeletion> {
    const end = (await this.all(what, windowEnd, [after, limit]))[0]?.last;
    if (end === null || end === undefined) return { deleted: 0, last: undefined };
    const last = String(end);
    return { deleted: await this.change(what, deletion, [after, last, cutoff]), last };
  }

  private all(what: string, sql: string, params: unknown[]): Promise<RawRow[]> {
    return this.run(what, (p) => p.db.prepare<unknown[], RawRow>(sql).all(...params));
  }

  /** Runs a statement; returns how many rows it changed. */
  private change(what: string, sql: string, params: unknown[]): Promise<number> {
    return this.run(what, (p) => p.db.prepare(sql).run(...params).changes);
  }

  /**
   * Runs `fn` on the database (opened on first use). While another connection holds it locked
   * (SQLITE_BUSY), `fn` is tried again after a pause of a timer, for up to BUSY_WAIT_MS: SQLite's
   * own busy handler would sleep on the event loop (better-sqlite3 is synchronous), and a server
   * would answer nothing, not even its health check, for seconds. `fn` is one statement or one
   * transaction: a BUSY one wrote nothing.
   */
  private async run<T>(what: string, fn: (p: Prepared) => T): Promise<T> {
    const deadline = performance.now() + BUSY_WAIT_MS;
    for (let pause = 1; ; pause = Math.min(2 * pause, 50)) {
      try {
        return fn(this.open());
      } catch (error) {
        if (!/^SQLITE_BUSY/.test(errorCode(error)) || performance.now() + pause > deadline)
          throw asLakeError(`SQLite lake ${what}`, error);
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      if (this.closed)
        throw new LakeUnavailableError(
          `SQLite lake ${what}: the store was closed while this waited for a lock`,
        );
    }
  }

  /**
   * Opens the file and migrates on first use; a failure is retried on the next call. Not once
   * closed: a call after `close` opened the file again, and nothing closed it.
   */
  private open(): Prepared {
    if (this.prepared !== undefined) return this.prepared;
    if (this.closed) throw new LakeUnavailableError(`SQLite lake ${this.path}: the store was closed`);
    let db: Database.Database | undefined;
    try {
      makeDirectoriesSync(dirname(this.path));
      // No wait in SQLite's busy handler (better-sqlite3's default is 5 s), which sleeps on the
      // event loop: `run` waits instead.
      db = new Database(this.path, { timeout: 0 });
      // Before anything is changed in it (its journal mode included).
      refuseForeignDatabase(db, this.path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      migrate(db);
      const prep = (sql: string): Statement => (db as Database.Database).prepare<unknown[], RawRow>(sql);
      // Rows go in only while what they refer to is there (see MetadataStore). The stream and
      // process ids are bound twice (at the end again): `?` numbers follow the text.
      const insertBlock = prep(
        `INSERT INTO blocks (${BLOCK_COLUMNS}) SELECT ?,?,?,?,?,?,?,?,?,?,? WHERE EXISTS (SELECT 1 FROM streams WHERE stream_id = ? AND process_id = ?) ON CONFLICT DO NOTHING`,
      );
      const insertBlockRow = (row: readonly unknown[]): number =>
        insertBlock.run(...row, row[1], row[2]).changes;
      this.prepared = {
        db,
        insertBlock: insertBlockRow,
        insertBlocks: db.transaction((rows: readonly unknown[][]) => rows.map(insertBlockRow)),
        insertProcess: prep(
          `INSERT INTO processes (${PROCESS_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`,
        ),
        insertStream: prep(
          `INSERT INTO streams (${STREAM_COLUMNS}) SELECT ?,?,?,?,?,?,? WHERE EXISTS (SELECT 1 FROM processes WHERE process_id = ?) ON CONFLICT DO NOTHING`,
        ),
        findProcess: prep(`SELECT ${PROCESS_COLUMNS} FROM processes WHERE process_id = ?`),
        findStream: prep(`SELECT ${STREAM_COLUMNS} FROM streams WHERE stream_id = ?`),
        findBlock: prep(`SELECT ${BLOCK_COLUMNS} FROM blocks WHERE block_id = ?`),
      };
      return this.prepared;
    } catch (error) {
      db?.close();
      throw asLakeError(`opening the SQLite lake at ${this.path}`, error);
    }
  }
}

/**
 * Refuses a database file that holds tables but no lake (another program's SQLite file named as
 * the lake): nothing is created in it. A lake's file is its own: no other table belongs there.
 */
function refuseForeignDatabase(db: Database.Database, path: string): void {
  const tables = db
    .prepare<[], { name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .all()
    .map((row) => row.name);
  if (tables.length === 0 || tables.includes(VERSION_TABLE)) return;
  throw new LakeConfigError(
    `${path} is not a dorsal lake: it holds tables (${tables.slice(0, 5).join(', ')}${tables.length > 5 ? ', …' : ''}) and no ${VERSION_TABLE}; nothing was changed in it`,
  );
}

/** Applies missing migrations in one IMMEDIATE transaction, so two processes cannot both apply one. */
function migrate(db: Database.Database): void {
  db.exec(
    `CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (version INTEGER PRIMARY KEY, applied_time TEXT NOT NULL)`,
  );
  const apply = db.transaction(() => {
    const row = db.prepare<[], { v: number | null }>(`SELECT MAX(version) AS v FROM ${VERSION_TABLE}`).get();
    const current = row?.v ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new LakeConfigError(
        `the SQLite lake has schema version ${current}, newer than this dorsal knows (${SCHEMA_VERSION})`,
      );
    }
    for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
      for (const sql of MIGRATIONS[version - 1] ?? []) db.exec(sql);
      db.prepare(`INSERT INTO ${VERSION_TABLE} (version, applied_time) VALUES (?, ?)`).run(
        version,
        nowRfc3339Ns(),
      );
    }
  });
  apply.immediate();
}

/**
 * `fn` in an immediate transaction whose commit is on disk when it returns. The lake runs with
 * `synchronous = NORMAL` (a commit may be lost to a power cut, never corrupted): right for rows
 * inserted after their blob is durable, not for deletions whose blobs are deleted next. Such a
 * deletion lost after its blobs went would bring back rows without blobs; under FULL, WAL mode
 * syncs the log at the commit.
 */
function durably<T>(db: Database.Database, fn: () => T): T {
  db.pragma('synchronous = FULL');
  try {
    return db.transaction(fn).immediate();
  } finally {
    db.pragma('synchronous = NORMAL');
  }
}
