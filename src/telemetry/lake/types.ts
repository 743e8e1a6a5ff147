import { randomBytes } from 'node:crypto';
import type { BlockHeader, DropReport, ProcessInfo, StreamInfo } from '../wire/index.js';

/** A process as the lake holds it. */
export interface ProcessRow extends ProcessInfo {
  /** When the lake first stored it (RFC 3339, UTC). */
  readonly insertTime: string;
}

/** A stream as the lake holds it. */
export interface StreamRow extends StreamInfo {
  readonly insertTime: string;
}

/** A block's metadata as the lake holds it; its payload is in the blob store. */
export interface BlockRow extends BlockHeader {
  /** Size of the stored blob in bytes. */
  readonly payloadSize: number;
  readonly insertTime: string;
  /** Where its payload is in the blob store (see `blobPath` and `uniqueBlobPath`). */
  readonly blobPath: string;
}

/** An API key as the lake holds it: a name and the key's SHA-256, never the key. */
export interface ApiKeyRow {
  readonly name: string;
  /** Hex SHA-256 of the key. */
  readonly keyHash: string;
  readonly createdTime: string;
  /** When it was revoked; absent while it is valid. */
  readonly revokedTime?: string;
}

/** A sink's drop report as the lake holds it. */
export interface DropReportRow extends DropReport {
  /** Sum of the counts. */
  readonly total: number;
  readonly insertTime: string;
}

/** Filters for listing streams. */
export interface StreamFilter {
  readonly processId?: string;
  /** Only streams carrying this tag. */
  readonly tag?: string;
}

/** Filters for listing blocks, ordered by begin time. */
export interface BlockFilter {
  readonly processId?: string;
  readonly streamId?: string;
  /** Only blocks that end at or after this time (normalized RFC 3339). */
  readonly from?: string;
  /** Only blocks that begin before this time (normalized RFC 3339). */
  readonly to?: string;
  readonly limit?: number;
}

/**
 * The metadata database: tables `processes`, `streams`, `blocks`. Inserts are idempotent (the
 * first row for an id wins) and resolve to whether a row was inserted. A stream is inserted only
 * while its process has a row, a block only while its stream has one (under the block's process):
 * checked by the insert itself, atomically with retention's deletions, so that no row ever refers
 * to a row retention deleted, whatever a server remembers. Every method rejects with
 * `LakeUnavailableError` when the database cannot be reached; the store retries opening it on the
 * next call, so a database that comes back is picked up without a restart.
 */
export interface MetadataStore {
  /** `'sqlite'` or `'postgres'`. */
  readonly kind: string;
  /** Connects and applies migrations (once); rejects if the database is unreachable. */
  ready(): Promise<void>;
  /** Checks the database answers now. */
  ping(): Promise<void>;
  insertProcess(process: ProcessInfo): Promise<boolean>;
  insertStream(stream: StreamInfo): Promise<boolean>;
  /**
   * Inserts a block row whose payload is at `blobPath`; false if the block id has a row already
   * or if its stream has none (the caller tells the two apart).
   */
  insertBlock(block: BlockHeader, payloadSize: number, blobPath: string): Promise<boolean>;
  findProcess(processId: string): Promise<ProcessRow | undefined>;
  findStream(streamId: string): Promise<StreamRow | undefined>;
  findBlock(blockId: string): Promise<BlockRow | undefined>;
  listProcesses(): Promise<ProcessRow[]>;
  /** Those of `processIds` (a few hundred at most: one statement) the lake holds, in no order. */
  findProcessIds(processIds: readonly string[]): Promise<string[]>;
  listStreams(filter?: StreamFilter): Promise<StreamRow[]>;
  /**
   * Up to `n` stream ids spread evenly over the lake's streams in id order (ids are random: a
   * sample), without reading their rows.
   */
  sampleStreamIds(n: number): Promise<string[]>;
  listBlocks(filter?: BlockFilter): Promise<BlockRow[]>;

  /** Stores a key's hash under a name; false if the name is taken. */
  insertApiKey(name: string, keyHash: string, createdTime: string): Promise<boolean>;
  findApiKey(keyHash: string): Promise<ApiKeyRow | undefined>;
  listApiKeys(): Promise<ApiKeyRow[]>;
  /** Marks a key revoked (once: a second call keeps the first time); the row after, if any. */
  revokeApiKey(name: string, time: string): Promise<ApiKeyRow | undefined>;
  /** Keys stored, revoked ones included. */
  countApiKeys(): Promise<number>;

