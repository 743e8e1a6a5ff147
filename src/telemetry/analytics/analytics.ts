import { randomUUID } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, normalize, resolve } from 'node:path';
import type { DuckDBConnection, DuckDBInstance, DuckDBPreparedStatement, Json } from '@duckdb/node-api';
import { makeDirectoriesSync } from '../../directories.js';
import type { DorsalError } from '../../errors.js';
import { LakeNotFoundError, ServerBusyError } from '../errors.js';
import { Lake } from '../lake/lake.js';
import type { LakeLocation } from '../lake/open.js';
import type { BlockRow, ProcessRow, StreamRow } from '../lake/types.js';
import { DIVERGENCES_TAG, parseStoredDiff } from '../persist/replay-diff.js';
import { COUNTS_TAG, parseStoredCounts } from '../persist/run-counts.js';
import { checkAnalyticsOptions } from './analytics-options.js';
import { checkAnalyticsCacheDir } from './cache-dir.js';
import { untilAborted } from './deadline.js';
import type { PartitionWriter } from './etl-pool.js';
import { GoneProcessSweep } from './gone-processes.js';
import {
  checkBound,
  messageOf,
  type ParsedQuery,
  QueryCancelledError,
  QueryNotReadyError,
  QueryRefusedError,
  QueryTimeoutError,
} from './guard.js';
import { LakePartitionStore } from './lake-partitions.js';
import { ParseCache } from './parse-cache.js';
import {
  type AnalyticsMemory,
  type Materialized,
  type MergeFailure,
  materialize,
  type PartitionStore,
} from './partitions.js';
import { PrepareTurns, preparesAtOnce } from './prepare-turns.js';
import {
  checkMemoryLimit,
  checkScopeLimits,
  MAX_UNREADABLE_LISTED,
  type QueryFunction,
  type QueryResult,
  type QueryScope,
  resolveWindow,
  scopeProcesses,
  type TimeWindow,
} from './query.js';
import { AnalyticsQuestions } from './questions.js';
import { RetryLater } from './retry-later.js';
import { createViews, type DocumentRow, type ViewInputs } from './views.js';

/** Options of `Analytics.open`. */
export interface AnalyticsOptions {
  /** The lake (or where it is). */
  readonly lake: Lake | LakeLocation;
  /** A local directory for partitions and DuckDB's work. */
  readonly cacheDir: string;
  /** Rows a query returns at most (default 10 000); more are cut off, and the answer says so. */
  readonly maxRows?: number;
  /**
   * The size of an answer's rows at most, as JSON text (default 64 MiB): rows past it are cut off
   * (the answer says so); a first row larger than it is refused.
   */
  readonly maxBytes?: number;
  /** How long a query may run, in ms (default 30 000). */
  readonly timeoutMs?: number;
  /**
   * Threads that decode blocks into partitions (default 1); 0: the thread that asks decodes them,
   * on its event loop (no thread started, no second DuckDB loaded: sooner for a command line that
   * asks once, as `dorsal`'s do; a server keeps threads, to answer other requests meanwhile).
   */
  readonly etlThreads?: number;
  /**
   * The memory the query database holds at most, in DuckDB's terms (`'1GB'`, `'512MiB'`; default
   * DuckDB's, 80 % of RAM). Past it, joins, sorts and aggregates spill to files in `cacheDir`
   * (a replay's diff of two long runs, say); an operator that cannot spill fails the query.
   */
  readonly memoryLimit?: string;
  /**
   * How long what the lake holds is taken as known, in ms (default 1000): queries within that
   * time of the end of the last look at the lake reuse it (and join one under way that began
   * within it), so that a burst of queries costs one look; a live process's new blocks show up
   * after at most that long past a look's end. Written through the same `Lake` object (`dorsal
   * serve`'s ingestion), they show up in the next answer: a look is then taken again, at most
   * every 100 ms per scope. Looks of one scope never run side by side.
   */
  readonly freshnessMs?: number;
  /**
   * How long a block found unreadable (its blob missing or damaged) is left out before it is
   * read again, in ms (default 10 000): meanwhile answers list it as found then, without reading
   * it. A merge of partitions that failed with its files there waits as long before it is tried again.
   */
  readonly unreadableRetryMs?: number;
  /**
   * Called when a merge of small partitions fails (a server prints it): answers lose nothing by
   * it, but read more files until a later try succeeds. Not called for a merge left alone for
   * `unreadableRetryMs` after it failed.
   */
  readonly onMergeFailed?: (failure: MergeFailure) => void;
  /**
   * Where partitions are kept (default: in the lake, files in its blob storage and rows in its
   * metadata database, shared by every analytics over it, with local copies in `cacheDir`;
   * `new LocalPartitionStore(dir)` keeps them out of the lake).
   */
  readonly partitions?: PartitionStore;
  /**
   * How often the cached partitions of processes the lake no longer lists (retention deleted
   * them) are let go of, in ms (default 60 000): a sweep begins in the background at the first
   * look at the lake, then at a look this long or more after the last one began (see
   * `GoneProcessSweep`).
   */
  readonly goneProcessSweepMs?: number;
  /**
   * Told of a sweep of the gone processes that failed (the lake unreachable, a file it could not
   * remove) or was refused (the lake's directory in the cache names another lake): the cache keeps
   * their copies, and a later look sweeps again.
   */
  readonly onSweepFailed?: (error: Error) => void;
}

/** What a scope's views are made of, with a fingerprint that changes when any of it does. */
interface LakeView extends ViewInputs {
  readonly fingerprint: string;
}

