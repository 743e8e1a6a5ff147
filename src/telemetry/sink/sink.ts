import { ConfigError, DorsalError } from '../../errors.js';
import type { IngestionService } from '../ingestion/service.js';
import {
  type Block,
  DEFAULT_RECORD_BODY_LIMIT,
  decodeBlock,
  decodeProcessInfo,
  decodeStreamInfo,
  encodeBlock,
  encodeProcessInfo,
  encodeStreamInfo,
  isUuid,
  MAX_METADATA_TEXT_BYTES,
  type ProcessInfo,
  type StreamInfo,
} from '../wire/index.js';
import { Deliverer, type EncodedRecord, type Outcome, within } from './delivery.js';
import { SinkDropReports } from './sink-drop-reports.js';
import { Spool, spooledBlockId } from './spool.js';
import { type DropEvent, type DropReason, SinkCounters, type SinkStats } from './stats.js';
import { HttpTransport, InProcessTransport, type SinkTransport } from './transport.js';

/** Options of a telemetry sink. */
export interface SinkOptions {
  /** Where to send: an ingestion URL (`http://127.0.0.1:8081`), a service in this process, or a transport. */
  readonly target: string | IngestionService | SinkTransport;
  /** The API key for an HTTP target (default: the `DORSAL_KEY` environment variable). */
  readonly key?: string;
  /**
   * For an HTTP target, a request's timeout in ms (default 10 000; see
   * `HttpTransportOptions.timeoutMs`): raise it for large blocks over a slow link.
   */
  readonly requestTimeoutMs?: number;
  /** The process whose blocks this sink sends; sent first, never dropped. */
  readonly process: ProcessInfo;
  /** Bytes of encoded blocks kept in memory (default 64 MiB). */
  readonly maxBufferBytes?: number;
  /** Requests in flight at once (default 3). */
  readonly maxInFlight?: number;
  /** Attempts per block before the server is considered down (default 4). */
  readonly maxAttempts?: number;
  /** Backoff between attempts: doubles from `initialMs` up to `maxMs`, with jitter (default 100 ms, 5 s). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** A directory for blocks that could not be sent while the server is down (default: none). */
  readonly spool?: { readonly dir: string; readonly maxBytes?: number };
  /**
   * Called for every dropped block. A block still in flight when `close` gives it up is said
   * dropped then; should its request succeed afterwards, `onSent` follows for it (and the stats
   * count it sent, no longer dropped).
   */
  readonly onDrop?: (event: DropEvent) => void;
  /** Called for every block the target acknowledged (stored, or held already). */
  readonly onSent?: (blockId: string) => void;
}

/** A block waiting in memory or read back from the spool. */
interface Entry {
  readonly blockId: string;
  readonly processId: string;
  readonly streamId: string;
  readonly bytes: Uint8Array;
  readonly spoolName?: string;
  /** Counted in `bufferedBytes`. */
  counted?: boolean;
  /** Handed to the spool or dropped by `close` while in flight. */
  abandoned?: boolean;
  /**
   * Why `close` (or the spool it was handed to) dropped it while its request was in flight:
   * counted sent instead if that succeeds.
   */
  droppedInFlight?: DropReason | undefined;
  /** Abandoned by `close` in flight, then stored after all (counted sent): not dropped if the spool fails. */
  sentLate?: boolean;
  /** Its delivery under way (a memory entry in flight). */
  delivery?: Promise<{ outcome: Outcome; error?: string }>;
}

/**
 * The client side of ingestion. `push` never blocks and never throws for a full buffer: the block
 * is queued, spooled or dropped — and every drop is counted (`stats`, `onDrop`). The process is
 * sent first, each stream before its first block; at most `maxInFlight` requests run at once;
 * 5xx and network errors are retried with backoff, 4xx are not. When the server stays down,
 * blocks go to the spool directory and are sent, oldest first, once it is back (by this sink or
 * by a later one on the same directory).
 *
 * @example
 * const sink = new TelemetrySink({ target: 'http://127.0.0.1:8081', process, spool: { dir: './dorsal-spool' } });
 * sink.addStream(stream);
 * sink.push(block);
 * const stats = await sink.close({ timeoutMs: 5000 });
 * if (stats.droppedTotal > 0) console.warn(`telemetry: ${stats.droppedTotal} blocks dropped`);
 */
