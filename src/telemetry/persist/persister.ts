import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type {
  AttachedActor,
  AttachmentHost,
  PersistOptions,
  PersistReport,
  SystemAttachment,
} from '../../actors/index.js';
import { isTypeScriptModule, startModuleWorker } from '../../module-worker.js';
import { TimingRecord, Tracking } from '../../spine/index.js';
import { IngestionService } from '../ingestion/service.js';
import { Lake } from '../lake/lake.js';
import { TelemetrySink } from '../sink/sink.js';
import {
  type Block,
  compressPartAsync,
  formatRfc3339Ns,
  type LayoutDescription,
  type ProcessInfo,
  type StreamInfo,
} from '../wire/index.js';
import { checkPersistOptions } from './options.js';
import type { FromPersister, PersistSource, RawBlock, SourceTotals, ToPersister } from './protocol.js';
import { BlockCoverage, RecordProperty, recordShape } from './records.js';

/** A source as the main thread knows it: its lake stream, once registered. */
interface Source {
  readonly source: PersistSource;
  /** What the report calls it: the stream's or the actor's name. */
  name: string;
  stream?: StreamInfo;
  /** Blocks that arrived before the stream could be registered (an actor not named yet). */
  readonly waiting: RawBlock[];
  /** Records of blocks that never reached the lake (the sink dropped them, or the backlog was full). */
  dropped: number;
  /** What the last block handed to the sink carried: its coverage, with the drops known then. */
  last?: { readonly coverage: RawBlock['coverage']; readonly dropped: number };
}

/** Raw blocks waiting for compression, at most (beyond, a block is dropped and its records counted lost). */
const MAX_BACKLOG_BYTES = 256 * 1024 * 1024;

/**
 * The persister (`new System(spine, { persist })`): a thread that copies every slot of every
 * stream and timing queue into blocks, and, here in the main thread, their compression (on
 * libuv's pool) and delivery through a `TelemetrySink` to the embedded lake or an ingestion
 * server. One lake process per run, one lake stream per source; see records.ts for the format.
 */
export class Persister implements SystemAttachment {
  private readonly options: PersistOptions;
  private readonly blockBytes: number;
  private readonly blockMs: number;
  private readonly flushTimeoutMs: number;
  private host?: AttachmentHost;
  private worker?: Worker;
  private service?: IngestionService;
  private sink?: TelemetrySink;
  private processInfo?: ProcessInfo;
  /** Wall clock (epoch ns) of the spine clock's zero. */
  private epochOfZero = 0n;
  private readonly sources = new Map<string, Source>();
  private readonly compressing = new Set<Promise<void>>();
  private backlogBytes = 0;
  /** Which source, and how many records, each block handed to the sink holds (for its drops). */
  private readonly shipped = new Map<string, { readonly source: Source; readonly count: number }>();
  private stopped?: Promise<readonly SourceTotals[]>;
  private blocks = 0;
  private failure?: unknown;

  constructor(options: unknown) {
    this.options = checkPersistOptions(options);
    this.blockBytes = this.options.blockBytes ?? 1024 * 1024;
    this.blockMs = this.options.blockMs ?? 1000;
    this.flushTimeoutMs = this.options.flushTimeoutMs ?? 10_000;
  }

