import { positiveOption } from '../../options.js';
import {
  answeredCode,
  asLakeError,
  BlockConflictError,
  LakeUnavailableError,
  RecordConflictError,
  UnknownProcessError,
  UnknownStreamError,
} from '../errors.js';
import { Lake } from '../lake/lake.js';
import type { LakeLocation } from '../lake/open.js';
import { type BlobWriteOutcome, type BlockRow, type StreamRow, uniqueBlobPath } from '../lake/types.js';
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
 * Order of a block write: the payload is written to a blob path of its own (`uniqueBlobPath`:
 * create-only, durable), then the row naming that path is inserted (`ON CONFLICT DO NOTHING`,
 * and only while the block's stream has a row). A reader listing rows therefore never meets a
 * block without its payload. The row insert picks the winner among sends of one block id, however
 * many servers share the lake: a loser compares its block with the stored one (the same:
 * `inserted: false`; another: 409) and deletes its own file, never one a row points at.
 *
 * What this service remembers of streams and processes only saves lookups: the inserts check
 * references themselves, so a stream that retention deleted (here or in another process) gets
 * no more blocks: they get 422, and a sink sends the stream again.
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
  private readonly knownProcesses = new Set<string>();
  private readonly knownStreams = new Map<string, StreamRow>();

  constructor(lake: Lake | LakeLocation, options: IngestionOptions = {}) {
    // Checked before the lake is opened: a bad value leaves nothing open.
    this.limits = {
      maxBlockBytes: positiveOption('maxBlockBytes', options.maxBlockBytes, DEFAULT_MAX_BLOCK_BYTES),
      maxCompressionRatio: positiveOption(
        'maxCompressionRatio',
        options.maxCompressionRatio,
        DEFAULT_MAX_COMPRESSION_RATIO,
        false,
      ),
    };
    this.cacheSize = positiveOption('cacheSize', options.cacheSize, 10_000);
    this.lake = lake instanceof Lake ? lake : Lake.open(lake);
  }

  /** Decodes and stores a CBOR process record. */
  async insertProcess(bytes: Uint8Array): Promise<InsertResult> {
    return this.storeProcess(decodeProcessInfo(bytes));
  }

  /** Decodes and stores a CBOR stream record. */
  async insertStream(bytes: Uint8Array): Promise<InsertResult> {
    return this.storeStream(decodeStreamInfo(bytes));
  }

  /**
   * Decodes and stores a CBOR block record. `payloadVerified`: its payload was compressed in this
   * process by dorsal's own code, and its lz4 parts need no walk (only an in-process sender that
   * made them says so; a server never does).
   */
  async insertBlock(
    bytes: Uint8Array,
    options: { readonly payloadVerified?: boolean } = {},
  ): Promise<InsertResult> {
    return this.storeBlock(decodeBlock(bytes), options.payloadVerified === true);
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

  /** Closes the lake. */
  close(): Promise<void> {
    return this.lake.close();
  }

  private async storeProcess(process: ProcessInfo): Promise<InsertResult> {
    const inserted = await this.lake.metadata.insertProcess(process);
    if (!inserted) {
      // The same record sent again (a sink's retry): answered as stored. Other content under its
      // id is refused: its streams' blocks would be read on the first record's clock.
      const row = await this.lake.metadata.findProcess(process.processId);
      const differs =
        row === undefined ? undefined : PROCESS_FIELDS.find((f) => !sameValue(row[f], process[f]));
      if (differs !== undefined) throw new RecordConflictError('process', process.processId, differs);
    }
    // Told also when it was there already: a retry's first attempt may have stored it unseen.
    this.lake.noteWritten(process.processId);
    this.remember(this.knownProcesses, process.processId);
    return { inserted };
  }

  private async storeStream(stream: StreamInfo): Promise<InsertResult> {
    await this.requireProcess(stream.processId);
    if (await this.lake.metadata.insertStream(stream)) {
      this.lake.noteWritten(stream.processId);
      return { inserted: true };
    }
    // Not inserted: the stream is there already, or its process is not (any more).
    const row = await this.lake.metadata.findStream(stream.streamId);
    if (row !== undefined) {
      // Other content under its id is refused: its blocks would be decoded with the first
      // record's layouts, or counted under another process.
      const differs = STREAM_FIELDS.find((f) => !sameValue(row[f], stream[f]));
      if (differs !== undefined) throw new RecordConflictError('stream', stream.streamId, differs);
      this.lake.noteWritten(stream.processId);
      return { inserted: false };
    }
    this.knownProcesses.delete(stream.processId);
    throw new UnknownProcessError(stream.processId);
  }

  private async storeDrops(report: DropReport): Promise<InsertResult> {
    await this.requireProcess(report.processId);
    // Not told to the lake object: no look at the lake reads drop reports.
    if (await this.lake.metadata.insertDropReport(report)) return { inserted: true };
    // Held already, or its process is gone (retention, since it was known): the sink sends it again.
    if ((await this.lake.metadata.findProcess(report.processId)) !== undefined) return { inserted: false };
    this.knownProcesses.delete(report.processId);
    throw new UnknownProcessError(report.processId);
  }

  private async requireProcess(processId: string): Promise<void> {
    if (this.knownProcesses.has(processId)) return;
    if ((await this.lake.metadata.findProcess(processId)) === undefined)
      throw new UnknownProcessError(processId);
    this.remember(this.knownProcesses, processId);
  }

  /** The stream of a block, checked against the block's process; 422 if there is none. */
  private async streamOf(block: Block, fresh: boolean): Promise<StreamRow> {
    const known = fresh ? undefined : this.knownStreams.get(block.streamId);
    const stream = known ?? (await this.lake.metadata.findStream(block.streamId));
    if (stream === undefined) {
      this.knownStreams.delete(block.streamId);
      throw new UnknownStreamError(block.streamId);
    }
    if (stream.processId !== block.processId) {
      throw new UnknownStreamError(
        block.streamId,
        `it belongs to process ${stream.processId}, not ${block.processId}`,
      );
    }
    this.remember(this.knownStreams, block.streamId, stream);
    return stream;
  }

  private async storeBlock(block: Block, payloadVerified = false): Promise<InsertResult> {
    // The sizes first: refusing a bomb costs nothing.
    checkPayloadSizes(block.payload, this.limits);
    await this.streamOf(block, false);
    if (!payloadVerified) await verifyPayload(block.payload, this.limits);
    const blob = encodePayloadBlob(block.payload);
    const path = uniqueBlobPath(block.processId, block.streamId, block.blockId);
    let outcome: BlobWriteOutcome;
    try {
      outcome = await this.lake.blobs.putIfAbsent(path, blob);
    } catch (error) {
      throw asLakeError('storing a block payload', error);
    }
    // A name of 64 random bits is never there already, but for this write's own bytes: an S3
    // PUT whose answer was lost is sent again by the SDK, which then finds it there ('exists':
    // the same bytes). Other bytes under it are not this block's.
    if (outcome === 'differs') throw new LakeUnavailableError(`blob ${path} exists already: retry`);
    let inserted: boolean;
    try {
      inserted = await this.lake.metadata.insertBlock(block, blob.length, path);
    } catch (error) {
      // Whether its row was written may be unknown (a connection lost after the commit): the
      // file then stays. A database that answered with an error wrote nothing: the file goes
      // (nothing else would ever delete it: a sink sends the block again under a new name).
      if (rowNotWritten(error)) await this.removeOwn(path).catch(() => undefined);
      throw error;
    }
    if (inserted) {
      this.lake.noteWritten(block.processId);
      return { inserted: true };
    }
    const row = await this.lake.metadata.findBlock(block.blockId);
    // Its row points at this very file: this write's own, which a lost answer said "not
    // inserted" (its file is the row's: never removed).
    if (row?.blobPath === path) {
      this.lake.noteWritten(block.processId);
      return { inserted: true };
    }
    try {
      return await this.notInserted(block, blob, row);
    } finally {
      await this.removeOwn(path);
    }
  }

  /**
   * The row was not inserted: the block id has one (the same block sent again: `inserted:
   * false`; another block under its id: 409), or the block's stream has none (retention deleted
   * it: 422).
   */
  private async notInserted(
    block: Block,
    blob: Uint8Array,
    row: BlockRow | undefined,
  ): Promise<InsertResult> {
    if (row === undefined) {
      await this.streamOf(block, true);
      throw new LakeUnavailableError(`block ${block.blockId}: its row was deleted as it was stored: retry`);
    }
    if (row.streamId !== block.streamId || row.processId !== block.processId) {
      throw new BlockConflictError(block.blockId, `under stream ${row.streamId} of process ${row.processId}`);
    }
    if (row.payloadSize !== blob.length || !(await this.sameBlob(row, blob))) {
      throw new BlockConflictError(block.blockId, 'with another payload');
    }
    const differs = HEADER_FIELDS.find((field) => row[field] !== block[field]);
    if (differs !== undefined) throw new BlockConflictError(block.blockId, `with another ${differs}`);
    this.lake.noteWritten(block.processId);
    return { inserted: false };
  }

  /** Whether a stored block's blob holds these bytes. */
  private async sameBlob(row: BlockRow, blob: Uint8Array): Promise<boolean> {
    let stored: Uint8Array;
    try {
      stored = await this.lake.readBlob(row);
    } catch (error) {
      // Its row deleted since (by retention): the client tries again and stores the block anew.
      throw new LakeUnavailableError(
        `block ${row.blockId}: its stored payload could not be read to compare (${String(error)}): retry`,
      );
    }
    return Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).equals(blob);
  }

  /** Deletes the blob a request wrote and no row points at. */
  private async removeOwn(path: string): Promise<void> {
    try {
      await this.lake.blobs.delete([path]);
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

/**
 * Whether a failed row insert certainly wrote nothing: the database refused the statement (see
 * `answeredCode`). A connection lost, a client's timeout, an I/O error: unknown.
 */
function rowNotWritten(error: unknown): boolean {
  return answeredCode(error) !== '';
}

/** The fields a re-sent process record must repeat (the lake's own `insertTime` aside). */
const PROCESS_FIELDS = [
  'exe',
  'host',
  'username',
  'startTime',
  'startTicks',
  'clock',
  'parentProcessId',
  'properties',
] as const satisfies readonly (keyof ProcessInfo)[];

/** The fields a re-sent stream record must repeat. */
const STREAM_FIELDS = [
  'processId',
  'tags',
  'dependenciesLayouts',
  'objectsLayouts',
  'properties',
] as const satisfies readonly (keyof StreamInfo)[];

/**
 * Whether a stored value and a sent one say the same: compared as JSON with object keys sorted
 * (a database may give a JSON object's keys back in another order), an absent value as undefined.
 */
function sameValue(stored: unknown, sent: unknown): boolean {
  return canonicalJson(stored) === canonicalJson(sent);
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}
