import { ConfigError } from '../../errors.js';
import { isTimerMs, TIMER_MS_RANGE } from '../../timer-ms.js';
import { normalizeRfc3339, rfc3339ToEpochNs } from '../wire/index.js';
import { QueryRefusedError } from './guard.js';

/** Which processes a query reads, which rows by their time, and its limits. */
export interface QueryScope {
  /** One process (default: every process of the lake). */
  readonly process?: string;
  /** Several processes instead (e.g. a recording and its replay, compared in one query). */
  readonly processes?: readonly string[];
  /** Only rows at or after this time (RFC 3339, or a Date). */
  readonly begin?: string | Date;
  /** Only rows before this time. */
  readonly end?: string | Date;
  /** Rows returned at most; more are cut off, and the answer says so. */
  readonly maxRows?: number;
  /** How long the query may run, in ms. */
  readonly timeoutMs?: number;
  /**
   * What the time limit bounds: the SQL alone (`'sql'`, the default: a user who asks about a
   * large process for the first time waits for its blocks to be decoded), or the whole query from
   * its start (`'whole'`: the query route's, which hold a query slot meanwhile). A query bounded
   * whole whose limit passes before its SQL began (the lake still read for it, its blocks decoded,
   * or queries of its scope before it still running), or in its SQL after most of it went before,
   * is rejected with a `QueryNotReadyError` (ask again: what was read is kept, and reading goes
   * on); past it in its SQL otherwise, with a `QueryTimeoutError`. `RemoteAnalytics` ignores it:
   * the server's route decides.
   */
  readonly timeLimit?: 'sql' | 'whole';
  /**
   * Aborted, it stops the query: its SQL is interrupted, or its wait for decoding ends (the
   * decoding goes on, for the queries after it), and it is rejected with a `QueryCancelledError`.
   * A server aborts it when the client goes away; `RemoteAnalytics` aborts its request.
   */
  readonly signal?: AbortSignal;
}

/** A query's answer: column names and types, rows of JSON values (a BIGINT comes as a string). */
export interface QueryResult {
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  readonly rows: readonly (readonly unknown[])[];
  /** True when more rows matched than the row limit. */
  readonly truncated: boolean;
  /** Blocks decoded into partitions to answer it (0 once they are cached). */
  readonly decodedBlocks: number;
  /**
   * Blocks of the processes read whose records are left out of the tables, because their blob is
   * missing or damaged, and the records they hold. None for a query of the lake's own tables
   * alone, which reads no block.
   */
  readonly unreadable: { readonly blocks: number; readonly records: number };
  /** The first `MAX_UNREADABLE_LISTED` of them, each with why (the table `unreadable_blocks` lists them all). */
  readonly unreadableBlocks: readonly UnreadableBlock[];
}

/** A block left out of a query's tables, and why (`QueryResult.unreadableBlocks`). */
export interface UnreadableBlock {
  readonly processId: string;
  readonly streamId: string;
  readonly blockId: string;
  readonly objectCount: number;
  readonly error: string;
}

/** Unreadable blocks an answer lists at most. */
export const MAX_UNREADABLE_LISTED = 100;

/** Runs one read-only SQL statement over the analytics tables. */
export type QueryFunction = (sql: string, scope?: QueryScope) => Promise<QueryResult>;

/** A scope's time window, as epoch nanoseconds (undefined: unbounded). */
export interface TimeWindow {
  readonly beginNs?: bigint;
  readonly endNs?: bigint;
}

/** The window of a scope; a time that is not RFC 3339 (or an invalid Date) is refused, named. */
export function resolveWindow(scope: Pick<QueryScope, 'begin' | 'end'>): TimeWindow {
  const at = (value: string | Date | undefined, name: string): bigint | undefined => {
    if (value === undefined) return undefined;
    const text = value instanceof Date ? (Number.isNaN(value.getTime()) ? '' : value.toISOString()) : value;
    const normalized = typeof text === 'string' ? normalizeRfc3339(text) : undefined;
    const ns = normalized === undefined ? undefined : rfc3339ToEpochNs(normalized);
    if (ns === undefined)
      throw new QueryRefusedError(
        `${name} must be an RFC 3339 time in the years 1678 to 2261, got ${JSON.stringify(value)}`,
      );
    return ns;
  };
  const window = { beginNs: at(scope.begin, 'begin'), endNs: at(scope.end, 'end') };
  if (window.beginNs !== undefined && window.endNs !== undefined && window.endNs < window.beginNs) {
    throw new QueryRefusedError('end must not be before begin');
  }
  return window;
}

