/**
 * `dorsal/analytics`: SQL over a lake (DuckDB, embedded), with the blocks decoded just in time
 * into Parquet partitions, and the questions asked most: latency percentiles per actor × stream,
 * a message's exact tree, the slowest trees. `Analytics` runs it in this process (DuckDB loads on
 * `open`); `RemoteAnalytics` asks a `dorsal serve` over HTTP. Every export is named here.
 *
 * @example
 * import { Analytics } from 'dorsal/analytics';
 * const analytics = await Analytics.open({ lake: { data: './dorsal-data' }, cacheDir: './dorsal-data/analytics' });
 * console.log(await analytics.percentiles({ process }));
 * await analytics.close();
 */
export { Analytics, type AnalyticsOptions } from './telemetry/analytics/analytics.js';
export { ANSWER_CHUNK_CHARS, csvAnswer, jsonAnswer } from './telemetry/analytics/answer-chunks.js';
export {
  QueryCancelledError,
  QueryNotReadyError,
  QueryRefusedError,
  QueryTimeoutError,
} from './telemetry/analytics/guard.js';
export {
  answerQuery,
  MAX_SQL_LENGTH,
  parseQueryRequest,
  type QueryAnswer,
  type QueryLimits,
  type QueryRequest,
  toCsv,
} from './telemetry/analytics/http-query.js';
export { LakePartitionStore } from './telemetry/analytics/lake-partitions.js';
export { LocalPartitionStore } from './telemetry/analytics/local-partitions.js';
export type {
  MergeFailure,
  PartitionFiles,
  PartitionRow,
  PartitionStore,
} from './telemetry/analytics/partitions.js';
export type { QueryFunction, QueryResult, QueryScope } from './telemetry/analytics/query.js';
export {
  DEFAULT_MAX_CONCURRENT_QUERIES,
  DEFAULT_MAX_WAITING_QUERIES,
} from './telemetry/analytics/query-slots.js';
export {
  AnalyticsQuestions,
  type Handling,
  type MessageTree,
  type PercentileRow,
  type Percentiles,
  type PercentilesOptions,
  type SlowestTreesOptions,
  type TreeNode,
  type TreeOptions,
} from './telemetry/analytics/questions.js';
export { RemoteAnalytics, type RemoteAnalyticsOptions } from './telemetry/analytics/remote.js';
export {
  type AnalyticsQueryRoute,
  type AnalyticsRouteOptions,
  analyticsQueryRoute,
} from './telemetry/analytics/route.js';