/** The lake's own tables: a query of these alone needs no partition. */
const METADATA_TABLES = new Set([
  'processes',
  'streams',
  'blocks',
  'replay_diffs',
  'replay_diff_streams',
  'replay_divergences',
  'run_counts',
  'actor_counts',
  'timing_reads',
]);

/** What `look` keeps of a look at the lake for one scope. */
interface Look {
  /** When it began (performance.now(), ms), and the lake's `writeMark` then. */
  readonly at: number;
  readonly writeMark: number;
  readonly view: Promise<LakeView>;
  /** When it ended, or undefined while under way. */
  endedAt: number | undefined;
}

/**
 * Looks at the lake under way at most, across scopes (one per scope): a look a query stopped
 * waiting for goes on, and a client asking ever new scopes with short time limits must not start
 * unbounded work. Past it, a new look is refused as busy.
 */
const MAX_LOOKS_UNDER_WAY = 72;
/**
 * Passes of decoding (see `materialize`) at once across processes, and passes waiting at most:
 * for their process's pass before them, or for a turn. Past them, a look is refused as busy.
 */
const MAX_RUNNING_PASSES = 8;
const MAX_WAITING_PASSES = 64;

/** Connections kept with their views, one per scope, at most. */
const MAX_SESSIONS = 8;

/**
 * Looks at the lake kept at most, one per scope (each holds the scope's block rows): a server
 * asked for ever new time windows would otherwise keep one per window it was ever asked.
 */
const MAX_LOOKS = 32;
/**
 * The least time between two looks at the same scope when writes make the last one out of date:
 * under steady ingestion, queries wait up to this long for a look and share it.
 */
const MIN_RELOOK_MS = 100;

/**
 * How often a prepare its query stopped waiting for is interrupted again until it ends (see
 * `Analytics.prepare`).
 */
const REINTERRUPT_MS = 50;

/** A query stopped while it waited for its turn to prepare (see `PrepareTurns`): it began no SQL. */
class PrepareTurnMissed extends Error {
  constructor(cause: unknown) {
    super(messageOf(cause), { cause });
  }
}

/** Views that could not be made on a new connection (`cause`: why): the query may look again. */
class ViewsNotMadeError extends Error {
  constructor(cause: unknown) {
    super(messageOf(cause), { cause });
  }
}

/** A connection whose views answer one scope, kept while the lake has nothing new for it. */
interface Session {
  readonly connection: DuckDBConnection;
  /** What the views were made of: when it changes, the views are made again. */
  fingerprint: string;
  /** Queries on one connection run one after the other. */
  tail: Promise<unknown>;
}

/**
 * SQL over a lake, on DuckDB, embedded: the blocks become tables when a query needs them (just in
 * time: decoded once into Parquet partitions, read from those afterwards), as micromegas does.
 * The tables are described in `createViews`; `percentiles`, `tree` and `slowestTrees` answer the
 * questions asked most.
 *
 * @example
 * const analytics = await Analytics.open({ lake: { data: './dorsal-data' }, cacheDir: './dorsal-data/analytics' });
 * const { rows } = await analytics.query('select actor, quantile_cont(latency_ns, 0.99) from timings group by 1');
 * await analytics.close();
 */
export class Analytics extends AnalyticsQuestions {
  readonly lake: Lake;
  private readonly ownsLake: boolean;
  private readonly store: PartitionStore;
  private readonly scratch: string;
  /** Where its partitions' copies are: a query's error naming a file there is the cache's. */
  private readonly cacheDir: string;
  private readonly pool: PartitionWriter;
  private readonly queryDb: DuckDBInstance;
  /** The first fence's parse of each query text asked lately (see `ParseCache`). */
  private readonly parses: ParseCache;
  /** Prepares at once on `queryDb`, each holding one of libuv's threads (see `PrepareTurns`). */
  private readonly prepares = new PrepareTurns(preparesAtOnce());
  private readonly maxRows: number;
  private readonly maxBytes: number;
  private readonly timeoutMs: number;
  private readonly freshnessMs: number;
  /** One materialization at a time per process: a second query waits for the first's partitions. */
  private readonly materializing = new Map<string, Promise<Materialized>>();
  /**
   * The last look at the lake per scope, when it began, the lake's `writeMark` then and whether
   * it has ended; the most recent last, `MAX_LOOKS` at most.
   */
  private readonly known = new Map<string, Look>();
  /** Looks under way (see `MAX_LOOKS_UNDER_WAY`). */
  private looksUnderWay = 0;
  /** Passes of decoding running, waiting, and those waiting for a turn (see `MAX_RUNNING_PASSES`). */
  private runningPasses = 0;
  private waitingPasses = 0;
  private readonly passTurns: ((granted: boolean) => void)[] = [];
  private readonly sessions = new Map<string, Session>();
  /**
   * The document blocks read so far, by block id: one per `--diff` replay and one per persisted
   * run's counts, each small; those of blocks no longer in the lake (retention deleted them) are
   * forgotten at the next look at the whole lake.
   */
  private readonly documentBlocks = new Map<string, Promise<DocumentRow<unknown>>>();
  /** Blocks found unreadable and merges that failed, each left alone for `unreadableRetryMs` before it is tried again. */
  private readonly memory: AnalyticsMemory;
  /** Lets go of the cached partitions of processes retention deleted, in the background of the looks. */
  private readonly goneProcesses: GoneProcessSweep;
  private closed = false;
  /** Aborted at close: decoding under way stops at its next block (see `materialize`). */
  private readonly closing = new AbortController();