export class TelemetrySink {
  private readonly transport: SinkTransport;
  private readonly options: SinkOptions;
  private readonly maxBufferBytes: number;
  private readonly maxInFlight: number;
  private readonly counters = new SinkCounters();
  private readonly records = new Map<string, EncodedRecord>();
  private readonly deliverer: Deliverer;
  private readonly reports: SinkDropReports;
  private readonly queue: Entry[] = [];
  private readonly active = new Set<Entry>();
  private readonly spoolWrites = new Set<Promise<void>>();
  private readonly spool: Promise<Spool | undefined>;
  private spoolReady: Spool | undefined;
  private waiters: (() => void)[] = [];
  private bufferedBytes = 0;
  private inFlight = 0;
  private down = false;
  private downProbes = 0;
  private closed = false;
  /**
   * Set by `setAsideQueued`: a block in flight then is not retried, and one that comes back
   * unavailable queues behind the blocks pushed after.
   */
  private asideSet = false;
  /** Probes waiting out a backoff while the server is down: `setAsideQueued` ends their wait. */
  private readonly backingOff = new Set<() => void>();
  private closing: Promise<void> | undefined;

  constructor(options: SinkOptions) {
    this.options = options;
    const { target } = options;
    this.transport =
      typeof target === 'string'
        ? new HttpTransport(target, {
            maxSockets: options.maxInFlight ?? 3,
            ...(options.key === undefined ? {} : { key: options.key }),
            ...(options.requestTimeoutMs === undefined ? {} : { timeoutMs: options.requestTimeoutMs }),
          })
        : isTransport(target)
          ? target
          : new InProcessTransport(target);
    this.maxBufferBytes = options.maxBufferBytes ?? 64 * 1024 * 1024;
    this.maxInFlight = options.maxInFlight ?? 3;
    const processRecord = checkedProcessRecord(options.process, this.transport instanceof HttpTransport);
    this.records.set(options.process.processId.toLowerCase(), { kind: 'process', bytes: processRecord });
    this.deliverer = new Deliverer(this.transport, this.records, this.counters, {
      maxAttempts: options.maxAttempts ?? 4,
      backoff: options.backoff ?? { initialMs: 100, maxMs: 5000 },
      spool: () => this.spoolReady,
      // Set aside too: a block in flight then is not retried ahead of what comes after it.
      closed: () => this.closed || this.asideSet,
    });
    this.reports = new SinkDropReports(
      options.process.processId.toLowerCase(),
      processRecord,
      this.deliverer,
      this.counters,
    );
    this.spool = this.openSpool();
  }

  /** Registers a stream; it is sent before its first block. */
  addStream(stream: StreamInfo): void {
    const bytes = encodeStreamInfo(stream);
    // Its id names its file in the spool: a lake's UUID, not a path.
    checkLakeTakes('stream', bytes, decodeStreamInfo);
    this.records.set(stream.streamId.toLowerCase(), { kind: 'stream', bytes });
  }

