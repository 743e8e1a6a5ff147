import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { InstrumentationPositions, PersistOptions, PersistReport } from '../../actors/index.js';
import { isTypeScriptModule, startModuleWorker } from '../../module-worker.js';
import type { SpineDescriptor } from '../../spine/index.js';
import type { IngestionService } from '../ingestion/service.js';
import {
  createThreadBuffers,
  logger,
  releaseThreadBuffers,
  StringTableReader,
  type ThreadBuffersDescriptor,
} from '../instrumentation/index.js';
import { TelemetrySink } from '../sink/sink.js';
import type { SinkStats } from '../sink/stats.js';
import { InProcessTransport } from '../sink/transport.js';
import {
  type Block,
  compressPartAsync,
  formatRfc3339Ns,
  type ProcessInfo,
  type StreamInfo,
  streamName,
} from '../wire/index.js';
import { documentBlock } from './documents.js';
import {
  DropsSince,
  dropsTotal,
  instrumentationDependencies,
  threadSources,
} from './instrumentation-sources.js';
import type { FromPersister, PersistSource, RawBlock, ToPersister } from './protocol.js';
import { RecordProperty } from './records.js';
import { countsStreamInfo, type StoredCounts, type StoredPersisted } from './run-counts.js';
import { attachSource, persisterOwner } from './source-reader.js';
import { type InstrumentedThread, instrumentationStream } from './streams.js';

/** How a source's lake stream is made, and what the report calls it. */
export interface SourceSpec {
  /** What the report calls it: the stream's, the actor's or the thread's name (may change until registered). */
  name: string;
  /**
   * Makes the source's lake stream, or returns undefined while it cannot yet (an actor not named
   * yet); `final` (at the stop): make it with what is known.
   */
  readonly describe: (processId: string, final: boolean) => StreamInfo | undefined;
  /** Registered as soon as the sink opens (spine streams, timing queues), else with its first block. */
  readonly eager: boolean;
}

/** A source as the main thread knows it: its lake stream, once registered. */
interface Source extends SourceSpec {
  readonly source: PersistSource;
  /** Added to a record's time to put it on the process's clock (instrumentation on another base). */
  readonly ticksOffset: number;
  /** An instrumentation source: its thread's strings, shipped with each block. */
  readonly strings?: StringTableReader;
  /** Its drops at the source, read at each block it ships and at the stop (see `DropsSince`). */
  dropsSince?: DropsSince;
  stream?: StreamInfo;
  /** Blocks that arrived before the stream could be registered. */
  readonly waiting: RawBlock[];
  /** The thread's consumer entry in the source's queue, once it attached. */
  entry?: number;
  /** Records of the blocks the thread cut (what the report counts persisted, less `dropped`). */
  received: number;
  /** Records of blocks that never reached the lake (the sink dropped them, or the backlog was full). */
  dropped: number;
  /** The thread could not attach to it (see `refuse`): never read. */
  refused?: boolean;
  /** The coverage of the last block the thread cut: where a thread started again resumes. */
  read?: RawBlock['coverage'];
  /** What the last block handed to the sink carried: its coverage, with the drops known then. */
  last?: {
    readonly coverage: RawBlock['coverage'];
    readonly sourceDrops: RawBlock['dropped'];
    readonly dropped: number;
  };
  /** The source's coverage and drops at the source as the stop settled them (see `settle`). */
  settled?: RawBlock['coverage'];
  settledDrops?: RawBlock['dropped'];
}

/**
 * The persister's way into the embedded lake: every block it sends was compressed a moment before
 * by this pipeline, from slots it copied, so the service checks its sizes and its stream but does
 * not walk its lz4 parts again (a fifth of the main thread's time at 2.5 M msg/s). Not exported:
 * a block from anywhere else (a spool on disk, a user's code) is walked as always.
 */
class OwnBlocksTransport extends InProcessTransport {
  protected override insertBlock(bytes: Uint8Array): Promise<unknown> {
    return this.service.insertBlock(bytes, { payloadVerified: true });
  }
}

/** What the thread's instrumentation streams say of an actor thread, once known. */
export type ThreadActors = (final: boolean) => InstrumentedThread['actors'] | undefined;

/** Raw blocks waiting for compression, at most, by default (beyond, a block's records are dropped and counted lost). */
const BACKLOG_BYTES = 256 * 1024 * 1024;