  private constructor(
    lake: Lake,
    ownsLake: boolean,
    store: PartitionStore,
    pool: PartitionWriter,
    queryDb: DuckDBInstance,
    options: AnalyticsOptions,
  ) {
    super();
    this.lake = lake;
    this.ownsLake = ownsLake;
    this.store = store;
    this.cacheDir = normalize(options.cacheDir);
    // Its own directory, as its spill's: a kill -9 mid-partition left files no one removed.
    this.scratch = join(options.cacheDir, 'scratch', ownDirectoryName());
    this.pool = pool;
    this.queryDb = queryDb;
    this.parses = new ParseCache(queryDb);
    this.maxRows = options.maxRows ?? 10_000;
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.freshnessMs = options.freshnessMs ?? 1000;
    this.goneProcesses = new GoneProcessSweep(
      store,
      lake,
      options.goneProcessSweepMs ?? 60_000,
      options.onSweepFailed,
    );
    const retryMs = options.unreadableRetryMs ?? 10_000;
    this.memory = {
      unreadable: new RetryLater(retryMs),
      merges: new RetryLater(retryMs),
      onMergeFailed: options.onMergeFailed,
    };
  }

  static async open(given: AnalyticsOptions): Promise<Analytics> {
    checkAnalyticsOptions(given);
    // One spelling of the cache for everything: joined paths lose a `..` as text, and DuckDB's
    // allowed directory had it as given (`c/link/../x`: every query failed, its files elsewhere).
    const options = { ...given, cacheDir: resolve(given.cacheDir) };
    const memoryLimit = options.memoryLimit === undefined ? undefined : checkMemoryLimit(options.memoryLimit);
    const ownsLake = !(options.lake instanceof Lake);
    const lake = options.lake instanceof Lake ? options.lake : Lake.open(options.lake);
    await lake.ready();
    const cache = options.cacheDir;
    try {
      makeDirectoriesSync(join(cache, 'spill'));
      if (options.partitions === undefined) checkAnalyticsCacheDir(lake, cache);
    } catch (error) {
      if (ownsLake) await lake.close();
      throw error;
    }
    const store = options.partitions ?? new LakePartitionStore(lake, cache);
    // Queries: no file outside the partitions is readable, and nothing can change that. DuckDB
    // loads here, not when the module is imported (RemoteAnalytics needs none of it).
    const { DuckDBInstance } = await import('@duckdb/node-api');
    sweepGone(join(cache, 'spill'));
    sweepGone(join(cache, 'scratch'));
    const queryDb = await DuckDBInstance.create(':memory:', {
      // Its own directory: two analytics over one cache dir (a server and a CLI) spill apart.
      temp_directory: join(cache, 'spill', ownDirectoryName()),
      ...(memoryLimit === undefined ? {} : { memory_limit: memoryLimit }),
    });
    const setup = await queryDb.connect();
    await setup.run(`SET allowed_directories = ['${cache.replaceAll("'", "''")}']`);
    // Partition files never change once written: their Parquet metadata is read once, not per query.
    await setup.run('SET parquet_metadata_cache = true');
    await setup.run('SET enable_external_access = false');
    await setup.run('SET lock_configuration = true');
    setup.closeSync();
    // Loaded here, as DuckDB is: importing the analytics loads neither.
    const threads = options.etlThreads ?? 1;
    const writer =
      threads === 0
        ? new (await import('./etl-inline.js')).InlineEtl()
        : new (await import('./etl-pool.js')).EtlPool(threads);
    return new Analytics(lake, ownsLake, store, writer, queryDb, options);
  }

  /**
   * Runs one read-only statement over the analytics tables (see `createViews`), over one process
   * or all, and rows of a time window or all. Refuses anything else with a `QueryRefusedError`
   * saying why; stops at the time limit with a `QueryTimeoutError` (or a `QueryNotReadyError`,
   * see `QueryScope.timeLimit`).
   */
  readonly query: QueryFunction = async (sql, scope = {}) => {
    if (this.closed) throw new QueryRefusedError('the analytics are closed');
    const began = performance.now();
    const window = resolveWindow(scope);
    const processes = scopeProcesses(scope);
    checkScopeLimits(scope);
    const limit: QueryLimit = {
      timeoutMs: scope.timeoutMs ?? this.timeoutMs,
      began,
      whole: scope.timeLimit === 'whole',
      sqlBegan: undefined,
    };
    // Refused before anything is decoded for it.
    const parsed = await this.parse(sql, scope, limit);
    // A query of the lake's own tables alone decodes nothing.
    const partitions = [...parsed.tables].some((table) => !METADATA_TABLES.has(table));
    const key = `${processes?.join(',') ?? '*'}|${window.beginNs ?? ''}|${window.endNs ?? ''}|${partitions}`;
    let decoded = 0;
    for (let attempt = 0; ; attempt++) {
      limit.sqlBegan = undefined;
      const { view, decodedBlocks, look } = await this.within(
        () => this.look(key, processes, window, partitions, began),
        scope,
        limit,
        () => true,
        () =>
          `the query's time limit of ${limit.timeoutMs} ms passed while the lake was read for it (blocks no query had read before are decoded then); that goes on, and what it made is kept: ask again in a moment`,
      );
      decoded += decodedBlocks;
      // Until its SQL begins, the query waits for its turn on its scope's connection.
      const run = this.within(
        () =>
          this.inSession(key, view, (connection, linger) => this.run(connection, sql, scope, limit, linger)),
        scope,
        limit,
        () => limit.sqlBegan === undefined,
        () =>
          `the query's time limit of ${limit.timeoutMs} ms passed before its SQL could begin (queries of its scope asked before it still ran, or its views were being made); ask again in a moment`,
      );
      try {
        const all = view.materialized.flatMap((m) => m.unreadable);
        const unreadable = { blocks: all.length, records: all.reduce((n, b) => n + b.objectCount, 0) };
        const unreadableBlocks = all.slice(0, MAX_UNREADABLE_LISTED);
        return { ...(await run), decodedBlocks: decoded, unreadable, unreadableBlocks };
      } catch (error) {
        // A partition file gone or damaged since the last look (no query can name a file of its
        // own: external access is off), found by the query or by its views being made (DuckDB's
        // IO error, or a refusal): look at the lake again, which rebuilds it. Another analytics
        // sharing the cache dir may merge partitions away again meanwhile: a few times.
        // A file of this cache dir's, named by DuckDB: not a user's data that says as much.
        const failed = error instanceof ViewsNotMadeError ? error.cause : error;
        const message = messageOf(failed);
        const ours = message.includes('.parquet') && message.includes(this.cacheDir);
        const gone = ours && /No such file|No files found|Cannot open file/.test(message);
        if (
          attempt + 1 >= (gone ? PARTITION_LOOKS : 2) ||
          performance.now() - began >= limit.timeoutMs ||
          failed instanceof QueryTimeoutError ||
          failed instanceof QueryNotReadyError ||
          failed instanceof QueryCancelledError ||
          !ours
        )
          throw failed;
        // Not a newer look of the scope, under way for other queries.
        if (this.known.get(key) === look) this.known.delete(key);
      }
    }
  };

