import type { BlockHeader, ProcessInfo, StreamInfo } from '../wire/index.js';

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
 * first row for an id wins) and resolve to whether a row was inserted. Every method rejects with
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
  insertBlock(block: BlockHeader, payloadSize: number): Promise<boolean>;
  findProcess(processId: string): Promise<ProcessRow | undefined>;
  findStream(streamId: string): Promise<StreamRow | undefined>;
  findBlock(blockId: string): Promise<BlockRow | undefined>;
  listProcesses(): Promise<ProcessRow[]>;
  listStreams(filter?: StreamFilter): Promise<StreamRow[]>;
  listBlocks(filter?: BlockFilter): Promise<BlockRow[]>;
  close(): Promise<void>;
}

/** What a create-only blob write found: see `BlobStore.putIfAbsent`. */
export type BlobWriteOutcome = 'created' | 'exists' | 'differs';

/**
 * Blob storage for block payloads, addressed by relative paths such as
 * `blobs/{process_id}/{stream_id}/{block_id}`. Writes are create-only and durable when they
 * resolve.
 */
export interface BlobStore {
  /** `'directory'` or `'s3'`. */
  readonly kind: string;
  /** Checks the store is reachable and writable. */
  ping(): Promise<void>;
  /**
   * Writes the blob unless one exists at that path. `'created'`; `'exists'`: a blob with these
   * very bytes is there (a directory store also made it durable); `'differs'`: a blob with other
   * bytes is there — another payload sent under the same block id, or a file a crash left torn.
   * Whoever knows whether that blob was ever acknowledged decides: keep it, or `replace` it.
   */
  putIfAbsent(path: string, bytes: Uint8Array): Promise<BlobWriteOutcome>;
  /** Writes the blob over whatever is at that path, atomically (a reader sees the old or the new). */
  replace(path: string, bytes: Uint8Array): Promise<void>;
  /** Reads a blob; rejects with `LakeNotFoundError` if absent. */
  get(path: string): Promise<Uint8Array>;
  /**
   * Deletes blobs (absent ones are skipped). A directory store also removes the directories this
   * leaves empty. Only for blobs no block row points at: rows are deleted first.
   */
  delete(paths: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** The blob path of a block payload. */
export function blobPath(processId: string, streamId: string, blockId: string): string {
  return `blobs/${processId}/${streamId}/${blockId}`;
}

/** Blob paths are built from validated ids only; this guards the stores against anything else. */
export const BLOB_PATH = /^blobs\/[0-9a-f-]{36}\/[0-9a-f-]{36}\/[0-9a-f-]{36}$/;
