/**
 * The telemetry side of dorsal: the wire format, the lake, the ingestion service and the sink.
 * Every export is named here explicitly.
 */
export {
  ApiKeyError,
  BlockConflictError,
  HostNotAllowedError,
  InsecureBindError,
  KeyRevokedError,
  LakeConfigError,
  LakeNotFoundError,
  LakeUnavailableError,
  PayloadTooLargeError,
  RequestTimeoutError,
  ServerBusyError,
  UnauthorizedError,
  UnknownProcessError,
  UnknownStreamError,
  UnsupportedMediaTypeError,
  WireFormatError,
  WireVersionError,
} from './errors.js';
export {
  DEFAULT_BODY_LIMIT,
  DEFAULT_LARGE_BODY_BUDGET_BYTES,
  DEFAULT_RECORD_BODY_LIMIT,
  DEFAULT_STALL_TIMEOUT_MS,
  type IngestionRoutesOptions,
  ingestionRoutes,
} from './ingestion/http.js';
export {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  type IngestionServer,
  type IngestionServerOptions,
  startIngestionServer,
} from './ingestion/server.js';
export { type IngestionOptions, IngestionService, type InsertResult } from './ingestion/service.js';
export { STATUS_BY_CODE } from './ingestion/status.js';
export { API_KEY_PREFIX, createApiKey, hashApiKey, newApiKey, revokeApiKey } from './keys/api-keys.js';
export { DEFAULT_KEY_CACHE_MS, KeyGate } from './keys/key-gate.js';
export { type DirectoryBlobOptions, DirectoryBlobStore } from './lake/directory-blobs.js';
export { Lake, type StoredBlock } from './lake/lake.js';
export { DEFAULT_DATA_DIR, type LakeLocation, openBlobStore, openMetadataStore } from './lake/open.js';
export { PostgresMetadataStore, type PostgresStoreOptions } from './lake/postgres-store.js';
export {
  applyRetention,
  type RetentionOptions,
  type RetentionReport,
  type RetentionSchedule,
  scheduleRetention,
} from './lake/retention.js';
export { type S3BlobOptions, S3BlobStore } from './lake/s3-blobs.js';
export { SCHEMA_VERSION } from './lake/schema.js';
export { SqliteMetadataStore } from './lake/sqlite-store.js';
export {
  type ApiKeyRow,
  type BlobStore,
  type BlobWriteOutcome,
  type BlockFilter,
  type BlockRow,
  blobPath,
  type DropReportRow,
  type MetadataStore,
  type ProcessRow,
  type StreamFilter,
  type StreamRow,
} from './lake/types.js';
export { type SinkOptions, TelemetrySink } from './sink/sink.js';
export type { DropEvent, DropReason, SinkStats } from './sink/stats.js';
export {
  HttpTransport,
  type HttpTransportOptions,
  InProcessTransport,
  type RecordKind,
  SinkSendError,
  type SinkTransport,
} from './sink/transport.js';
export {
  type Block,
  type BlockHeader,
  type BlockPayload,
  type ClockDescription,
  compressPart,
  DEFAULT_MAX_BLOCK_BYTES,
  DEFAULT_MAX_COMPRESSION_RATIO,
  type DecodedPayload,
  type DropReport,
  decodeBlock,
  decodeDropReport,
  decodePayload,
  decodeProcessInfo,
  decodeStreamInfo,
  decompressPart,
  encodeBlock,
  encodeDropReport,
  encodeProcessInfo,
  encodeStreamInfo,
  formatRfc3339Ns,
  normalizeRfc3339,
  nowRfc3339Ns,
  type PayloadLimits,
  type ProcessInfo,
  rfc3339ToEpochNs,
  type StreamInfo,
  type StreamTag,
  validateBlock,
  validateDropReport,
  validateLayout,
  validateProcessInfo,
  validateStreamInfo,
  WIRE_FORMAT_VERSION,
} from './wire/index.js';
