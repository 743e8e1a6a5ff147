import { asLakeError, UnknownProcessError, UnknownStreamError } from '../errors.js';
import { Lake } from '../lake/lake.js';
import type { LakeLocation } from '../lake/open.js';
import { blobPath, type StreamRow } from '../lake/types.js';
import {
  type Block,
  DEFAULT_MAX_PART_BYTES,
  decodeBlock,
  decodeProcessInfo,
  decodeStreamInfo,
  encodePayloadBlob,
  type ProcessInfo,
  type StreamInfo,
  validateBlock,
  validateProcessInfo,
  validateStreamInfo,
  verifyPayload,
} from '../wire/index.js';

/** Options of the ingestion service. */
export interface IngestionOptions {
  /** Largest decompressed size of one payload part (default 256 MiB). */
  readonly maxPartBytes?: number;
  /** How many known streams and processes to remember (default 10 000 each). */
  readonly cacheSize?: number;
}

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
  private readonly maxPartBytes: number;
  private readonly cacheSize: number;
  // Rows never change once stored, so what was seen once can be trusted afterwards.
  private readonly knownProcesses = new Set<string>();
  private readonly knownStreams = new Map<string, StreamRow>();

  constructor(lake: Lake | LakeLocation, options: IngestionOptions = {}) {
    this.lake = lake instanceof Lake ? lake : Lake.open(lake);
    this.maxPartBytes = options.maxPartBytes ?? DEFAULT_MAX_PART_BYTES;
    this.cacheSize = options.cacheSize ?? 10_000;
  }

  /** Decodes and stores a CBOR process record. */
  insertProcess(bytes: Uint8Array): Promise<InsertResult> {
    return this.storeProcess(decodeProcessInfo(bytes));
  }

  /** Decodes and stores a CBOR stream record. */
  insertStream(bytes: Uint8Array): Promise<InsertResult> {
    return this.storeStream(decodeStreamInfo(bytes));
  }

  /** Decodes and stores a CBOR block record. */
  insertBlock(bytes: Uint8Array): Promise<InsertResult> {
    return this.storeBlock(decodeBlock(bytes));
  }

  /** Validates and stores a process record handed over in-process. */
  ingestProcess(process: ProcessInfo): Promise<InsertResult> {
    return this.storeProcess(validateProcessInfo(process));
  }

  /** Validates and stores a stream record handed over in-process. */
  ingestStream(stream: StreamInfo): Promise<InsertResult> {
    return this.storeStream(validateStreamInfo(stream));
  }

  /** Validates and stores a block handed over in-process. */
  ingestBlock(block: Block): Promise<InsertResult> {
    return this.storeBlock(validateBlock(block));
  }

  /** Checks the database and the blob store; rejects with `LakeUnavailableError`. */
  ready(): Promise<void> {
    return this.lake.ready();
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
    if (!this.knownProcesses.has(stream.processId)) {
      const process = await this.lake.metadata.findProcess(stream.processId);
      if (process === undefined) throw new UnknownProcessError(stream.processId);
      this.remember(this.knownProcesses, stream.processId);
    }
    const inserted = await this.lake.metadata.insertStream(stream);
    return { inserted };
  }

  private async storeBlock(block: Block): Promise<InsertResult> {
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
    await verifyPayload(block.payload, this.maxPartBytes);
    const blob = encodePayloadBlob(block.payload);
    const path = blobPath(block.processId, block.streamId, block.blockId);
    try {
      const stored = await this.lake.blobs.putIfAbsent(path, blob);
      // Other bytes under this block's name: a payload stored before (its row is there: the first
      // one wins), or a write that a crash cut short (no row: nobody was told it was stored).
      if (stored === 'differs' && (await this.lake.metadata.findBlock(block.blockId)) === undefined) {
        await this.lake.blobs.replace(path, blob);
      }
    } catch (error) {
      throw asLakeError('storing a block payload', error);
    }
    const inserted = await this.lake.metadata.insertBlock(block, blob.length);
    return { inserted };
  }

  private remember<V>(cache: Set<string> | Map<string, V>, key: string, value?: V): void {
    if (cache.size >= this.cacheSize) cache.clear();
    if (cache instanceof Set) cache.add(key);
    else cache.set(key, value as V);
  }
}
