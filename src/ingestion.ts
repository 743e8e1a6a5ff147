/**
 * `dorsal/ingestion`: the ingestion service (`IngestionService`: decode, validate, store in a
 * lake) and its HTTP server, what `dorsal serve` runs. It loads the lake, so its database drivers
 * and the AWS SDK. Every export is named here explicitly.
 *
 * @example
 * import { startIngestionServer } from 'dorsal/ingestion';
 * const server = await startIngestionServer({ lake: { data: './dorsal-data' }, port: 0 });
 * console.log(server.url);   // http://127.0.0.1:PORT
 * await server.close();
 */
export {
  BlockConflictError,
  HostNotAllowedError,
  InsecureBindError,
  KeyRevokedError,
  PayloadTooLargeError,
  RecordConflictError,
  RequestTimeoutError,
  ServerBusyError,
  UnauthorizedError,
  UnknownProcessError,
  UnknownStreamError,
  UnsupportedMediaTypeError,
} from './telemetry/errors.js';
export {
  DEFAULT_BODY_LIMIT,
  DEFAULT_LARGE_BODY_BUDGET_BYTES,
  DEFAULT_RECORD_BODY_LIMIT,
  DEFAULT_STALL_TIMEOUT_MS,
  type IngestionRoutesOptions,
  ingestionRoutes,
} from './telemetry/ingestion/http.js';
export {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  type IngestionServer,
  type IngestionServerOptions,
  startIngestionServer,
} from './telemetry/ingestion/server.js';
export { type IngestionOptions, IngestionService, type InsertResult } from './telemetry/ingestion/service.js';
export { STATUS_BY_CODE } from './telemetry/ingestion/status.js';
export { DEFAULT_WRITE_TIMEOUT_MS } from './telemetry/ingestion/write-chunks.js';
export { DEFAULT_KEY_CACHE_MS, KeyGate } from './telemetry/keys/key-gate.js';