/** Copying threads started again after one died, at most, in a run. */
const MAX_RESTARTS = 3;

/** The main thread's log of the persisting (what happened to the persister's threads). */
const log = logger('dorsal.persister');

/** A source as a (re)started thread reads it: from where the blocks received so far end. */
function resumed(source: Source): PersistSource {
  const read = source.read;
  if (read === undefined) return source.source;
  return {
    ...source.source,
    from: read.endSeq,
    lostBefore: read.lostTotal,
    poisonedBefore: read.poisonedTotal,
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A block of a source with no record: its coverage alone (and what its thread dropped). */
function coverageBlock(
  source: Source,
  coverage: RawBlock['coverage'],
  dropped?: RawBlock['dropped'],
): RawBlock {
  return {
    type: 'block',
    key: source.source.key,
    records: new ArrayBuffer(0),
    bytes: 0,
    count: 0,
    beginTicks: 0,
    endTicks: 0,
    coverage,
    ...(dropped === undefined ? {} : { dropped }),
  };
}

/**
 * What the persister and the plain process's instrumentation shipping share: a thread that copies
 * every source's slots into blocks (persister-worker.ts), and here their compression (on libuv's
 * pool) and delivery through a `TelemetrySink` to the embedded lake or an ingestion server, one
 * lake process per run and one lake stream per source (see records.ts for the format), and the
 * report of what reached the lake and what was lost.
 */
export class PersistPipeline {
  /** The base of the process's clock: the spine's, or the plain process's instrumentation's. */
  readonly clockBaseNs: number;
  private readonly options: PersistOptions;
  private readonly blockBytes: number;
  private readonly blockMs: number;
  private readonly flushTimeoutMs: number;
  private readonly maxBacklogBytes: number;
  /** Wall clock (epoch ns) of the process clock's zero. */
  private readonly epochOfZero: bigint;
  /** The persister thread's own instrumentation buffers. */
  private readonly own: ThreadBuffersDescriptor;
  private worker?: Worker;
  private service?: IngestionService;
  private sink?: TelemetrySink;
  private processInfo?: ProcessInfo;
  private readonly sources = new Map<string, Source>();
  /** Each thread's buffers get a number, by their string table. */
  private readonly threads = new Map<SharedArrayBuffer, number>();
  private readonly compressing = new Set<Promise<void>>();
  private backlogBytes = 0;
  /** Raw bytes of the blocks waiting for their stream (see `hold`): held, as the backlog is. */
  private waitingBytes = 0;
  /** Which source, and how many records, each block handed to the sink and not yet settled holds (for its drops). */
  private readonly shipped = new Map<string, { readonly source: Source; readonly count: number }>();
  private stopped?: Promise<void>;
  private blocks = 0;
  /** The latest end of a block handed to the sink, in ticks of the process's clock. */
  private lastEndTicks = 0;
  private failure?: unknown;
  /** `abort` terminated the thread (a start that failed). */
  private aborted = false;
  /** Why each thread that was started again died. */
  private readonly restarts: string[] = [];
  private stopping = false;
  private spine?: { readonly descriptor: SpineDescriptor; readonly worker: number };

  /** `options` checked already; `nowNs`: the process clock's reading now (ns since `clockBaseNs`). */
  constructor(options: PersistOptions, clockBaseNs: number, nowNs: number) {
    this.options = options;
    this.blockBytes = options.blockBytes ?? 1024 * 1024;
    this.blockMs = options.blockMs ?? 1000;
    this.flushTimeoutMs = options.flushTimeoutMs ?? 10_000;
    this.maxBacklogBytes = options.backlogBytes ?? BACKLOG_BYTES;
    this.clockBaseNs = clockBaseNs;
    this.epochOfZero = BigInt(Date.now()) * 1_000_000n - BigInt(Math.round(nowNs));
    this.own = createThreadBuffers({ name: 'persister', clockBaseNs });
    this.addThread(this.own, 'oldest');
  }

  /** Opens the embedded lake (with `data`), loaded only then: shipping to a server needs none. */
  async openLake(): Promise<void> {
    if (this.options.data === undefined) return;
    const [{ IngestionService }, { Lake }] = await Promise.all([
      import('../ingestion/service.js'),
      import('../lake/lake.js'),
    ]);
    // Aborted meanwhile (a start given up): no lake is opened that nothing would close.
    if (this.aborted) throw new Error("the persister's start was given up");
    this.service = new IngestionService(Lake.open({ data: this.options.data }));
    await this.service.lake.ready();
  }

  /** Adds a source (before the start, or while the thread runs: it attaches then). */
  add(
    source: PersistSource,
    spec: SourceSpec,
    extra: Partial<Pick<Source, 'ticksOffset' | 'strings'>> = {},
  ): void {
    const entry: Source = {
      ...spec,
      source,
      ticksOffset: 0,
      ...extra,
      waiting: [],
      received: 0,
      dropped: 0,
    };
    this.sources.set(source.key, entry);
    this.worker?.postMessage({ type: 'source', source } satisfies ToPersister);
  }

  /**
   * Adds the three queues of a thread's buffers (once: buffers added again are ignored), from
   * `from` on; `actors` says which actors it runs, if it is an actor thread.
   */
  addThread(
    descriptor: ThreadBuffersDescriptor,
    from: InstrumentationPositions | 'oldest',
    actors?: ThreadActors,
  ): void {
    if (this.threads.has(descriptor.strings)) return;
    const number = this.threads.size;
    this.threads.set(descriptor.strings, number);
    const strings = StringTableReader.attach(descriptor.strings);
    for (const threadSource of threadSources(descriptor, number, from)) {
      const source = descriptor === this.own ? { ...threadSource, own: true } : threadSource;
      const describe = (processId: string, final: boolean) => {
        const named = actors?.(final);
        if (actors !== undefined && named === undefined) return undefined;
        const thread: InstrumentedThread = {
          name: descriptor.name,
          threadId: strings.threadId,
          clockBaseNs: descriptor.clockBaseNs,
          ...(named === undefined ? {} : { actors: named }),
        };
        return instrumentationStream(processId, thread, source);
      };
      this.add(
        source,
        { name: descriptor.name, describe, eager: false },
        { ticksOffset: descriptor.clockBaseNs - this.clockBaseNs, strings },
      );
    }
  }

  /** The source added under `key`, to rename it (an actor named). */
  source(key: string): SourceSpec | undefined {
    return this.sources.get(key);
  }

  /** Starts the copying thread; resolves once it has attached to every source. */
  start(spine?: { readonly descriptor: SpineDescriptor; readonly worker: number }): Promise<void> {
    // Aborted while its lake opened (a start given up): no thread is started that nothing would end.
    if (this.aborted) return Promise.reject(new Error("the persister's start was given up"));
    this.spine = spine;
    return this.launch();
  }

  /**
   * Starts a copying thread, each source from where the blocks received so far end (the first
   * thread: from the sources' own starts). Resolves once it attached to every source; rejects if
   * it could not. A thread that dies while no stop was asked is started again, at most
   * `MAX_RESTARTS` times a run: the new one reads again what the dead one had copied and not cut
   * into a block yet, unless the ring overwrote it meanwhile (then counted lost, as a lapped
   * consumer counts).
   */
  private launch(): Promise<void> {
    const url = new URL(
      `./persister-worker${isTypeScriptModule(import.meta.url) ? '.ts' : '.js'}`,
      import.meta.url,
    );
    const spine = this.spine;
    const worker = startModuleWorker(url, {
      workerData: {
        ...(spine === undefined ? {} : { spine: spine.descriptor, worker: spine.worker }),
        instrumentation: this.own,
        sources: [...this.sources.values()].filter((s) => s.refused !== true).map(resumed),
        blockBytes: this.blockBytes,
        blockMs: this.blockMs,
        ...(this.restarts.length === 0 ? {} : { restarted: true }),
      },
    });
    this.worker = worker;
    // Read now: a thread that ended has the id -1.
    const owner = persisterOwner(worker.threadId);
    let attached: () => void = () => {};
    let stopped: () => void = () => {};
    let failed: (error: unknown) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      attached = resolve;
      failed = reject;
    });
    let ended = false;
    // Settled on 'exit', not 'error': Node emits a thread's uncaught error (on its internal port)
    // possibly before the blocks it posted earlier are delivered, and 'exit' only after all are.
    // A stop that went on at the 'error' would settle without them, then receive them: counted
    // persisted and lost both.
    let error: unknown;
    let died: (error: unknown) => void = () => {};
    this.stopped = new Promise<void>((resolve, reject) => {
      stopped = resolve;
      died = reject;
    });
    worker.once('error', (e) => (error ??= e));
    worker.on('message', (message: FromPersister) => {
      if (message.type === 'attached') {
        for (const { key, entry } of message.entries) {
          const source = this.sources.get(key);
          if (source !== undefined) source.entry = entry;
        }
        // Here, not in a reaction to `ready`: a thread that dies right after it attached has its
        // 'attached' delivered in the same task as its 'exit' (Node drains its port there).
        attachedHere = true;
        attached();
      } else if (message.type === 'block') this.received(message);
      else if (message.type === 'refused') this.refuse(message.key, message.error);
      else {
        ended = true;
        stopped();
      }
    });
    /** This thread attached to its sources: one that died before would die again. */
    let attachedHere = false;
    worker.once('exit', (code) => {
      if (ended) return;
      const cause = error ?? new Error(`the persister's thread exited with code ${code}`);
      failed(cause);
      // A thread that died holds its consumer entries still: a System's stop would wait for them
      // to catch up. They are given back (a thread that stopped closed them itself), by the
      // thread's mark: those it took before it could say so too (killed while it attached). So
      // are the producer roles of its own instrumentation, for the next thread.
      for (const source of this.sources.values()) {
        attachSource(source.source).releaseConsumersOf(owner);
        source.entry = undefined;
      }
      releaseThreadBuffers(this.own);
      // Started again (the stop, waiting for this thread, then waits for the new one), unless
      // a stop was asked already, or the thread never attached: it would fail again.
      if (!this.stopping && attachedHere && this.restarts.length < MAX_RESTARTS) {
        this.restarts.push(messageOf(cause));
        try {
          void this.launch().catch(() => {});
        } catch (startError) {
          // A thread that cannot even be made (a worker refused synchronously): the persisting
          // ends here, as after a fourth death, rather than as an exception out of this handler.
          this.failure ??= new Error(
            `the persister's thread died (${messageOf(cause)}) and could not be started again: ${messageOf(startError)}`,
          );
        }
      } else {
        this.failure ??= cause;
      }
      // Said where it is seen: in the main thread's log (which the next thread carries to the
      // lake), and, once persisting has ended for good mid-run, as a process warning. Not a
      // thread `abort` terminated (a start that failed): that is no death.
      const restarted = this.failure === undefined;
      if (!this.aborted)
        log.warn("the persister's thread died", {
          error: messageOf(cause),
          restarted,
          restarts: this.restarts.length,
        });
      if (!restarted && !this.stopping) {
        process.emitWarning(
          `the persister's thread died (${messageOf(this.failure)}): nothing more of this run reaches the lake; its stop report counts what was lost`,
          { code: 'DORSAL_PERSISTER_DEAD' },
        );
      }
      died(cause);
    });
    ready.catch(() => {});
    // An unhandled rejection of an incarnation nobody stops is not an error: `stop` looks at the latest.
    this.stopped.catch(() => {});
    return ready;
  }

  /**
   * A source the thread could not attach to (added while it ran: a queue whose consumer table is
   * full, say): it is not read, by this thread or the next, and what it published is counted lost
   * at the stop; the report's `failure` says why.
   */
  private refuse(key: string, error: string): void {
    const source = this.sources.get(key);
    if (source === undefined) return;
    source.refused = true;
    this.failure ??= new Error(`${source.name}: ${error}`);
  }

  /** Sends the process record, then registers the streams that can be. */
  open(properties: Readonly<Record<string, string>>): ProcessInfo {
    this.processInfo = {
      processId: randomUUID(),
      exe: process.argv[1] ?? process.execPath,
      host: hostname(),
      username: userInfo().username,
      startTime: formatRfc3339Ns(this.epochOfZero),
      startTicks: 0,
      clock: { name: 'dorsal-spine-ns', ticksPerSecond: 1e9 },
      properties: { ...properties, 'dorsal.clock_base_ns': String(this.clockBaseNs) },
    };
    this.sink = new TelemetrySink({
      // Into the embedded lake, the blocks this pipeline compressed are not walked again.
      target: this.service === undefined ? this.options.url! : new OwnBlocksTransport(this.service),
      process: this.processInfo,
      ...(this.options.key === undefined ? {} : { key: this.options.key }),
      ...(this.options.requestTimeoutMs === undefined
        ? {}
        : { requestTimeoutMs: this.options.requestTimeoutMs }),
      // A dropped block's records are lost: the next block of its source says so in the lake.
      onDrop: (event) => {
        const shipped = this.shipped.get(event.blockId);
        if (shipped !== undefined) shipped.source.dropped += shipped.count;
        this.shipped.delete(event.blockId);
      },
      // Settled: forgotten (a long run ships millions of blocks; the map held every one).
      onSent: (blockId) => this.shipped.delete(blockId),
    });
    this.registerReady();
    return this.processInfo;
  }

  get opened(): boolean {
    return this.sink !== undefined;
  }

  /** Registers every stream that can be now: eager ones, and those with blocks waiting. */
  registerReady(final = false): void {
    for (const source of this.sources.values()) {
      if (source.eager || source.waiting.length > 0) this.tryRegister(source, final);
    }
  }

  /**
   * Stops the thread, flushes every block to the lake (with a deadline) and reports; `counts`
   * (a System's, at its stop) go into the lake too, as the process's counts stream.
   */
  async stop(counts?: StoredCounts): Promise<PersistReport> {
    this.stopping = true;
    this.worker?.postMessage({ type: 'stop' } satisfies ToPersister);
    // The thread running now (one that dies from here on is not started again).
    try {
      await this.stopped;
    } catch {
      // The thread died (`failure` says how): what it never cut into a block is counted below.
    }
    // Streams not described yet (actors never named: they never started) are registered with what is known.
    this.registerReady(true);
    await Promise.all([...this.compressing]);
    // Every block delivered or refused first (within the deadline): a block the server refuses
    // now is a drop the coverage blocks below must carry, else the lake never learns of it. Half
    // the deadline (3 s at most) is kept for those blocks and the run's counts: what
    // is not sent by then is set aside (spooled, or dropped and so counted in them), and they go
    // next, not behind a backlog the deadline would cut (the lake then held fewer records than it
    // was told were published, and no loss).
    const deadline = Date.now() + this.flushTimeoutMs;
    const reserve = Math.min(this.flushTimeoutMs / 2, 3000);
    if ((await this.sink?.flush(this.flushTimeoutMs - reserve)) === false) this.sink?.setAsideQueued();
    const accounts = [...this.sources.values()].flatMap((source) => {
      const account = this.settle(source);
      return account === undefined ? [] : [[source, account] as const];
    });
    // The run's counts first, with the persister's account of every stream: it says all that the
    // coverage blocks below say, so that a lake that gets it and not them (the sink sends several
    // at once, through a server that fails now and then) still learns of every loss.
    const empty = this.blocks === 0;
    if (counts !== undefined && this.sink !== undefined) {
      const stream = countsStreamInfo(this.processInfo!.processId);
      this.sink.addStream(stream);
      const persisted = [...this.sources.values()].flatMap((s) => this.persistedAccount(s));
      const rows = counts.streams.length + counts.timings.length + persisted.length;
      // Timed at the end of the last block: keeping the counts does not stretch the run's span.
      const at = this.epochOfZero + BigInt(this.lastEndTicks);
      this.sink.push(documentBlock(this.processInfo!, stream, { ...counts, persisted }, rows, at));
      this.blocks++;
    }
    for (const [source, block] of accounts) this.ship(source, block);
    // A run that published nothing at all is still recorded: its process, and each stream with
    // one block of coverage alone (nothing published, nothing lost).
    if (empty) {
      for (const source of this.sources.values()) {
        if (source.stream === undefined || source.last !== undefined) continue;
        this.ship(source, coverageBlock(source, { firstSeq: 0, endSeq: 0, lostTotal: 0, poisonedTotal: 0 }));
      }
    }
    await Promise.all([...this.compressing]);
    const stats = await this.sink?.close({ timeoutMs: Math.max(0, deadline - Date.now()) });
    await this.service?.lake.close();
    return {
      target: this.options.data ?? this.options.url ?? '',
      processId: this.processInfo?.processId ?? '',
      sources: [...this.sources.values()].map((s) => ({
        kind: s.source.kind,
        name: s.name,
        persisted: s.received - s.dropped,
        lost: (s.settled?.lostTotal ?? 0) + s.dropped,
        ...(s.strings === undefined ? {} : { dropped: dropsTotal(s.settledDrops) }),
      })),
      blocks: this.blocks,
      blocksDropped: stats?.droppedTotal ?? 0,
      flushed:
        this.failure === undefined && stats !== undefined && stats.buffered === 0 && stats.droppedTotal === 0,
      ...(this.failure === undefined ? {} : { failure: messageOf(this.failure) }),
      // Said only when something was not delivered: the sink keeps its last error either way.
      ...(stats !== undefined &&
      stats.lastError !== undefined &&
      (stats.droppedTotal > 0 || stats.buffered > 0)
        ? { deliveryError: deliveryError(stats) }
        : {}),
      ...(this.restarts.length === 0 ? {} : { restarts: [...this.restarts] }),
    };
  }

  /** Gives back whatever was started, fast (a start that failed). */
  async abort(): Promise<void> {
    // A thread terminated here is not one that died: it is not started again, nor logged.
    this.stopping = true;
    this.aborted = true;
    await this.worker?.terminate();
    await this.sink?.close({ timeoutMs: 0 });
    await this.service?.lake.close();
  }

  private tryRegister(source: Source, final: boolean): void {
    if (this.sink === undefined || source.stream !== undefined) return;
    const stream = source.describe(this.processInfo!.processId, final);
    if (stream === undefined) return;
    source.stream = stream;
    this.sink.addStream(stream);
    for (const block of source.waiting.splice(0)) {
      this.waitingBytes -= block.bytes;
      this.ship(source, block);
    }
  }

  /**
   * A source's account at the stop: the records published that the thread never read (written
   * after its last pass, or everything it had not cut into a block when it died) are lost. What
   * no block carried to the lake yet (those, blocks the sink dropped, the thread's drops at the
   * source since its last block) goes in one more block, of coverage alone: returned, to ship.
   */
  private settle(source: Source): RawBlock | undefined {
    const last = source.last;
    const endSeq = last?.coverage.endSeq ?? source.source.from;
    const unread = Math.max(0, attachSource(source.source).stats().published - endSeq);
    const settled = {
      firstSeq: endSeq,
      endSeq: endSeq + unread,
      lostTotal: (last?.coverage.lostTotal ?? 0) + unread,
      poisonedTotal: last?.coverage.poisonedTotal ?? 0,
    };
    const drops = this.dropsOf(source)?.read();
    source.settled = settled;
    source.settledDrops = drops;
    const dropsMoved = drops !== undefined && dropsTotal(drops) !== dropsTotal(last?.sourceDrops);
    if (unread === 0 && !dropsMoved && (last === undefined || last.dropped === source.dropped))
      return undefined;
    if (source.stream === undefined) this.tryRegister(source, true);
    return source.stream === undefined ? undefined : coverageBlock(source, settled, drops);
  }

  /** A settled source's account for the run's counts (none for a stream the lake never had). */
  private persistedAccount(source: Source): StoredPersisted[] {
    const settled = source.settled;
    if (source.stream === undefined || settled === undefined) return [];
    return [
      {
        streamId: source.stream.streamId,
        tags: [...source.stream.tags],
        name: streamName(source.stream),
        from: source.source.from,
        end: settled.endSeq,
        lost: settled.lostTotal + source.dropped,
        poisoned: settled.poisonedTotal,
        dropped: source.settledDrops === undefined ? 0 : dropsTotal(source.settledDrops),
      },
    ];
  }

  private received(block: RawBlock): void {
    const source = this.sources.get(block.key);
    if (source === undefined) return;
    // Read as often as blocks come: the thread's 32-bit counters may wrap between far reads.
    this.dropsOf(source)?.read();
    source.received += block.count;
    source.read = block.coverage;
    if (source.stream === undefined) this.tryRegister(source, false);
    if (source.stream === undefined) this.hold(source, block);
    else this.ship(source, block);
  }

  /**
   * Keeps a block until its stream can be registered (a System's actors are named, and their
   * streams described, once every `onInit` has returned), within `backlogBytes` as shipping is:
   * past it, the block's records are dropped and counted, and its coverage alone waits, merged
   * with a coverage alone that waits before it. An actor that logs through a long `onInit` held
   * every block until the start's end (gigabytes), most of them then dropped anyway.
   */
  private hold(source: Source, block: RawBlock): void {
    if (block.count === 0 || this.roomFor(block.bytes)) {
      this.waitingBytes += block.bytes;
      source.waiting.push(block);
      return;
    }
    source.dropped += block.count;
    const last = source.waiting.at(-1);
    const merged = last !== undefined && last.count === 0;
    if (merged) source.waiting.pop();
    const coverage = merged ? { ...block.coverage, firstSeq: last.coverage.firstSeq } : block.coverage;
    source.waiting.push(coverageBlock(source, coverage, block.dropped));
  }

  /**
   * Whether a block of `bytes` raw bytes may be held on top of the backlog and the waiting blocks
   * (`backlogBytes`). A block that finds nothing held may, whatever its size: a backlog smaller
   * than a block dropped every full one.
   */
  private roomFor(bytes: number): boolean {
    const held = this.backlogBytes + this.waitingBytes;
    return held === 0 || held + bytes <= this.maxBacklogBytes;
  }

  /** An instrumentation source's drops at the source, counted from the persister's attach. */
  private dropsOf(source: Source): DropsSince | undefined {
    if (source.source.drops === undefined || source.strings === undefined) return undefined;
    source.dropsSince ??= new DropsSince(source.source.drops, source.strings);
    return source.dropsSince;
  }

  /**
   * Compresses a block's parts on libuv's pool, then hands the block to the sink. Its coverage
   * counts, beside the thread's losses, the records of this source's blocks that never reached
   * the lake so far. Without room for it (`roomFor`), the block's records are dropped and
   * counted, and its coverage alone goes on: the lake learns of the loss at once.
   */
  private ship(source: Source, block: RawBlock): void {
    let raw = block;
    if (raw.count > 0 && !this.roomFor(raw.bytes)) {
      source.dropped += raw.count;
      raw = coverageBlock(source, raw.coverage, raw.dropped);
    }
    const blockId = randomUUID();
    const coverage = new Float64Array([
      raw.coverage.firstSeq,
      raw.coverage.endSeq,
      raw.coverage.lostTotal + source.dropped,
      raw.coverage.poisonedTotal,
    ]);
    source.last = { coverage: raw.coverage, sourceDrops: raw.dropped, dropped: source.dropped };
    const stream = source.stream!;
    const dependencies =
      source.strings === undefined
        ? new Uint8Array(coverage.buffer)
        : instrumentationDependencies(
            coverage,
            raw,
            Number(stream.properties[RecordProperty.RECORD_BYTES]),
            source.source.drops!.kind,
            source.strings,
          );
    this.backlogBytes += raw.bytes;
    const processId = this.processInfo!.processId;
    const ticks = (t: number) => (raw.count === 0 ? 0 : Math.round(t + source.ticksOffset));
    if (ticks(raw.endTicks) > this.lastEndTicks) this.lastEndTicks = ticks(raw.endTicks);
    let handed = false;
    const work = Promise.all([
      compressPartAsync(dependencies),
      compressPartAsync(new Uint8Array(raw.records, 0, raw.bytes)),
    ]).then(([compressedDependencies, objects]) => {
      const block: Block = {
        blockId,
        streamId: stream.streamId,
        processId,
        beginTime: formatRfc3339Ns(this.epochOfZero + BigInt(ticks(raw.beginTicks))),
        beginTicks: ticks(raw.beginTicks),
        endTime: formatRfc3339Ns(this.epochOfZero + BigInt(ticks(raw.endTicks))),
        endTicks: ticks(raw.endTicks),
        objectCount: raw.count,
        payload: { dependencies: compressedDependencies, objects },
      };
      this.shipped.set(blockId, { source, count: raw.count });
      try {
        this.sink!.push(block);
      } catch (error) {
        this.shipped.delete(blockId);
        throw error;
      }
      handed = true;
      this.blocks++;
    });
    const tracked = work
      .catch((error: unknown) => {
        this.failure ??= error;
        // Never handed to the sink: its records are lost, and counted (in the lake by the
        // source's next block, or the stop's block of coverage).
        if (!handed) source.dropped += raw.count;
      })
      .finally(() => {
        this.backlogBytes -= raw.bytes;
      });
    this.compressing.add(tracked);
    void tracked.then(() => this.compressing.delete(tracked));
  }
}

/**
 * Why blocks were not delivered: the last block's error first (the server's answer, the
 * network's), then a later error of another kind (the drop reports', the spool's) if any.
 */
function deliveryError(stats: SinkStats): string {
  const { lastBlockError, lastError } = stats;
  if (lastBlockError === undefined) return lastError ?? '';
  return lastError === undefined || lastError === lastBlockError
    ? lastBlockError
    : `${lastBlockError}; then: ${lastError}`;
}