  /**
   * What this analytics keeps between queries, for a long-running server to watch: looks at the
   * lake (32 ended ones at most, and those under way: at most 72), passes of decoding running (at
   * most 8) and waiting (at most 64), connections with their views (at most 8), document blocks
   * read, blocks found unreadable and not read again yet, merges that failed and are not tried again
   * yet (by the partitions they were to merge), query texts whose parse is kept (at most 128).
   */
  held(): {
    readonly looks: number;
    readonly looksUnderWay: number;
    readonly decoding: number;
    readonly waitingToDecode: number;
    readonly sessions: number;
    readonly documents: number;
    readonly unreadable: number;
    readonly failedMerges: number;
    readonly parses: number;
  } {
    return {
      looks: this.known.size,
      looksUnderWay: this.looksUnderWay,
      decoding: this.runningPasses,
      waitingToDecode: this.waitingPasses,
      sessions: this.sessions.size,
      documents: this.documentBlocks.size,
      unreadable: this.memory.unreadable.size,
      failedMerges: this.memory.merges.size,
      parses: this.parses.size,
    };
  }

  /**
   * Lets go now (after the sweep under way, if any) of the cached partitions of processes the lake
   * no longer lists, as the looks' sweeps do in the background; returns their ids.
   */
  sweepGoneProcesses(): Promise<string[]> {
    if (this.closed) return Promise.resolve([]);
    return this.goneProcesses.sweep();
  }

  /** Sweeps of the gone processes begun so far (at looks, or by `sweepGoneProcesses`). */
  get goneProcessSweeps(): number {
    return this.goneProcesses.sweeps;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A query that stopped waiting for its decoding (its time limit, its client gone) left it
    // going: it stops now rather than hold the close until every block is decoded.
    this.closing.abort(new QueryRefusedError('the analytics are closed'));
    for (const refuse of this.passTurns.splice(0)) refuse(false);
    await Promise.allSettled([...this.sessions.values()].map((s) => s.tail));
    for (const session of this.sessions.values()) session.connection.closeSync();
    this.sessions.clear();
    await Promise.allSettled(this.materializing.values());
    await this.goneProcesses.close();
    await this.pool.close();
    this.queryDb.closeSync();
    rmSync(this.scratch, { recursive: true, force: true });
    if (this.ownsLake) await this.lake.close();
  }

  /**
   * The first fence (`ParseCache`), within the query's time limit (counted from its start) and
   * its signal: a parse takes a millisecond, but waits for one of libuv's threads, which the
   * server's file I/O and every DuckDB call share. Past the limit, a `QueryNotReadyError` (the
   * server was busy: ask again), the parse going on for no one.
   */
  private async parse(sql: string, scope: QueryScope, limit: QueryLimit): Promise<ParsedQuery> {
    const signal = scope.signal;
    if (aborted(signal)) throw cancelled();
    const stop = new AbortController();
    const timer = setTimeout(
      () => stop.abort(),
      Math.max(0, limit.began + limit.timeoutMs - performance.now()),
    );
    const cancel = () => stop.abort();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      return await this.parses.parse(sql, stop.signal);
    } catch (error) {
      if (!(error instanceof QueryCancelledError) || !stop.signal.aborted) throw error;
      if (aborted(signal)) throw cancelled();
      throw new QueryNotReadyError(
        `the query's time limit of ${limit.timeoutMs} ms passed before it was parsed (the server's threads were busy); ask again in a moment`,
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', cancel);
    }
  }

