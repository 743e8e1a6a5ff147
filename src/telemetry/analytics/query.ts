import { normalizeRfc3339, rfc3339ToEpochNs } from '../wire/index.js';
import { QueryRefusedError } from './guard.js';

/** Which processes a query reads, which rows by their time, and its limits. */
export interface QueryScope {
  /** One process (default: every process of the lake). */
  readonly process?: string;
  /** Only rows at or after this time (RFC 3339, or a Date). */
  readonly begin?: string | Date;
  /** Only rows before this time. */
  readonly end?: string | Date;
  /** Rows returned at most; more are cut off, and the answer says so. */
  readonly maxRows?: number;
  /** How long the query may run, in ms. */
  readonly timeoutMs?: number;
}

/** A query's answer: column names and types, rows of JSON values (a BIGINT comes as a string). */
export interface QueryResult {
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  readonly rows: readonly (readonly unknown[])[];
  /** True when more rows matched than the row limit. */
  readonly truncated: boolean;
  /** Blocks decoded into partitions to answer it (0 once they are cached). */
  readonly decodedBlocks: number;
}

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
      throw new QueryRefusedError(`${name} must be an RFC 3339 time, got ${JSON.stringify(value)}`);
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
