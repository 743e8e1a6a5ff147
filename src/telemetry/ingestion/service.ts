import {
  asLakeError,
  BlockConflictError,
  LakeUnavailableError,
  UnknownProcessError,
  UnknownStreamError,
} from '../errors.js';
import { Lake } from '../lake/lake.js';
import type { LakeLocation } from '../lake/open.js';
import { type BlobWriteOutcome, type BlockRow, blobPath, type StreamRow } from '../lake/types.js';
import {
  type Block,
  checkPayloadSizes,
  DEFAULT_MAX_BLOCK_BYTES,
  DEFAULT_MAX_COMPRESSION_RATIO,
  type DropReport,
  decodeBlock,
  decodeDropReport,
  decodeProcessInfo,
  decodeStreamInfo,
  encodePayloadBlob,
  type PayloadLimits,
  type ProcessInfo,
  type StreamInfo,
  validateBlock,
  validateDropReport,
  validateProcessInfo,
  validateStreamInfo,
  verifyPayload,
} from '../wire/index.js';

/** Options of the ingestion service. */
export interface IngestionOptions extends PayloadLimits {
  /** How many known streams and processes to remember (default 10 000 each). */
  readonly cacheSize?: number;
}

/** Header fields a re-sent block must repeat exactly. */
const HEADER_FIELDS = [
  'streamId',
  'processId',
  'beginTime',
  'beginTicks',
  'endTime',
  'endTicks',
  'objectCount',
] as const;

/** What an insert did: `inserted` is false when the record was already stored (an idempotent re-send). */
export interface InsertResult {
  readonly inserted: boolean;
}

/**
 * The ingestion logic, without HTTP: decode, validate, check references, store. The HTTP routes
 * and the in-process path both call it, so both have the same semantics.
 *
 * Order of a block write: the blob is written (create-only, durable), then the row is inserted
 * (`ON CONFLICT DO NOTHING`). A reader listing rows therefore never meets a block without its
 * payload, and a re-sent block is stored once. A blob file that a crash left torn has no row (the
 * crash came before it): a re-send replaces it.
 *
 * @example
 * const ingestion = new IngestionService(Lake.open({ data: './dorsal-data' }));
 * await ingestion.insertProcess(encodeProcessInfo(process));   // bytes, as HTTP receives them
 * await ingestion.ingestBlock(block);                          // or records, in-process
 */
export class IngestionService {
  readonly lake: Lake;
  private readonly limits: PayloadLimits;
  private readonly cacheSize: number;
  // Rows never change once stored, so what was seen once can be trusted afterwards.
  private readonly knownProcesses = new Set<string>();
  private readonly knownStreams = new Map<string, StreamRow>();

  constructor(lake: Lake | LakeLocation, options: IngestionOptions = {}) {
    this.lake = lake instanceof Lake ? lake : Lake.open(lake);
    this.limits = {
      maxBlockBytes: options.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES,
      maxCompressionRatio: options.maxCompressionRatio ?? DEFAULT_MAX_COMPRESSION_RATIO,
    };
    this.cacheSize = options.cacheSize ?? 10_000;
  }

  /** Decodes and stores a CBOR process record. */
  async insertProcess(bytes: Uint8Array): Promise<InsertResult> {
    return this.storeProcess(decodeProcessInfo(bytes));
  }

  /** Decodes and stores a CBOR stream record. */
  async insertStream(bytes: Uint8Array): Promise<InsertResult> {
    return this.storeStream(decodeStreamInfo(bytes));
  }

  /** Decodes and stores a CBOR block record. */
  async insertBlock(bytes: Uint8Array): Promise<InsertResult> {
    return this.storeBlock(decodeBlock(bytes));
  }

  /** Decodes and stores a CBOR drop report. */
  async insertDrops(bytes: Uint8Array): Promise<InsertResult> {
    return this.storeDrops(decodeDropReport(bytes));
  }

  /** Validates and stores a drop report handed over in-process. */
  async ingestDrops(report: DropReport): Promise<InsertResult> {
    return this.storeDrops(validateDropReport(report));
  }

  /** Validates and stores a process record handed over in-process. */
  async ingestProcess(process: ProcessInfo): Promise<InsertResult> {
    return this.storeProcess(validateProcessInfo(process));
  }

  /** Validates and stores a stream record handed over in-process. */
  async ingestStream(stream: StreamInfo): Promise<InsertResult> {
    return this.storeStream(validateStreamInfo(stream));
  }

  /** Validates and stores a block handed over in-process. */
  async ingestBlock(block: Block): Promise<InsertResult> {
    return this.storeBlock(validateBlock(block));
  }

  /** Checks the database and the blob store; rejects with `LakeUnavailableError`. */
  ready(): Promise<void> {
    return this.lake.ready();
  }