  async start(host: AttachmentHost): Promise<void> {
    this.host = host;
    const spine = host.spine;
    if (this.options.data !== undefined) {
      this.service = new IngestionService(Lake.open({ data: this.options.data }));
      await this.service.lake.ready();
    }
    this.epochOfZero = BigInt(Date.now()) * 1_000_000n - BigInt(Math.round(spine.clock.now()));
    spine.names.forEach((name, index) => {
      const queue = spine.queue(index);
      this.addSource(
        {
          key: `stream:${name}`,
          kind: 'messages',
          layout: queue.layout.describe(),
          envelope: true,
          buffer: queue.buffer,
          from: host.startAt[index] ?? 0,
          timeIndex: timeIndexOf([Tracking.describe(), queue.layout.describe()], 0, 'publish_t'),
        },
        name,
      );
    });
    for (const actor of host.actors()) this.addTimingSource(actor);
    const url = new URL(
      `./persister-worker${isTypeScriptModule(import.meta.url) ? '.ts' : '.js'}`,
      import.meta.url,
    );
    const worker = startModuleWorker(url, {
      workerData: {
        spine: spine.descriptor(),
        worker: host.worker,
        sources: [...this.sources.values()].map((s) => s.source),
        blockBytes: this.blockBytes,
        blockMs: this.blockMs,
      },
    });
    this.worker = worker;
    let attached: () => void = () => {};
    let stopped: (totals: readonly SourceTotals[]) => void = () => {};
    let failed: (error: unknown) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      attached = resolve;
      failed = reject;
    });
    this.stopped = new Promise<readonly SourceTotals[]>((resolve, reject) => {
      stopped = resolve;
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the persister's thread exited with code ${code}`)));
    });
    this.stopped.catch((error: unknown) => {
      this.failure ??= error;
    });
    worker.on('message', (message: FromPersister) => {
      if (message.type === 'attached') attached();
      else if (message.type === 'block') this.received(message);
      else stopped(message.sources);
    });
    worker.once('error', failed);
    await ready;
  }

  actorSpawned(actor: AttachedActor): void {
    const source = this.addTimingSource(actor);
    this.worker?.postMessage({ type: 'source', source: source.source } satisfies ToPersister);
  }

  actorsNamed(actors: readonly AttachedActor[]): void {
    if (this.sink === undefined) this.openSink(actors);
    for (const actor of actors) {
      const source = this.sources.get(`timings:${actor.id}`);
      if (source === undefined || source.stream !== undefined || actor.name === undefined) continue;
      source.name = actor.name;
      this.register(source, timingStream(this.processInfo!.processId, actor, source.source));
    }
  }

  async stop(): Promise<PersistReport> {
    this.worker?.postMessage({ type: 'stop' } satisfies ToPersister);
    let totals: readonly SourceTotals[] = [];
    try {
      totals = (await this.stopped) ?? [];
    } catch {
      // Counted below: what the thread did not report is reported as not flushed.
    }
    // Blocks of actors never named (they never started) go under their ids.
    for (const source of this.sources.values()) {
      if (source.stream === undefined && this.processInfo !== undefined && source.source.kind === 'timings') {
        const id = Number(source.source.key.slice('timings:'.length));
        this.register(
          source,
          timingStream(this.processInfo.processId, { id, name: undefined, module: '' }, source.source),
        );
      }
    }
    await Promise.all([...this.compressing]);
    // Drops no block has carried to the lake yet: one more block each, of coverage alone.
    for (const source of this.sources.values()) {
      const last = source.last;
      if (last !== undefined && source.stream !== undefined && source.dropped !== last.dropped) {
        const { endSeq, lostTotal, poisonedTotal } = last.coverage;
        const empty = new ArrayBuffer(0);
        this.ship(source, {
          type: 'block',
          key: source.source.key,
          records: empty,
          bytes: 0,
          count: 0,
          beginTicks: 0,
          endTicks: 0,
          coverage: { firstSeq: endSeq, endSeq, lostTotal, poisonedTotal },
        });
      }
    }
    await Promise.all([...this.compressing]);
    const stats = await this.sink?.close({ timeoutMs: this.flushTimeoutMs });
    await this.service?.lake.close();
    const byKey = new Map(totals.map((t) => [t.key, t]));
    return {
      target: this.options.data ?? this.options.url ?? '',
      processId: this.processInfo?.processId ?? '',
      sources: [...this.sources.values()].map((s) => ({
        kind: s.source.kind,
        name: s.name,
        persisted: (byKey.get(s.source.key)?.persisted ?? 0) - s.dropped,
        lost: (byKey.get(s.source.key)?.lost ?? 0) + s.dropped,
      })),
      blocks: this.blocks,
      blocksDropped: stats?.droppedTotal ?? 0,
      flushed:
        this.failure === undefined && stats !== undefined && stats.buffered === 0 && stats.droppedTotal === 0,
    };
  }

  async abort(): Promise<void> {
    await this.worker?.terminate();
    await this.sink?.close({ timeoutMs: 0 });
    await this.service?.lake.close();
  }

  private addSource(source: PersistSource, name: string): Source {
    const entry: Source = { source, name, waiting: [], dropped: 0 };
    this.sources.set(source.key, entry);
    return entry;
  }

  private addTimingSource(actor: AttachedActor): Source {
    const queue = this.host!.spine.timingQueue(actor.id)!;
    return this.addSource(
      {
        key: `timings:${actor.id}`,
        kind: 'timings',
        layout: TimingRecord.describe(),
        envelope: false,
        buffer: queue.buffer,
        from: 0,
        timeIndex: timeIndexOf([TimingRecord.describe()], 0, 'end_t'),
      },
      actor.name ?? `actor-${actor.id}`,
    );
  }

  /** The process record, once every actor has a name; then the spine's streams. */
  private openSink(actors: readonly AttachedActor[]): void {
    const spine = this.host!.spine;
    this.processInfo = {
      processId: randomUUID(),
      exe: process.argv[1] ?? process.execPath,
      host: hostname(),
      username: userInfo().username,
      startTime: formatRfc3339Ns(this.epochOfZero),
      startTicks: 0,
      clock: { name: 'dorsal-spine-ns', ticksPerSecond: 1e9 },
      properties: {
        'dorsal.spine': JSON.stringify(
          spine.names.map((name, i) => ({
            name,
            capacity: spine.queue(i).capacity,
            multiProducer: spine.queue(i).multiProducer,
            layout: spine.queue(i).layout.describe(),
          })),
        ),
        'dorsal.actors': JSON.stringify(actors.map((a) => ({ id: a.id, name: a.name, module: a.module }))),
        ...this.options.properties,
      },
    };
    this.sink = new TelemetrySink({
      target: this.service ?? this.options.url!,
      process: this.processInfo,
      ...(this.options.key === undefined ? {} : { key: this.options.key }),
      // A dropped block's records are lost: the next block of its source says so in the lake.
      onDrop: (event) => {
        const shipped = this.shipped.get(event.blockId);
        if (shipped !== undefined) shipped.source.dropped += shipped.count;
      },
    });
    for (const source of this.sources.values()) {
      if (source.source.kind === 'messages') {
        this.register(source, messagesStream(this.processInfo.processId, source.name, source.source));
      }
    }
  }

  private register(source: Source, stream: StreamInfo): void {
    source.stream = stream;
    this.sink!.addStream(stream);
    for (const block of source.waiting.splice(0)) this.ship(source, block);
  }

  private received(block: RawBlock): void {
    const source = this.sources.get(block.key);
    if (source === undefined) return;
    if (source.stream === undefined) source.waiting.push(block);
    else this.ship(source, block);
  }

  /**
   * Compresses a block's parts on libuv's pool, then hands the block to the sink. Its coverage
   * counts, beside the thread's losses, the records of this source's blocks that never reached
   * the lake so far. With more raw blocks waiting than MAX_BACKLOG_BYTES, the block is dropped
   * instead, and counted so.
   */
  private ship(source: Source, raw: RawBlock): void {
    if (this.backlogBytes + raw.bytes > MAX_BACKLOG_BYTES) {
      source.dropped += raw.count;
      return;
    }
    const blockId = randomUUID();
    const coverage = new Float64Array([
      raw.coverage.firstSeq,
      raw.coverage.endSeq,
      raw.coverage.lostTotal + source.dropped,
      raw.coverage.poisonedTotal,
    ]);
    source.last = { coverage: raw.coverage, dropped: source.dropped };
    this.backlogBytes += raw.bytes;
    const stream = source.stream!;
    const processId = this.processInfo!.processId;
    const work = Promise.all([
      compressPartAsync(new Uint8Array(coverage.buffer)),
      compressPartAsync(new Uint8Array(raw.records, 0, raw.bytes)),
    ]).then(([dependencies, objects]) => {
      this.backlogBytes -= raw.bytes;
      const block: Block = {
        blockId,
        streamId: stream.streamId,
        processId,
        beginTime: formatRfc3339Ns(this.epochOfZero + BigInt(Math.round(raw.beginTicks))),
        beginTicks: Math.round(raw.beginTicks),
        endTime: formatRfc3339Ns(this.epochOfZero + BigInt(Math.round(raw.endTicks))),
        endTicks: Math.round(raw.endTicks),
        objectCount: raw.count,
        payload: { dependencies, objects },
      };
      this.shipped.set(blockId, { source, count: raw.count });
      this.sink!.push(block);
      this.blocks++;
    });
    const tracked = work.catch((error: unknown) => {
      this.failure ??= error;
    });
    this.compressing.add(tracked);
    void tracked.then(() => this.compressing.delete(tracked));
  }
}