  /** Stores a drop report; false if one with its id is there. */
  insertDropReport(report: DropReport): Promise<boolean>;
  listDropReports(processId?: string): Promise<DropReportRow[]>;

  /**
   * Deletes up to `limit` block rows inserted before `cutoff` and records their blob paths as
   * garbage, in one transaction; returns those paths.
   */
  deleteBlocksBefore(cutoff: string, limit: number): Promise<string[]>;
  /**
   * Blob paths recorded as garbage (oldest first), whose blobs may still be there. No row points
   * at them: a block stored again gets a blob of its own (see `uniqueBlobPath`).
   */
  listGarbage(limit: number): Promise<string[]>;
  /** Forgets garbage paths whose blobs are deleted. */
  forgetGarbage(paths: readonly string[]): Promise<void>;
  /**
   * Looks at the next `limit` streams after the id `after` (in id order; `''` to start) and
   * deletes those inserted before `cutoff` that have no blocks, recording the blob directory of
   * each (`streamBlobDirectory`) for `listStreamSweeps`, in one transaction. A stream a block is
   * being inserted into is not deleted.
   */
  deleteEmptyStreamsBefore(cutoff: string, limit: number, after: string): Promise<WindowDeletion>;
  /**
   * Blob directories of deleted streams (oldest first) that retention has not swept yet of the
   * blobs no row names.
   */
  listStreamSweeps(limit: number): Promise<string[]>;
  /** Forgets swept directories. */
  forgetStreamSweeps(directories: readonly string[]): Promise<void>;
  /** As `deleteEmptyStreamsBefore`, for processes that have no streams. */
  deleteEmptyProcessesBefore(cutoff: string, limit: number, after: string): Promise<WindowDeletion>;
  /** Deletes up to `limit` drop reports inserted before `cutoff`; returns how many. */
  deleteDropReportsBefore(cutoff: string, limit: number): Promise<number>;