  /**
   * Forgets the processes and streams known to exist, so that each is looked up again: after
   * retention deleted some, a block of a deleted stream gets 422 (and a sink sends the stream
   * again) instead of a row whose stream is gone.
   */
  forgetKnown(): void {
    this.knownProcesses.clear();
    this.knownStreams.clear();
  }

  /** Closes the lake. */
  close(): Promise<void> {
    return this.lake.close();
  }

  private async storeProcess(process: ProcessInfo): Promise<InsertResult> {
    const inserted = await this.lake.metadata.insertProcess(process);
    this.remember(this.knownProcesses, process.processId);
    return { inserted };
  }

  private async storeStream(stream: StreamInfo): Promise<InsertResult> {
    await this.requireProcess(stream.processId);
    const inserted = await this.lake.metadata.insertStream(stream);
    return { inserted };
  }

  private async storeDrops(report: DropReport): Promise<InsertResult> {
    await this.requireProcess(report.processId);
    return { inserted: await this.lake.metadata.insertDropReport(report) };
  }

  private async requireProcess(processId: string): Promise<void> {
    if (this.knownProcesses.has(processId)) return;
    if ((await this.lake.metadata.findProcess(processId)) === undefined)
      throw new UnknownProcessError(processId);
    this.remember(this.knownProcesses, processId);
  }

  private async storeBlock(block: Block): Promise<InsertResult> {
    // The sizes first: refusing a bomb costs nothing.
    checkPayloadSizes(block.payload, this.limits);
    const stream =
      this.knownStreams.get(block.streamId) ?? (await this.lake.metadata.findStream(block.streamId));
    if (stream === undefined) throw new UnknownStreamError(block.streamId);
    if (stream.processId !== block.processId) {
      throw new UnknownStreamError(
        block.streamId,
        `it belongs to process ${stream.processId}, not ${block.processId}`,
      );
    }
    this.remember(this.knownStreams, block.streamId, stream);
    await verifyPayload(block.payload, this.limits);
    const blob = encodePayloadBlob(block.payload);
    const path = blobPath(block.processId, block.streamId, block.blockId);
    let outcome: BlobWriteOutcome;
    try {
      outcome = await this.lake.blobs.putIfAbsent(path, blob);
      // Other bytes under this block's name: a payload stored before (its row is there: the first
      // one stays, and the sender learns its new bytes were refused), or a write that a crash cut
      // short (no row: nobody was told it was stored).
      if (outcome === 'differs') {
        if ((await this.lake.metadata.findBlock(block.blockId)) !== undefined) {
          throw new BlockConflictError(block.blockId, 'with another payload');
        }
        await this.lake.blobs.replace(path, blob);
      }
    } catch (error) {
      throw asLakeError('storing a block payload', error);
    }
    if (await this.lake.metadata.insertBlock(block, blob.length)) return { inserted: true };
    return this.storedBefore(block, blob, path, outcome);
  }

  /**
   * The block id has a row already: the same block sent again (`inserted: false`), or another
   * block under its id (409). A blob this request created at a path no row points at (the id is
   * stored under another stream) is deleted, so that a refused request leaves nothing behind.
   */
  private async storedBefore(
    block: Block,
    blob: Uint8Array,
    path: string,
    outcome: BlobWriteOutcome,
  ): Promise<InsertResult> {
    const row = await this.lake.metadata.findBlock(block.blockId);
    if (row === undefined) throw new LakeUnavailableError(`block ${block.blockId}: its row vanished: retry`);
    const differs = HEADER_FIELDS.find((field) => row[field] !== block[field]);
    if (differs === undefined && row.payloadSize === blob.length) return { inserted: false };
    const rowPath = blobPath(row.processId, row.streamId, row.blockId);
    if (outcome === 'created' && rowPath !== path) await this.removeOrphan(block.blockId, path, blob);
    throw new BlockConflictError(
      block.blockId,
      differs === 'streamId' || differs === 'processId'
        ? `under stream ${row.streamId} of process ${row.processId}`
        : `with another ${differs ?? 'payload'}`,
    );
  }

  /**
   * Deletes a blob no row points at. Should retention have deleted the other row meanwhile and a
   * re-send stored a row for this very path, the blob is put back: a row never loses its blob.
   */
  private async removeOrphan(blockId: string, path: string, blob: Uint8Array): Promise<void> {
    try {
      await this.lake.blobs.delete([path]);
      const now: BlockRow | undefined = await this.lake.metadata.findBlock(blockId);
      if (now !== undefined && blobPath(now.processId, now.streamId, now.blockId) === path) {
        await this.lake.blobs.putIfAbsent(path, blob);
      }
    } catch (error) {
      throw asLakeError('removing a refused block payload', error);
    }
  }

  private remember<V>(cache: Set<string> | Map<string, V>, key: string, value?: V): void {
    if (cache.size >= this.cacheSize) cache.clear();
    if (cache instanceof Set) cache.add(key);
    else cache.set(key, value as V);
  }
}
