import { LakeNotFoundError, WireFormatError } from '../errors.js';
import { type DecodedPayload, decodePayloadAsync, MAX_STORED_PART_BYTES } from '../wire/index.js';
import { lakeIdentity } from './identity.js';
import { type LakeLocation, openBlobStore, openMetadataStore } from './open.js';
import type {
  BlobStore,
  BlockFilter,
  BlockRow,
  DropReportRow,
  MetadataStore,
  ProcessRow,
  StreamFilter,
  StreamRow,
} from './types.js';

/** A block read back from the lake: its row and its decompressed payload. */
export interface StoredBlock {
  readonly block: BlockRow;
  readonly payload: DecodedPayload;
}

/** Processes whose last write `noteWritten` keeps apart (see `writtenSince`). */
const MAX_NOTED_PROCESSES = 4096;

/** Process ids `processIdsIn` asks about per statement. */
const PROCESS_ID_BATCH = 500;

/**
 * The lake: metadata tables plus blob storage. Opening it connects to nothing; the first call
 * does, so a lake whose database is down can be opened and answers `LakeUnavailableError` until
 * the database is back.
 *
 * @example
 * const lake = Lake.open({ data: './dorsal-data' });
 * for (const block of await lake.blocks({ streamId })) {
 *   const { payload } = await lake.readBlock(block.blockId);
 * }
 * await lake.close();
 */
export class Lake {
  readonly metadata: MetadataStore;
  readonly blobs: BlobStore;
  /** What tells this lake from another (see `lakeIdentity`): no credentials in it. */
  readonly identity: string;

  /** Writes told by `noteWritten` so far, and the last one's number per process. */
  private writes = 0;
  private readonly lastWriteOf = new Map<string, number>();
  /** Marks below this one may miss a write of a process forgotten since (see `noteWritten`). */
  private forgottenBelow = 0;
  /** The close under way or done (see `close`). */
  private closing: Promise<void> | undefined;

  constructor(metadata: MetadataStore, blobs: BlobStore, identity: string) {
    this.metadata = metadata;
    this.blobs = blobs;
    this.identity = identity;
  }

  /**
   * Tells the readers of this `Lake` object that something of process `processId` was written
   * through it (the ingestion service does, for each process, stream and block it stores): an analytics sharing it
   * looks at the lake again rather than reuse an earlier look (`writtenSince`), so that a client
   * reads what it has just written through the same server. Writers elsewhere are seen at the
   * next look, within the analytics' freshness.
   */
  noteWritten(processId: string): void {
    this.writes += 1;
    this.lastWriteOf.delete(processId);
    this.lastWriteOf.set(processId, this.writes);
    // The processes written longest ago are forgotten past a bound: a look older than the
    // oldest kept then counts as written since (looked at again, never stale).
    if (this.lastWriteOf.size > MAX_NOTED_PROCESSES) {
      const [oldest, at] = this.lastWriteOf.entries().next().value as [string, number];
      this.lastWriteOf.delete(oldest);
      this.forgottenBelow = at;
    }
  }

  /** What `writtenSince` compares with: take it before a look. */
  get writeMark(): number {
    return this.writes;
  }

  /**
   * True when something was written through this object after `mark` (a `writeMark`): of one
   * of `processes`, or of any process when `processes` is undefined (a look at the whole lake).
   */
  writtenSince(mark: number, processes?: readonly string[]): boolean {
    if (this.writes === mark) return false;
    if (processes === undefined || mark < this.forgottenBelow) return true;
    return processes.some((p) => (this.lastWriteOf.get(p) ?? 0) > mark);
  }

  /** Opens the lake at a location (default: the embedded lake in `./dorsal-data`). */
  static open(location: LakeLocation = {}): Lake {
    return new Lake(openMetadataStore(location), openBlobStore(location), lakeIdentity(location));
  }

  /** Connects and migrates the metadata database, and checks the blob store. */
  async ready(): Promise<void> {
    await this.metadata.ready();
    await Promise.all([this.metadata.ping(), this.blobs.ping()]);
  }

  /** All processes, by start time. */
  processes(): Promise<ProcessRow[]> {
    return this.metadata.listProcesses();
  }

  /** Streams, optionally of one process or with one tag. */
  streams(filter?: StreamFilter): Promise<StreamRow[]> {
    return this.metadata.listStreams(filter);
  }

  /** Blocks by begin time, optionally of one process or stream, in a time range. */
  blocks(filter?: BlockFilter): Promise<BlockRow[]> {
    return this.metadata.listBlocks(filter);
  }

  /**
   * Those of `processIds` the lake holds, in no order: asked a few hundred at a time (each a
   * lookup by primary key), never a listing of the whole lake.
   */
  async processIdsIn(processIds: readonly string[]): Promise<string[]> {
    const held: string[] = [];
    for (let i = 0; i < processIds.length; i += PROCESS_ID_BATCH) {
      const batch = processIds.slice(i, i + PROCESS_ID_BATCH).map((id) => id.toLowerCase());
      held.push(...(await this.metadata.findProcessIds(batch)));
    }
    return held;
  }

  /** One process, or `undefined`. */
  process(processId: string): Promise<ProcessRow | undefined> {
    return this.metadata.findProcess(processId.toLowerCase());
  }

  /** One stream, or `undefined`. */
  stream(streamId: string): Promise<StreamRow | undefined> {
    return this.metadata.findStream(streamId.toLowerCase());
  }

  /** One block row, or `undefined`. */
  block(blockId: string): Promise<BlockRow | undefined> {
    return this.metadata.findBlock(blockId.toLowerCase());
  }

  /** What sinks reported they dropped, optionally for one process, by report time. */
  drops(processId?: string): Promise<DropReportRow[]> {
    return this.metadata.listDropReports(processId?.toLowerCase());
  }

  /** The raw stored blob of a block (CBOR, parts still compressed). */
  async readBlob(block: BlockRow): Promise<Uint8Array> {
    return this.blobs.get(block.blobPath);
  }

  /**
   * Reads a block and decompresses its payload (a large part on the thread pool). Rejects with
   * `LakeNotFoundError` for an unknown block id.
   */
  async readBlock(block: string | BlockRow, maxPartBytes = MAX_STORED_PART_BYTES): Promise<StoredBlock> {
    const row = typeof block === 'string' ? await this.block(block) : block;
    if (row === undefined) throw new LakeNotFoundError(`no block ${String(block)} in the lake`);
    const blob = await this.readBlob(row);
    try {
      return { block: row, payload: await decodePayloadAsync(blob, maxPartBytes) };
    } catch (error) {
      // Which block, and which file: a damaged blob is found and dealt with by name.
      if (!(error instanceof WireFormatError)) throw error;
      throw new WireFormatError(`block ${row.blockId} (blob ${row.blobPath}): ${error.message}`, {
        cause: error,
      });
    }
  }

  /**
   * Closes the database connections and the blob store client, once: a second call waits for the
   * first (a server closes a lake it was given, and so does the lake's owner; PostgreSQL's pool
   * refuses a second end).
   */
  close(): Promise<void> {
    this.closing ??= Promise.all([this.metadata.close(), this.blobs.close()]).then(() => undefined);
    return this.closing;
  }
}
