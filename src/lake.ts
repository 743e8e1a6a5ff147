/**
 * `dorsal/lake`: where telemetry is stored. Tables `processes`, `streams` and `blocks` in a
 * metadata database (SQLite or PostgreSQL), each block's payload in blob storage (a directory or
 * S3), API keys, retention. It loads the database drivers and the AWS SDK: import it where the
 * lake is read or served, never in an actor. Every export is named here explicitly.
 *
 * @example
 * import { Lake } from 'dorsal/lake';
 * const lake = Lake.open({ data: './dorsal-data' });
 * for (const row of await lake.blocks({ streamId })) console.log(row.blockId, row.objectCount);
 * await lake.close();
 */
export {
  ApiKeyError,
  LakeConfigError,
  LakeNotFoundError,
  LakeUnavailableError,
} from './telemetry/errors.js';
export {
  API_KEY_PREFIX,
  createApiKey,
  hashApiKey,
  newApiKey,
  revokeApiKey,
} from './telemetry/keys/api-keys.js';
export { type DirectoryBlobOptions, DirectoryBlobStore } from './telemetry/lake/directory-blobs.js';
export { Lake, type StoredBlock } from './telemetry/lake/lake.js';
export {
  DEFAULT_DATA_DIR,
  type LakeLocation,
  openBlobStore,
  openMetadataStore,
} from './telemetry/lake/open.js';
export { PostgresMetadataStore, type PostgresStoreOptions } from './telemetry/lake/postgres-store.js';
export {
  applyRetention,
  type RetentionOptions,
  type RetentionReport,
  type RetentionSchedule,
  scheduleRetention,
} from './telemetry/lake/retention.js';
export { type S3BlobOptions, S3BlobStore } from './telemetry/lake/s3-blobs.js';
export { SCHEMA_VERSION } from './telemetry/lake/schema.js';
export { SqliteMetadataStore } from './telemetry/lake/sqlite-store.js';
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
} from './telemetry/lake/types.js';