  /**
   * Waits for `work` while `waiting()` holds (then the work bounds itself), until the scope's
   * signal aborts (a `QueryCancelledError`) or, for a query bounded whole, its time limit passes (a
   * `QueryNotReadyError` saying `late()`). The work goes on either way, for the queries after this
   * one: a look decodes partitions that are kept, a turn on a connection passes when it comes.
   * Neither is begun for a query already stopped.
   */
  private async within<T>(
    work: () => Promise<T>,
    scope: QueryScope,
    limit: QueryLimit,
    waiting: () => boolean,
    late: () => string,
  ): Promise<T> {
    const signal = scope.signal;
    if (signal?.aborted === true) throw cancelled();
    const left = limit.began + limit.timeoutMs - performance.now();
    if (limit.whole && left <= 0) throw new QueryNotReadyError(late());
    const running = work();
    if (signal === undefined && !limit.whole) return running;
    // Its end is awaited by no one once this query stops waiting: its failure is the next one's.
    running.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    let stop: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      stop = () => {
        if (waiting()) reject(cancelled());
      };
      signal?.addEventListener('abort', stop, { once: true });
      if (limit.whole) {
        timer = setTimeout(() => {
          if (waiting()) reject(new QueryNotReadyError(late()));
        }, left);
      }
    });
    try {
      return await Promise.race([running, stopped]);
    } finally {
      clearTimeout(timer);
      if (stop !== undefined) signal?.removeEventListener('abort', stop);
    }
  }

  private async run(
    connection: DuckDBConnection,
    sql: string,
    scope: QueryScope,
    limit: QueryLimit,
    linger: (work: Promise<unknown>) => void,
  ): Promise<Omit<QueryResult, 'decodedBlocks' | 'unreadable' | 'unreadableBlocks'>> {
    const signal = scope.signal;
    // Its turn came after it stopped waiting for it (see `within`): nothing more is done for it.
    if (signal?.aborted === true) throw cancelled();
    const { timeoutMs, whole } = limit;
    const before = performance.now() - limit.began;
    if (whole && before >= timeoutMs) {
      throw new QueryNotReadyError(
        `the query's time limit of ${timeoutMs} ms passed before its SQL could begin; ask again in a moment`,
      );
    }
    // Its SQL begins with its binding, which can take longer than anything after it (CTEs inlined
    // at every reference): the time limit and the signal bound it as they bound the rest.
    limit.sqlBegan = before;
    const maxRows = scope.maxRows ?? this.maxRows;
    // Bounding the whole query, the limit counts from its start: reading the lake for it, and
    // the queries of its scope before it on its connection, took their share.
    const left = whole ? timeoutMs - before : timeoutMs;
    const timeoutError = (): DorsalError =>
      // Most of it went before the SQL: asked again, the query finds all that done and has it all.
      whole && before >= timeoutMs / 2
        ? new QueryNotReadyError(
            `the query's time limit of ${timeoutMs} ms passed in its SQL, ${Math.round(before)} ms of it having gone to reading the lake for it; what was read is kept: ask again`,
          )
        : new QueryTimeoutError(`the query ran past its time limit of ${timeoutMs} ms`);
    let timedOut = false;
    // Ends its wait for a turn to prepare, and its wait for the prepare, at the limit or the signal.
    const stop = new AbortController();
    const timer = setTimeout(() => {
      timedOut = true;
      stop.abort();
      connection.interrupt();
    }, left);
    // Its client gone (or its server stopping): DuckDB stops the SQL rather than finish it for no one.
    const cancel = () => {
      stop.abort();
      connection.interrupt();
    };
    signal?.addEventListener('abort', cancel, { once: true });
    let prepared: DuckDBPreparedStatement | undefined;
    // Let go of once its result stream is made (as `connection.stream` does), or not run.
    const release = () => {
      prepared?.destroySync();
      prepared = undefined;
    };
    try {
      prepared = await this.prepare(connection, sql, stop.signal, linger);
      // Chunk by chunk (2048 rows), each row made into JavaScript values only when its turn
      // comes, so that an answer is cut at its row or byte limit before the rest is made (a row
      // may hold a string of any size: a whole chunk of them made at once exhausted the heap).
      const { JsonDuckDBValueConverter } = await import('@duckdb/node-api');
      const result = await prepared.stream().finally(release);
      const types = result.columnTypes();
      const rows: Json[][] = [];
      let bytes = 0;
      let truncated = false;
      read: for await (const chunk of result) {
        for (let i = 0; i < chunk.rowCount; i++) {
          const row = chunk.convertRowValues(i, JsonDuckDBValueConverter) as Json[];
          const size = jsonSize(row);
          if (rows.length === maxRows || bytes + size > this.maxBytes) {
            if (rows.length === 0) {
              throw new QueryRefusedError(
                `the answer's first row is larger than ${binaryBytes(this.maxBytes)} as JSON, the most an answer holds: select less of it`,
              );
            }
            truncated = true;
            break read;
          }
          rows.push(row);
          bytes += size;
        }
      }
      return {
        columns: result.columnNames().map((name, i) => ({ name, type: String(types[i]) })),
        rows,
        truncated,
      };
    } catch (error) {
      if (timedOut && error instanceof PrepareTurnMissed) {
        throw new QueryNotReadyError(
          `the query's time limit of ${timeoutMs} ms passed while it waited for its turn to be prepared (other queries' statements were being prepared); ask again in a moment`,
        );
      }
      if (timedOut) throw timeoutError();
      if (aborted(signal)) throw cancelled();
      if (error instanceof QueryRefusedError) throw error;
      throw new QueryRefusedError(messageOf(error), { cause: error });
    } finally {
      release();
      clearTimeout(timer);
      signal?.removeEventListener('abort', cancel);
    }
  }

  /**
   * `sql` prepared on `connection` (`checkBound`) in a turn of `prepares`, or a rejection as soon
   * as `stop` aborts (the caller interrupts the connection then): DuckDB checks its interrupt
   * seldom in some bindings, so the query is answered at its limit, not when the binding heeds the
   * interrupt. A prepare that goes on keeps its turn, and `linger` is told of it (the connection is
   * not the next query's until it ends); what it prepares then is let go of.
   */
  private async prepare(
    connection: DuckDBConnection,
    sql: string,
    stop: AbortSignal,
    linger: (work: Promise<unknown>) => void,
  ): Promise<DuckDBPreparedStatement> {
    let done: () => void;
    try {
      done = await this.prepares.acquire(stop);
    } catch (error) {
      throw new PrepareTurnMissed(error);
    }
    const preparing = checkBound(connection, sql).finally(done);
    try {
      return await untilAborted(preparing, stop);
    } catch (error) {
      if (!(error instanceof QueryCancelledError && stop.aborted)) throw error;
      // An interrupt that came before DuckDB began the statement is forgotten when it begins:
      // told again until the prepare ends.
      const again = setInterval(() => connection.interrupt(), REINTERRUPT_MS);
      linger(
        preparing
          .then((prepared) => prepared.destroySync())
          .catch(() => {})
          .finally(() => clearInterval(again)),
      );
      throw new QueryCancelledError('stopped while its statement was prepared');
    }
  }

  /**
   * Runs `work` on the scope's connection, after the queries queued on it; the connection's views
   * are made again when what they are made of changed. `work` is queued in the same turn as the
   * session is found or made: a session replaced or evicted is closed once its tail is done, and
   * a run queued a turn later could find it closed.
   */
  private async inSession<T>(
    key: string,
    view: LakeView,
    work: (connection: DuckDBConnection, linger: (work: Promise<unknown>) => void) => Promise<T>,
  ): Promise<T> {
    const queue = (session: Session): Promise<T> => {
      // What `work` left running on the connection when it ended (a prepare past its interrupt):
      // the next query's turn waits for it too, as does closing the connection.
      const lingering: Promise<unknown>[] = [];
      const run = session.tail.then(() => work(session.connection, (w) => lingering.push(w)));
      session.tail = run.catch(() => {}).then(() => Promise.allSettled(lingering));
      return run;
    };
    let session = this.sessions.get(key);
    if (session !== undefined && session.fingerprint === view.fingerprint) {
      // Most recently used last.
      this.sessions.delete(key);
      this.sessions.set(key, session);
      return queue(session);
    }
    const connection = await this.queryDb.connect();
    try {
      await createViews(connection, view);
    } catch (error) {
      // Not kept, so closed here (a partition file removed since the look fails its view).
      connection.closeSync();
      throw new ViewsNotMadeError(error);
    }
    if (this.closed) {
      // Closed meanwhile: its sessions are gone, and so is the database under this connection.
      connection.closeSync();
      throw new QueryRefusedError('the analytics are closed');
    }
    // The session found before the awaits may have been replaced meanwhile: the one there now goes.
    const replaced = this.sessions.get(key);
    if (replaced !== undefined) {
      void replaced.tail.then(() => replaced.connection.closeSync());
      this.sessions.delete(key);
    }
    session = { connection, fingerprint: view.fingerprint, tail: Promise.resolve() };
    this.sessions.set(key, session);
    const run = queue(session);
    while (this.sessions.size > MAX_SESSIONS) {
      const [oldestKey, oldest] = this.sessions.entries().next().value as [string, Session];
      this.sessions.delete(oldestKey);
      void oldest.tail.then(() => oldest.connection.closeSync());
    }
    return run;
  }

  /**
   * What the lake holds for a scope (its processes, streams, blocks and materialized partitions).
   * One look at a time per scope. A look is reused for `freshnessMs` after it ended, and joined
   * while under way if it began less than that ago, unless something of its scope was written
   * through this lake object since it began (a server's own ingestion): then the query waits for
   * a look that began after it asked, which the queries meanwhile share, at most one per
   * `MIN_RELOOK_MS`. `decodedBlocks`: what this call decoded (0 when it reuses a look).
   */
  private async look(
    key: string,
    process: readonly string[] | undefined,
    window: TimeWindow,
    partitions: boolean,
    askedAt: number,
  ): Promise<{ view: LakeView; decodedBlocks: number; look: Look }> {
    // Every write told before this query asked is in what it answers from.
    const asked = this.lake.writeMark;
    let now = performance.now();
    for (let known = this.known.get(key); known !== undefined; ) {
      // Judged by when it ended, or, under way, by when it began; one that began after the query
      // was asked is new enough for it, whatever the freshness.
      const fresh = known.at >= askedAt || now - (known.endedAt ?? known.at) < this.freshnessMs;
      if (fresh && (known.writeMark >= asked || !this.lake.writtenSince(known.writeMark, process)))
        return { view: await known.view, decodedBlocks: 0, look: known };
      if (known.endedAt === undefined) {
        // Under way: waited for, not begun again beside it (however long a look takes).
        await known.view.catch(() => undefined);
      } else {
        // Out of date: a new look once the last began MIN_RELOOK_MS ago.
        const wait = fresh ? known.at + Math.min(MIN_RELOOK_MS, this.freshnessMs) - now : 0;
        if (wait <= 0) break;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
      if (this.closed) throw new QueryRefusedError('the analytics are closed');
      known = this.known.get(key);
      now = performance.now();
    }
    if (this.looksUnderWay >= MAX_LOOKS_UNDER_WAY) {
      throw new ServerBusyError(
        `the analytics are reading the lake for ${MAX_LOOKS_UNDER_WAY} scopes already: ask again in a moment`,
      );
    }
    this.looksUnderWay++;
    const writeMark = this.lake.writeMark;
    const view = this.lookAgain(process, window, partitions);
    const look: Look = { at: now, writeMark, view, endedAt: undefined };
    const settle = () => {
      look.endedAt = performance.now();
      this.looksUnderWay--;
    };
    view.then(settle, settle);
    this.known.delete(key);
    this.known.set(key, look);
    // A look past its freshness is never used again; the oldest ended ones go first past
    // MAX_LOOKS. One under way stays: it keeps a second look of its scope from running beside it.
    for (const [oldKey, old] of this.known) {
      if (old.endedAt === undefined) continue;
      if (this.known.size <= MAX_LOOKS && now - old.endedAt < this.freshnessMs) break;
      if (oldKey !== key) this.known.delete(oldKey);
    }
    try {
      const seen = await view;
      return { view: seen, decodedBlocks: seen.materialized.reduce((n, m) => n + m.decodedBlocks, 0), look };
    } catch (error) {
      // A failed look is not remembered: the next query looks again.
      if (this.known.get(key)?.view === view) this.known.delete(key);
      throw error;
    }
  }

  private async lookAgain(
    wanted: readonly string[] | undefined,
    window: TimeWindow,
    partitions: boolean,
  ): Promise<LakeView> {
    // Its turn came after the close (the look of a query that stopped waiting for it).
    if (this.closed) throw new QueryRefusedError('the analytics are closed');
    // Not waited for: a look costs no more for it.
    this.goneProcesses.poke();
    const processes =
      wanted === undefined
        ? await this.lake.processes()
        : await Promise.all(wanted.map((p) => this.process(p)));
    const materialized = partitions
      ? await Promise.all(processes.map((p) => this.materialized(p.processId, window)))
      : [];
    const ids = new Set(processes.map((p) => p.processId));
    const streams = (await this.lake.streams()).filter((s) => ids.has(s.processId));
    const blocks = (
      await Promise.all(processes.map((p) => this.lake.blocks({ processId: p.processId })))
    ).flat();
    if (wanted === undefined) this.forgetDocumentsNotIn(blocks);
    const [diffs, counts] = await Promise.all([
      this.documents(DIVERGENCES_TAG, parseStoredDiff, streams, blocks),
      this.documents(COUNTS_TAG, parseStoredCounts, streams, blocks),
    ]);
    const fingerprint = JSON.stringify([
      processes.map((p) => p.processId),
      // Which streams and blocks, not only how many: retention deletes some as others arrive.
      digestOf(streams.map((s) => s.streamId)),
      digestOf(blocks.map((b) => b.blockId)),
      materialized.map((m) => [...m.files.entries()]),
      // Which blocks do not read, and why (a blob missing, then damaged, says so anew).
      materialized.map((m) => m.unreadable.map((u) => [u.blockId, u.error])),
      // A document block that did not read at the last look and reads now changes the views.
      [...diffs, ...counts].map((d) => 'error' in d),
    ]);
    return { processes, streams, blocks, materialized, diffs, counts, window, fingerprint };
  }

  /**
   * The blocks of the document streams tagged `tag` (see `persist/documents.ts`), each read whole
   * and parsed by `parse`. A block never changes: each is read once, unless it did not read (it is
   * said so in its row's `error`, not left out, and read again at the next look: the blob store
   * may have been down).
   */
  private async documents<T>(
    tag: string,
    parse: (objects: Uint8Array) => T,
    streams: readonly StreamRow[],
    blocks: readonly BlockRow[],
  ): Promise<DocumentRow<T>[]> {
    const tagged = new Set(streams.filter((s) => s.tags.includes(tag)).map((s) => s.streamId));
    if (tagged.size === 0) return [];
    const read = blocks
      .filter((b) => tagged.has(b.streamId))
      .map((b) => {
        let row = this.documentBlocks.get(b.blockId);
        if (row === undefined) {
          row = this.readDocument(b, parse);
          this.documentBlocks.set(b.blockId, row);
        }
        return row as Promise<DocumentRow<T>>;
      });
    return Promise.all(read);
  }

  /** Forgets the documents of blocks that are not among `blocks` (every block of the lake). */
  private forgetDocumentsNotIn(blocks: readonly BlockRow[]): void {
    if (this.documentBlocks.size === 0) return;
    const present = new Set(blocks.map((b) => b.blockId));
    for (const blockId of this.documentBlocks.keys())
      if (!present.has(blockId)) this.documentBlocks.delete(blockId);
  }

  private async readDocument<T>(b: BlockRow, parse: (objects: Uint8Array) => T): Promise<DocumentRow<T>> {
    try {
      const { payload } = await this.lake.readBlock(b);
      return { processId: b.processId, document: parse(payload.objects) };
    } catch (error) {
      this.documentBlocks.delete(b.blockId);
      const message = messageOf(error);
      // The lake's own errors name the block already.
      return {
        processId: b.processId,
        error: message.startsWith(`block ${b.blockId}`) ? message : `block ${b.blockId}: ${message}`,
      };
    }
  }

  private async process(processId: string): Promise<ProcessRow> {
    const process = await this.lake.process(processId);
    if (process === undefined) throw new LakeNotFoundError(`no process ${processId} in the lake`);
    return process;
  }

  private materialized(processId: string, window: TimeWindow): Promise<Materialized> {
    if (this.waitingPasses >= MAX_WAITING_PASSES) {
      return Promise.reject(
        new ServerBusyError(
          `the analytics have ${MAX_WAITING_PASSES} passes of decoding waiting already: ask again in a moment`,
        ),
      );
    }
    this.waitingPasses++;
    const running = this.materializing.get(processId);
    const build = async () => {
      let done: () => void;
      try {
        done = await this.passTurn();
      } finally {
        this.waitingPasses--;
      }
      try {
        return await materialize(
          this.lake,
          this.store,
          this.pool,
          this.scratch,
          processId,
          window,
          this.memory,
          this.closing.signal,
        );
      } finally {
        done();
      }
    };
    const next = (running ?? Promise.resolve()).then(build, build);
    this.materializing.set(processId, next);
    void next
      .finally(() => {
        if (this.materializing.get(processId) === next) this.materializing.delete(processId);
      })
      .catch(() => {});
    return next;
  }

  /**
   * A turn to decode: at most `MAX_RUNNING_PASSES` passes at once. Resolves with the call that
   * ends it (handing it to the next pass waiting); refused once the analytics close.
   */
  private async passTurn(): Promise<() => void> {
    if (this.closed) throw new QueryRefusedError('the analytics are closed');
    if (this.runningPasses < MAX_RUNNING_PASSES) this.runningPasses++;
    else {
      // Handed over by a pass that ends, which counts this one in; or refused by `close`.
      const granted = await new Promise<boolean>((resolve) => this.passTurns.push(resolve));
      if (!granted) throw new QueryRefusedError('the analytics are closed');
    }
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const next = this.passTurns.shift();
      if (next !== undefined) next(true);
      else this.runningPasses--;
    };
  }
}