  /**
   * Queues a block. Returns false if it was dropped (counted). Throws only for a block of a stream
   * that was never registered with `addStream`, or whose block or process id is not a UUID — a
   * setup error (its id names its file in the spool: `../x` was written outside it, and lost).
   */
  push(block: Block): boolean {
    for (const key of ['blockId', 'processId'] as const) {
      if (!isUuid(block[key])) {
        throw new DorsalError(
          'DORSAL_SINK_BAD_BLOCK',
          `a block's ${key} must be a UUID, got ${JSON.stringify(String(block[key]).slice(0, 80))}`,
        );
      }
    }
    const streamId = block.streamId.toLowerCase();
    if (this.records.get(streamId)?.kind !== 'stream') {
      throw new DorsalError(
        'DORSAL_SINK_UNKNOWN_STREAM',
        `block ${block.blockId}: stream ${block.streamId} was not added to the sink`,
      );
    }
    this.counters.pushed += 1;
    const entry: Entry = {
      blockId: block.blockId,
      processId: block.processId.toLowerCase(),
      streamId,
      bytes: encodeBlock(block),
    };
    if (this.closed) return this.drop('shutdown', entry, 'the sink is closed');
    const spooling = this.down && this.options.spool !== undefined;
    if (!spooling && this.bufferedBytes + entry.bytes.length <= this.maxBufferBytes) {
      this.enqueue(entry);
      this.pump();
      return true;
    }
    if (this.options.spool !== undefined) {
      this.toSpool(entry);
      return true;
    }
    return this.drop('bufferFull', entry, `in-memory buffer of ${this.maxBufferBytes} bytes is full`);
  }

  /** What the sink did so far. */
  get stats(): SinkStats {
    const c = this.counters;
    return {
      pushed: c.pushed,
      sent: c.sent,
      spooled: c.spooled,
      retries: c.retries,
      dropped: { ...c.dropped },
      droppedTotal: c.droppedTotal,
      buffered: this.queue.length + this.active.size,
      bufferedBytes: this.bufferedBytes,
      inFlight: this.inFlight,
      spoolBlocks: this.spoolReady?.count ?? 0,
      spoolBytes: this.spoolReady?.size ?? 0,
      reportedDrops: this.reports.reported,
      unreportedDrops: c.unreportedDrops,
      serverDown: this.down,
      ...(c.lastError === undefined ? {} : { lastError: c.lastError }),
      ...(c.lastBlockError === undefined ? {} : { lastBlockError: c.lastBlockError }),
    };
  }

  /** Waits until nothing is buffered, in flight or (while the server is up) spooled; false on timeout. */
  async flush(timeoutMs: number): Promise<boolean> {
    checkTimeout('flush', timeoutMs);
    const deadline = Date.now() + timeoutMs;
    await this.spool;
    while (!this.drained()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await within(new Promise<void>((resolve) => this.waiters.push(resolve)), Math.min(left, 1000));
    }
    return true;
  }

  /**
   * Sets aside every block still waiting to be sent (not those in flight) as `close` does at its
   * deadline: into the spool, or dropped (counted `shutdown`). For a caller that keeps the end of
   * its deadline for blocks of its own (the persister's account of a run: what the lake did not
   * get of it must be told in blocks that come after, and are not stuck behind, the rest). A
   * probe of a down server waiting out its backoff goes at once, the backoff growing again from
   * its first step.
   */
  setAsideQueued(): void {
    // A block in flight now that comes back unavailable goes behind what is pushed next.
    this.asideSet = true;
    // What the caller pushes next is its last word, before its deadline: the probe waiting out a
    // backoff grown while the server was down (up to `maxMs`) goes now, and the backoff grows
    // again from its first step.
    this.downProbes = 0;
    for (const wake of this.backingOff) wake();
    for (const entry of this.queue.splice(0)) this.setAside(entry, 'not sent before the flush deadline');
  }

  /** Into the spool, or dropped (counted `shutdown`, saying `why`): a block that will not be sent now. */
  private setAside(entry: Entry, why: string): void {
    this.release(entry);
    if (this.options.spool !== undefined) this.toSpool(entry);
    else this.drop('shutdown', entry, why);
  }

  /**
   * Flushes until the deadline, waits for the blocks in flight then (for at least a second more:
   * one may be stored already), spools what is left (or drops it, counted as `shutdown`), sends
   * the drop counts not reported yet (for at least a second more; a block dropped in flight is
   * reported once its request failed, or when half that time is over), keeps those it could not
   * send in the spool, and closes the transport. Returns the final stats; a block dropped in
   * flight whose request succeeds after that is counted sent, no longer dropped, in later stats.
   */
  async close(options: { readonly timeoutMs?: number } = {}): Promise<SinkStats> {
    // A second call (a shutdown hook beside the program's own close) waits for the first one to
    // end, with its deadline: it returned at once, before the blocks in flight were settled, the
    // drops reported and the transport closed.
    if (this.closing === undefined) checkTimeout('close', options.timeoutMs ?? 5000);
    this.closing ??= this.shutDown(options.timeoutMs ?? 5000);
    await this.closing;
    return this.stats;
  }