  /** Stores a partition's row (its files are stored first); false if its id has a row. */
  insertPartition(row: PartitionRow): Promise<boolean>;
  listPartitions(processId: string): Promise<PartitionRow[]>;
  /**
   * Deletes partition rows and records their files' paths as garbage, in one transaction; returns
   * those paths (the caller deletes the blobs, then forgets them, as retention does).
   */
  deletePartitions(partitionIds: readonly string[]): Promise<string[]>;
  /**
   * As `deleteBlocksBefore`, for partitions: up to `limit` rows of partitions holding a block
   * inserted before `cutoff` (by `firstBlockInsertTime`: those `deleteBlocksBefore` leaves stale),
   * deleted, their paths recorded as garbage.
   */
  deletePartitionsBefore(cutoff: string, limit: number): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * A partition of an analytics view: Parquet files in blob storage holding the records of some
 * blocks of one stream, decoded (see `dorsal/analytics`). Derived data, made again from its
 * blocks whenever it is missing.
 */
export interface PartitionRow {
  readonly partitionId: string;
  /** The view it belongs to: `stream_<name>`, `timings`, … */
  readonly view: string;
  readonly processId: string;
  readonly streamId: string;
  /** The blocks whose records it holds. */
  readonly blockIds: readonly string[];
  readonly rowCount: number;
  /** Sizes of its two files: its rows, and its blocks' coverage. */
  readonly dataBytes: number;
  readonly coverageBytes: number;
  readonly insertTime: string;
  /**
   * When the earliest of its blocks was inserted into the lake: retention deletes the partition
   * with that block (a partition made today of blocks of long ago goes with them).
   */
  readonly firstBlockInsertTime: string;
  /**
   * What its files hold: the partition format and columns of the dorsal that wrote them (see
   * `fileSchemaOf`); null for a partition written before partitions said (read as they are).
   */
  readonly fileSchema: string | null;
}

/** What a retention step did in one window of ids. */
export interface WindowDeletion {
  /** Rows deleted. */
  readonly deleted: number;
  /** The last id of the window, where the next one starts; `undefined`: no row was left to look at. */
  readonly last: string | undefined;
}

/** What a create-only blob write found: see `BlobStore.putIfAbsent`. */
export type BlobWriteOutcome = 'created' | 'exists' | 'differs';

/**
 * Blob storage for block payloads, addressed by relative paths such as
 * `blobs/{process_id}/{stream_id}/{block_id}.{suffix}`. Writes are create-only and durable when
 * they resolve.
 */
export interface BlobStore {
  /** `'directory'` or `'s3'`. */
  readonly kind: string;
  /** Checks the store is reachable and writable. */
  ping(): Promise<void>;
  /**
   * Writes the blob unless one exists at that path. `'created'`; `'exists'`: a blob with these
   * very bytes is there (a directory store also made it durable); `'differs'`: a blob with other
   * bytes is there (a file a crash left torn, or another writer's). Ingestion writes each payload
   * to a path of its own (see `uniqueBlobPath`): it meets `'exists'` only for its own bytes (an S3
   * PUT the SDK sent again after its answer was lost), and `'differs'` never.
   */
  putIfAbsent(path: string, bytes: Uint8Array): Promise<BlobWriteOutcome>;
  /** Writes the blob over whatever is at that path, atomically (a reader sees the old or the new). */
  replace(path: string, bytes: Uint8Array): Promise<void>;
  /** Reads a blob; rejects with `LakeNotFoundError` if absent. */
  get(path: string): Promise<Uint8Array>;
  /**
   * Paths of up to `limit` blobs whose path begins with `directory` (`blobs/{process}/{stream}/`)
   * and that were last written before `before` (ms since the epoch; default: any time): what a
   * stream's directory holds.
   */
  listUnder(directory: string, limit: number, before?: number): Promise<string[]>;
  /**
   * Deletes blobs (absent ones are skipped). A directory store also removes the directories this
   * leaves empty. Only for blobs no block row points at: rows are deleted first.
   */
  delete(paths: readonly string[]): Promise<void>;
  /**
   * Deletes what writes that never finished left aside (a directory store's temporary files of
   * `replace`, cut short by a crash) last written before `before` (ms since the epoch); returns
   * how many. A store that leaves nothing aside has none.
   */
  sweepTemporary?(before: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * The blob path of a block payload stored by a lake of schema version 2 or before (its row's
 * `blob_path` is NULL). Later lakes store each payload at a `uniqueBlobPath`.
 */
export function blobPath(processId: string, streamId: string, blockId: string): string {
  return `${streamBlobDirectory(processId, streamId)}${blockId}`;
}

/** Where a stream's payloads go: `blobs/{process}/{stream}/`. */
export function streamBlobDirectory(processId: string, streamId: string): string {
  return `blobs/${processId}/${streamId}/`;
}

/**
 * A blob path for one write of a block payload: the block's `blobPath` plus a random suffix, so
 * that no two writes ever share a file. Its row names it; a write that does not get its row in
 * (the block id was stored meanwhile, by a re-send or a conflicting payload) deletes its own file
 * and never one a row may point at, and retention's garbage is never a live row's blob.
 */
export function uniqueBlobPath(processId: string, streamId: string, blockId: string): string {
  return `${blobPath(processId, streamId, blockId)}.${randomBytes(8).toString('hex')}`;
}

/**
 * The blob paths of a partition's two files, Hive-style (a reader gets `process_id` from the
 * path): `views/{view}/process_id={process}/{partition}.parquet`, its coverage under
 * `views/block_coverage/…`. A view name is kept to letters, digits and `_` in the path.
 */
export function partitionBlobPaths(row: Pick<PartitionRow, 'partitionId' | 'view' | 'processId'>): {
  readonly data: string;
  readonly coverage: string;
} {
  const at = (view: string) =>
    `views/${view.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 200)}/process_id=${row.processId}/${row.partitionId}.parquet`;
  return { data: at(row.view), coverage: at('block_coverage') };
}

/** A stream's directory of block payloads, `blobs/{process_id}/{stream_id}/`. */
export const BLOB_DIRECTORY = /^blobs\/[0-9a-f-]{36}\/[0-9a-f-]{36}\/$/;

/** Blob paths are built from validated ids only; this guards the stores against anything else. */
export const BLOB_PATH =
  /^(?:blobs\/[0-9a-f-]{36}\/[0-9a-f-]{36}\/[0-9a-f-]{36}(?:\.[0-9a-f]{16})?|views\/[A-Za-z0-9_]{1,200}\/process_id=[0-9a-f-]{36}\/[0-9a-f-]{36}\.parquet)$/;