/**
 * A digest of a list of ids, in their order, as text: two 32-bit FNV-1a hashes with different
 * offsets, and the count. Enough to tell one lake's listing from the next (a collision would keep
 * views one look longer than they should be kept), at a few ns per character, with no large text made.
 */
export function digestOf(ids: readonly string[]): string {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (const id of ids) {
    for (let i = 0; i < id.length; i++) {
      const c = id.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    // A separator: ['ab', 'c'] and ['a', 'bc'] differ.
    a = Math.imul(a ^ 0x2c, 0x01000193);
    b = Math.imul(b ^ 0x2c, 0x5bd1e995);
  }
  const hex = (h: number) => (h >>> 0).toString(16).padStart(8, '0');
  return `${ids.length}:${hex(a)}${hex(b)}`;
}

/** A character JSON text escapes. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is looked for
const ESCAPED = /["\\\u0000-\u001f]/;

/**
 * A JSON value's size as text, near enough to bound an answer: a string's characters and quotes
 * (escaped as JSON escapes them), a number's digits, and the brackets, commas and keys around the rest.
 */
function jsonSize(value: Json): number {
  if (value === null) return 4;
  // Characters JSON escapes (quotes, backslashes, controls: \u0001 is six) are counted as escaped.
  if (typeof value === 'string') return ESCAPED.test(value) ? escapedSize(value) : value.length + 2;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value).length;
  let size = 2;
  if (Array.isArray(value)) for (const item of value) size += jsonSize(item) + 1;
  else for (const [key, item] of Object.entries(value)) size += key.length + 4 + jsonSize(item);
  return size;
}