/** A SQL condition on an epoch-ns expression: within the window (true when unbounded). */
export function windowCondition(expression: string, window: TimeWindow): string {
  const terms: string[] = [];
  if (window.beginNs !== undefined) terms.push(`${expression} >= ${window.beginNs}`);
  if (window.endNs !== undefined) terms.push(`${expression} < ${window.endNs}`);
  return terms.length > 0 ? terms.join(' AND ') : 'true';
}

/**
 * Refuses a scope's `maxRows`, `timeoutMs` or `timeLimit` that a query cannot use, naming it: NaN
 * would turn every comparison with it false, a negative time limit stop every query at once.
 */
export function checkScopeLimits(scope: Pick<QueryScope, 'maxRows' | 'timeoutMs' | 'timeLimit'>): void {
  const { maxRows, timeoutMs, timeLimit } = scope;
  if (maxRows !== undefined && !(Number.isSafeInteger(maxRows) && maxRows > 0))
    throw new QueryRefusedError(`maxRows must be a positive integer, got ${String(maxRows)}`);
  if (timeoutMs !== undefined && !isTimerMs(timeoutMs))
    throw new QueryRefusedError(`timeoutMs must be ${TIMER_MS_RANGE}, got ${String(timeoutMs)}`);
  if (timeLimit !== undefined && timeLimit !== 'sql' && timeLimit !== 'whole')
    throw new QueryRefusedError(`timeLimit must be 'sql' or 'whole', got ${JSON.stringify(timeLimit)}`);
}

/** Processes a scope asks for at most (`processes`). */
export const MAX_SCOPE_PROCESSES = 64;

/**
 * The processes of a scope, lowercase, sorted and without repeats (undefined: every process of the lake);
 * a `process` and `processes` both, an empty list or one that is not of process ids, refused.
 */
export function scopeProcesses(scope: Pick<QueryScope, 'process' | 'processes'>): string[] | undefined {
  const { process, processes } = scope;
  // Ids in the lake are lowercase, and found whatever their case: one process, one spelling.
  if (processes === undefined)
    return process === undefined
      ? undefined
      : [typeof process === 'string' ? process.toLowerCase() : process];
  if (process !== undefined) throw new QueryRefusedError('give process or processes, not both');
  if (
    !Array.isArray(processes) ||
    processes.length === 0 ||
    processes.length > MAX_SCOPE_PROCESSES ||
    !processes.every((p) => typeof p === 'string' && p.length > 0)
  ) {
    throw new QueryRefusedError(
      `processes must be a list of 1 to ${MAX_SCOPE_PROCESSES} process ids, got ${JSON.stringify(processes).slice(0, 100)}`,
    );
  }
  // Ids in the lake are lowercase, and found whatever their case: one process, one spelling.
  return [...new Set(processes.map((p) => p.toLowerCase()))].sort();
}

/** A DuckDB memory size (`'1GB'`, `'512 MiB'`), or a `ConfigError` naming the option. */
export function checkMemoryLimit(value: unknown): string {
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)\s*([KMGT]?i?B)$/i.exec(value.trim()) : null;
  const unit = match?.[2]?.toUpperCase();
  const scale = unit === undefined ? undefined : MEMORY_UNITS[unit];
  const bytes = scale === undefined ? Number.NaN : Number(match![1]) * scale;
  if (!(bytes >= MIN_MEMORY_BYTES && bytes <= MAX_MEMORY_BYTES)) {
    throw new ConfigError(
      `analytics option 'memoryLimit' must be a size from 64MiB to 1024TiB such as '1GB' or '512MiB', got ${JSON.stringify(value)}`,
    );
  }
  return `${Math.floor(bytes)}B`;
}

/** Bytes per unit of a memory size, as DuckDB reads them (KB: 1000, KiB: 1024). */
const MEMORY_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
};
/** Less and no query runs (DuckDB's buffers alone); more and DuckDB refuses the setting. */
const MIN_MEMORY_BYTES = 64 * 2 ** 20;
const MAX_MEMORY_BYTES = 1024 * 2 ** 40;