  /** What `close` does, once. */
  private async shutDown(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.flush(timeoutMs);
    this.closed = true;
    // A block in flight may be stored already (an in-process lake always finishes its insert):
    // its outcome is waited for a moment (no retry now), so that a block the lake holds is not
    // counted dropped. One that settles unavailable is back in the queue, handled below.
    const inFlight = [...this.active].flatMap((e) => (e.delivery === undefined ? [] : [e.delivery]));
    if (inFlight.length > 0) {
      await within(Promise.allSettled(inFlight), Math.max(1000, deadline - Date.now()));
    }
    // What is still in memory (in flight included: re-sending a stored block is harmless).
    const left = [...this.active].filter((e) => e.spoolName === undefined);
    left.push(...this.queue.splice(0));
    // (`flush` waited for the spool to open: `spoolReady` says whether it did.)
    for (const entry of left) {
      entry.abandoned = true;
      if (entry.delivery !== undefined && this.spoolReady === undefined) {
        // Without a spool to keep it, a block in flight may yet be stored: dropped until it is.
        this.release(entry);
        this.dropInFlight('shutdown', entry, entry.delivery, 'no answer before the close deadline');
      } else this.setAside(entry, 'not sent before the close deadline');
    }
    await Promise.all(this.spoolWrites);
    await this.reports.finish(Math.max(1000, deadline - Date.now()), await this.spool);
    await this.transport.close();
  }

  private drained(): boolean {
    const spoolWaiting = this.spoolReady?.waiting ?? 0;
    return (
      this.queue.length === 0 &&
      this.inFlight === 0 &&
      this.spoolWrites.size === 0 &&
      (spoolWaiting === 0 || this.down)
    );
  }