/** The lake stream of a spine stream: tagged `messages`, property `name`. */
function messagesStream(processId: string, name: string, source: PersistSource): StreamInfo {
  const shape = recordShape([Tracking.describe(), source.layout]);
  return {
    streamId: randomUUID(),
    processId,
    tags: ['messages'],
    dependenciesLayouts: [BlockCoverage.describe()],
    objectsLayouts: shape.layouts,
    properties: {
      name,
      [RecordProperty.RECORD_BYTES]: String(shape.bytes),
      [RecordProperty.LAYOUT_OFFSETS]: shape.offsets.join(','),
      [RecordProperty.TIME_FIELD]: 'Tracking.publish_t',
    },
  };
}

/** The lake stream of an actor's timing queue: tagged `timings`, property `actor`. */
function timingStream(processId: string, actor: AttachedActor, source: PersistSource): StreamInfo {
  const shape = recordShape([source.layout]);
  return {
    streamId: randomUUID(),
    processId,
    tags: ['timings'],
    dependenciesLayouts: [BlockCoverage.describe()],
    objectsLayouts: shape.layouts,
    properties: {
      actor: actor.name ?? `actor-${actor.id}`,
      actor_id: String(actor.id),
      module: actor.module,
      [RecordProperty.RECORD_BYTES]: String(shape.bytes),
      [RecordProperty.LAYOUT_OFFSETS]: shape.offsets.join(','),
      [RecordProperty.TIME_FIELD]: 'TimingRecord.end_t',
    },
  };
}

/** The Float64 index, in a record, of field `field` of part `part` (after the record header). */
function timeIndexOf(parts: readonly LayoutDescription[], part: number, field: string): number {
  const shape = recordShape(parts);
  const offset = parts[part]!.fields.find((f) => f.name === field)!.offset;
  return (shape.offsets[part + 1]! + offset) / 8;
}