/** `4 KiB`, `64 MiB`: a size as a limit is said. */
function binaryBytes(bytes: number): string {
  const [size, unit] = bytes < 1024 * 1024 ? [bytes / 1024, 'KiB'] : [bytes / 1024 / 1024, 'MiB'];
  return `${Math.round(size * 10) / 10} ${unit}`;
}

/** A string's size as JSON text, its escapes counted (`\n` two characters, `\u0001` six). */
function escapedSize(text: string): number {
  let size = text.length + 2;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 || c === 0x5c || c === 0x08 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d)
      size += 1;
    else if (c < 0x20) size += 5;
  }
  return size;
}

/**
 * Looks at the lake a query takes, at most, while a partition file it reads is gone when it reads
 * it (see `query`: another analytics merged it away meanwhile, again and again on a busy lake);
 * within its time limit. A file there but damaged is looked for once more only.
 */
const PARTITION_LOOKS = 16;

/** A directory of this analytics' own, under `spill` or `scratch`: `<host>-<pid>-<id>`. */
function ownDirectoryName(): string {
  return `${spillHost()}-${process.pid}-${randomUUID().slice(0, 8)}`;
}

/** Files an earlier version left loose in `scratch` are swept once this old (its writes are long over). */
const LOOSE_FILE_AGE_MS = 3_600_000;

