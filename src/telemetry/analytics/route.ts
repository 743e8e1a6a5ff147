import type { AnalyticsOptions } from './analytics.js';
import { answerQuery, MAX_SQL_LENGTH, parseQueryRequest } from './http-query.js';
import { LazyAnalytics } from './lazy.js';

/** Options of `analyticsQueryRoute`: the analytics' own, and the server's limits on every query. */
export interface AnalyticsRouteOptions extends AnalyticsOptions {
  /** Rows a query returns at most (default 10 000; a request may ask for fewer). */
  readonly maxRows?: number;
  /** How long a query may run, in ms (default 30 000; a request may ask for less). */
  readonly timeoutMs?: number;
  /** Analytics shared with other routes (the views); default: the route's own, opened on first query. */
  readonly shared?: LazyAnalytics;
}

/**
 * `POST /analytics/query` as a route of `dorsal serve` (see `ExtraRoute` of the ingestion server):
 * a JSON body `{ sql, process?, begin?, end?, maxRows?, timeoutMs?, format? }` answered with
 * `{ columns, rows, truncated, decodedBlocks, unreadableBlocks }` (or CSV). The analytics open on the first query,
 * so that a server that only ingests never loads DuckDB.
 */
export function analyticsQueryRoute(options: AnalyticsRouteOptions) {
  const analytics = options.shared ?? new LazyAnalytics(options);
  const limits = { maxRows: options.maxRows ?? 10_000, timeoutMs: options.timeoutMs ?? 30_000 };
  return {
    method: 'POST' as const,
    path: '/analytics/query',
    mediaType: 'application/json',
    bodyLimit: MAX_SQL_LENGTH * 4 + 4096,
    async handle(body: Uint8Array) {
      const request = parseQueryRequest(body);
      return answerQuery((await analytics.get()).query, request, limits);
    },
    close: () => analytics.close(),
  };
}