  private changed(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private enqueue(entry: Entry, front = false): void {
    if (front) this.queue.unshift(entry);
    else this.queue.push(entry);
    entry.counted = true;
    this.bufferedBytes += entry.bytes.length;
  }

  /** Takes a memory entry out of the buffer accounting (once). */
  private release(entry: Entry): void {
    this.active.delete(entry);
    if (entry.counted === true) {
      entry.counted = false;
      this.bufferedBytes -= entry.bytes.length;
    }
  }

  private drop(reason: DropReason, entry: Entry, error?: string, reported = true): false {
    this.counters.dropped[reason] += 1;
    // The block's own process (one an earlier run spooled is that run's loss); a spool file that
    // no longer decodes names none: this sink's.
    if (reported) this.reports.note(reason, entry.processId || undefined);
    if (error !== undefined) this.counters.lastError = error;
    this.options.onDrop?.({ reason, blockId: entry.blockId, ...(error === undefined ? {} : { error }) });
    this.changed();
    return false;
  }

  /**
   * Drops a block whose request is still in flight at close: counted and said at once, so that
   * the stats `close` returns miss nothing. Its request may still succeed (the server was only
   * slow): `run` then counts it sent and no longer dropped, and its drop is reported to the lake
   * only once its request failed, or when close can wait no more.
   */
  private dropInFlight(
    reason: DropReason,
    entry: Entry,
    delivery: Promise<{ outcome: Outcome }>,
    error: string | undefined,
  ): void {
    entry.droppedInFlight = reason;
    this.drop(reason, entry, error, false);
    this.reports.noteUnlessSent(
      reason,
      delivery.then(
        ({ outcome }) => outcome === 'sent',
        () => false,
      ),
      entry.processId || undefined,
    );
  }

  /** Starts senders while there is room in flight and work to do. While down, only one probes. */
  private pump(): void {
    while (!this.closed && this.inFlight < this.maxInFlight && !(this.down && this.inFlight > 0)) {
      const entry = this.queue.shift();
      const fromSpool = entry === undefined && (this.spoolReady?.waiting ?? 0) > 0;
      if (entry === undefined && !fromSpool) return;
      this.inFlight += 1;
      if (entry !== undefined) this.active.add(entry);
      void this.run(entry).finally(() => {
        this.inFlight -= 1;
        this.changed();
        this.pump();
      });
    }
  }

  private async run(memoryEntry: Entry | undefined): Promise<void> {
    const entry = memoryEntry ?? (await this.takeFromSpool());
    if (entry === undefined) return;
    // A spooled block taken, or answered, once the close has begun is left in the spool, as it
    // was, for the next sink on the directory (which owns it then): not sent, counted nor removed
    // by a sink whose stats are out already (sending a stored block again is harmless).
    if (this.closed && entry.spoolName !== undefined) return;
    const delivery = this.deliverer.deliver(entry);
    entry.delivery = delivery;
    const { outcome, error } = await delivery;
    entry.delivery = undefined;
    if (this.closed && entry.spoolName !== undefined) return;
    if (outcome === 'sent') {
      this.counters.sent += 1;
      this.options.onSent?.(entry.blockId);
    }
    if (entry.abandoned === true) {
      // Stored after all: one block is counted once, sent (its drop report waited for this answer).
      if (outcome === 'sent') {
        entry.sentLate = true;
        if (entry.droppedInFlight !== undefined) {
          this.counters.dropped[entry.droppedInFlight] -= 1;
          entry.droppedInFlight = undefined;
          this.changed();
        }
      }
      return;
    }
    if (outcome === 'sent') {
      this.down = false;
      this.downProbes = 0;
    } else if (outcome === 'rejected') {
      this.drop('rejected', entry, error);
    }
    if (entry.spoolName !== undefined) {
      if (outcome === 'unavailable') this.spoolReady?.release(entry.spoolName);
      else await this.spoolReady?.remove(entry.spoolName);
    } else {
      this.release(entry);
      if (outcome === 'unavailable') {
        if (this.options.spool !== undefined) this.toSpool(entry);
        else this.enqueue(entry, !this.asideSet);
      }
    }
    if (outcome === 'unavailable') {
      this.down = true;
      this.downProbes += 1;
      await this.backOff(this.deliverer.backoff(this.downProbes));
    }
  }

  /** Waits `ms`, or until `setAsideQueued`. */
  private backOff(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.backingOff.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms).unref();
      this.backingOff.add(wake);
    });
  }

  /** The oldest spooled block; one that no longer decodes is deleted and counted as rejected. */
  private async takeFromSpool(): Promise<Entry | undefined> {
    const spool = this.spoolReady;
    const taken = await spool?.take();
    if (spool === undefined || taken === undefined) return undefined;
    try {
      const block = decodeBlock(taken.bytes);
      return {
        blockId: block.blockId,
        processId: block.processId,
        streamId: block.streamId,
        bytes: taken.bytes,
        spoolName: taken.name,
      };
    } catch (error) {
      await spool.remove(taken.name);
      const blockId = spooledBlockId(taken.name);
      this.drop(
        'rejected',
        { blockId, processId: '', streamId: '', bytes: taken.bytes },
        `unreadable spool file: ${String(error)}`,
      );
      return undefined;
    }
  }

  private toSpool(entry: Entry): void {
    const write = (async () => {
      const spool = await this.spool;
      if (spool === undefined) return this.spoolDrop(entry, this.counters.lastError);
      // Its records go in with it, and only with it: a run none of whose blocks fits leaves none.
      const records = [entry.processId, entry.streamId].flatMap((id) => {
        const record = this.records.get(id);
        return record === undefined ? [] : [{ id, ...record }];
      });
      if (!(await spool.put(entry, records))) {
        return this.spoolDrop(entry, `spool of ${spool.maxBytes} bytes is full`);
      }
      this.counters.spooled += 1;
    })().catch((error: unknown) => {
      this.spoolDrop(entry, `spool write failed: ${error instanceof Error ? error.message : String(error)}`);
    });
    this.spoolWrites.add(write);
    void write.finally(() => {
      this.spoolWrites.delete(write);
      this.changed();
      this.pump();
    });
  }

  /**
   * Drops a block the spool could not take (`spoolFull`). One that `close` handed over while its
   * request was in flight may yet be stored (or was already, while the spool wrote): it is dropped
   * as `dropInFlight` does, or not at all. Before, it was counted both sent and dropped, and its
   * drop reported to a lake that held it.
   */
  private spoolDrop(entry: Entry, error: string | undefined): void {
    if (entry.sentLate === true) return;
    if (entry.delivery !== undefined) this.dropInFlight('spoolFull', entry, entry.delivery, error);
    else this.drop('spoolFull', entry, error);
  }

  private async openSpool(): Promise<Spool | undefined> {
    const config = this.options.spool;
    if (config === undefined) return undefined;
    try {
      this.spoolReady = await Spool.open(config.dir, config.maxBytes ?? 256 * 1024 * 1024);
      // Blocks and drop reports left by an earlier run are sent as soon as the server answers.
      this.pump();
      this.reports.resume(this.spoolReady, await this.spoolReady.reports());
      return this.spoolReady;
    } catch (error) {
      this.counters.lastError = `cannot open the spool ${config.dir}: ${error instanceof Error ? error.message : String(error)}`;
      return undefined;
    }
  }
}