/**
 * Removes what analytics of processes that are gone left in `dir` (a query's spill files, a
 * partition's scratch files, under `<host>-<pid>-<id>`): a clean close removes its own, a killed
 * process's stay. A directory of a live process (this one's, another's on this machine) is left
 * alone; a file left loose there (by an earlier version) once over an hour old.
 */
function sweepGone(dir: string): void {
  // Only this host's: a cache dir on a shared disk may hold another machine's live ones.
  const mine = `${spillHost()}-`;
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isFile()) {
        const modified = statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
        if (Date.now() - modified > LOOSE_FILE_AGE_MS) rmSync(path, { force: true });
        continue;
      }
      if (!entry.isDirectory() || !entry.name.startsWith(mine)) continue;
      const pid = Number(/^(\d+)-/.exec(entry.name.slice(mine.length))?.[1]);
      if (!Number.isSafeInteger(pid) || pid === process.pid || alive(pid)) continue;
      rmSync(path, { recursive: true, force: true });
    }
  } catch {
    // Best effort: what cannot be removed now is tried again at the next open.
  }
}

/** This host's name as a spill directory's prefix (no path separator, no dash to split on). */
function spillHost(): string {
  return hostname().replace(/[^A-Za-z0-9.]/g, '_');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, another user's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A query's time limit: its length, when the query began (performance.now(), ms), and its reach. */
interface QueryLimit {
  readonly timeoutMs: number;
  readonly began: number;
  /** The limit bounds the whole query (`QueryScope.timeLimit`), not its SQL alone. */
  readonly whole: boolean;
  /** When its SQL began, in ms from `began` (undefined before). */
  sqlBegan: number | undefined;
}

/** Read afresh: a signal checked once before is not known to stay as it was. */
function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** What a query whose signal aborted is rejected with. */
function cancelled(): QueryCancelledError {
  return new QueryCancelledError(
    'the query was stopped before its end: its client went away, or its server is stopping',
  );
}
