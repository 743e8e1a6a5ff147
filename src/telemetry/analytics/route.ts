import type { ExtraRoute } from '../ingestion/http.js';
import type { AnalyticsOptions } from './analytics.js';
import { checkAnalyticsOptions } from './analytics-options.js';
import { untilAborted, withinDeadline } from './deadline.js';
import { answerQuery, MAX_SQL_LENGTH, parseQueryRequest, requestTimeoutMs } from './http-query.js';
import { LazyAnalytics } from './lazy.js';
import {
  answerInSlot,
  DEFAULT_MAX_CONCURRENT_QUERIES,
  DEFAULT_MAX_WAITING_QUERIES,
  QuerySlots,
} from './query-slots.js';

/** Options of `analyticsQueryRoute`: the analytics' own, and the server's limits on every query. */
export interface AnalyticsRouteOptions extends AnalyticsOptions {
  /** Rows a query returns at most (default 10 000; a request may ask for fewer). */
  readonly maxRows?: number;
  /** How long a query may run, in ms (default 30 000; a request may ask for less). */
  readonly timeoutMs?: number;
  /**
   * Queries run or answered at once (default 4): each holds its answer's rows (up to `maxBytes`
   * of them as JSON) from when it runs until its client has taken the answer, or gone away, or
   * been cut off by the server's write timeout or answer timeout. More wait for their turn.
   */
  readonly maxConcurrentQueries?: number;
  /** Queries waiting for their turn at most (default 32); more are refused with 503 and `Retry-After`. */
  readonly maxWaitingQueries?: number;
  /**
   * How long a query waits for its turn at most, in ms (default: `timeoutMs`, 30 000); then it is
   * refused with 503 and `Retry-After`.
   */
  readonly maxQueueWaitMs?: number;
  /** Analytics shared with other routes (the views); default: the route's own, opened on first query. */
  readonly shared?: LazyAnalytics;
  /**
   * Query slots shared with other routes (the views, whose pages take one each), instead of the
   * route's own of `maxConcurrentQueries`, `maxWaitingQueries` and `maxQueueWaitMs`.
   */
  readonly slots?: QuerySlots;
}

/** The query route: an `ExtraRoute`, and what it holds now. */
export interface AnalyticsQueryRoute extends ExtraRoute {
  /** Queries running or being answered now (`inFlight`, at most `maxConcurrentQueries`), and waiting for their turn. */
  held(): { readonly inFlight: number; readonly waiting: number };
}

/**
 * `POST /analytics/query` as a route of `dorsal serve` (see `ExtraRoute` of the ingestion server):
 * a JSON body `{ sql, process?, begin?, end?, maxRows?, timeoutMs?, format? }` answered with
 * `{ columns, rows, truncated, decodedBlocks, unreadable, unreadableBlocks }` (or CSV), written as the client
 * takes it. The analytics open on the first query, so that a server that only ingests never
 * loads DuckDB.
 */
export function analyticsQueryRoute(options: AnalyticsRouteOptions): AnalyticsQueryRoute {
  // Refused here, when the server starts, not at its first query.
  checkAnalyticsOptions(options);
  const limits = { maxRows: options.maxRows ?? 10_000, timeoutMs: options.timeoutMs ?? 30_000 };
  const slots =
    options.slots ??
    new QuerySlots(
      options.maxConcurrentQueries ?? DEFAULT_MAX_CONCURRENT_QUERIES,
      options.maxWaitingQueries ?? DEFAULT_MAX_WAITING_QUERIES,
      options.maxQueueWaitMs ?? limits.timeoutMs,
    );
  const analytics = options.shared ?? new LazyAnalytics(options);
  return {
    method: 'POST' as const,
    path: '/analytics/query',
    mediaType: 'application/json',
    bodyLimit: MAX_SQL_LENGTH * 4 + 4096,
    async handle(body, request) {
      const parsed = parseQueryRequest(body);
      // A client that goes away stops its query: its slot is free once DuckDB has stopped. The
      // slot is held until the answer is out (the rows a client is still taking count).
      return answerInSlot(slots, request.signal, async () => {
        // The analytics open on the first query (DuckDB loads): that waits no longer than the
        // query may take, and stops when its client leaves; the query then has what is left.
        const limit = requestTimeoutMs(parsed, limits);
        const began = performance.now();
        const { query } = await withinDeadline(limit, request.signal, (signal) =>
          untilAborted(analytics.get(), signal),
        );
        const left = Math.max(1, Math.round(limit - (performance.now() - began)));
        return answerQuery(query, { ...parsed, timeoutMs: left }, limits, request.signal);
      });
    },
    held: () => ({ inFlight: slots.inFlight, waiting: slots.waiting }),
    close: () => analytics.close(),
  };
}