/**
 * Tells a transport from an ingestion service by shape: `instanceof IngestionService` would make
 * the sink import the service, and with it the lake and its database drivers, into every process
 * that ships telemetry over HTTP.
 */
function isTransport(target: IngestionService | SinkTransport): target is SinkTransport {
  return typeof (target as Partial<SinkTransport>).send === 'function';
}

/**
 * The process record, refused now if no lake would take it (every block and drop report of the
 * process would be refused after it: the whole run lost); a property too long is named. Sent
 * over HTTP, one larger than a server takes by default is refused too (a server given a larger
 * `recordBodyLimit` would take it: no sink knows that).
 */
/**
 * A deadline in ms must be a number: NaN compared false with everything, and `flush` spun without
 * ever yielding to the event loop (the process froze, its memory growing).
 */
function checkTimeout(method: string, timeoutMs: unknown): void {
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs)) {
    throw new ConfigError(`sink.${method}: the timeout must be a number of ms, got ${String(timeoutMs)}`);
  }
}

function checkedProcessRecord(process: ProcessInfo, overHttp: boolean): Uint8Array {
  for (const [name, value] of Object.entries(process.properties)) {
    const bytes = Buffer.byteLength(value);
    if (bytes > MAX_METADATA_TEXT_BYTES) {
      throw new ConfigError(
        `the process property '${name}' takes ${bytes} bytes, over the ${MAX_METADATA_TEXT_BYTES} a lake takes in one: no lake would store the process, nor any of its blocks`,
      );
    }
  }
  const record = encodeProcessInfo(process);
  if (overHttp && record.length > DEFAULT_RECORD_BODY_LIMIT) {
    throw new ConfigError(
      `the process record takes ${record.length} bytes, over the ${DEFAULT_RECORD_BODY_LIMIT} an ingestion server takes by default: no server would store the process, nor any of its blocks (its properties are too large)`,
    );
  }
  checkLakeTakes('process', record, decodeProcessInfo);
  return record;
}

/** Refuses a record (`what`: process, stream) that `decode`, as a lake decodes it, refuses. */
function checkLakeTakes(what: string, bytes: Uint8Array, decode: (bytes: Uint8Array) => unknown): void {
  try {
    decode(bytes);
  } catch (error) {
    throw new ConfigError(
      `the ${what} record is one no lake would take (nor any of its blocks): ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}
