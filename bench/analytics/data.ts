import { randomUUID } from 'node:crypto';
import { viewsOf } from '../../src/queues/codec.js';
import { defineMessage, type Layout } from '../../src/queues/index.js';
import { TimingRecord, Tracking } from '../../src/spine/index.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import type { LakeLocation } from '../../src/telemetry/lake/open.js';
import { recordShape } from '../../src/telemetry/persist/records.js';
import { recordStreamInfo } from '../../src/telemetry/persist/streams.js';
import {
  compressPart,
  formatRfc3339Ns,
  type ProcessInfo,
  type StreamInfo,
} from '../../src/telemetry/wire/index.js';

/**
 * A persisted run, written straight into a lake in the persister's format (deterministic, so
 * that runs compare): `trees` ticks, each → two orders → a fill each (5 messages per tree, with
 * the strategy's and the gateway's timing records), and `timingRows` more timing records of four
 * actors on two streams, latencies spread over three decades: other handlers of the trees' ticks
 * and orders, in the order of their trees (origins rise through a file, as in a run), or with
 * `messageless`, records whose messages the lake does not hold (lost), slower than any tree.
 * With `lostOrdersOf`, that tree's two orders are not written (lost): its fills make trees of their
 * own, of its origin. `ticksName` names the ticks' stream, `ticksLayout` lays its messages out (a
 * layout with `price` (f64) and `n` (i32) among its fields).
 */
export interface BenchRun {
  readonly actors: readonly string[];
  readonly streams: readonly string[];
  readonly processId: string;
  readonly messages: number;
  readonly timings: number;
}

const Tick = defineMessage('Tick', { price: 'f64', n: 'i32' });
const Order = defineMessage('Order', { tick: 'i32', side: 'u8' });
const Fill = defineMessage('Fill', { order: 'i32' });
const STREAMS = [
  ['ticks', Tick],
  ['orders', Order],
  ['fills', Fill],
] as const;
const ACTORS = ['feed', 'strategy', 'gateway', 'a0', 'a1', 'a2', 'a3'];
const BLOCK_BYTES = 1 << 20;
const NO_PARENT = 65535;

/** Writes one stream's records, cut into 1 MiB blocks, through an ingestion service. */
class StreamWriter<M extends object> {
  private readonly records: Uint8Array;
  private readonly codecs: { write(base: number, m: object): void }[];
  private readonly shape: ReturnType<typeof recordShape>;
  private readonly perBlock: number;
  private count = 0;
  private firstSeq = 0;
  private beginT = 0;
  private endT = 0;
  private readonly pending: Promise<unknown>[] = [];

  constructor(
    private readonly service: IngestionService,
    private readonly process: ProcessInfo,
    private readonly epochNs: bigint,
    readonly info: StreamInfo,
    parts: readonly Layout<object>[],
  ) {
    this.shape = recordShape(parts.map((p) => p.describe()));
    this.perBlock = Math.floor(BLOCK_BYTES / this.shape.bytes);
    this.records = new Uint8Array(this.perBlock * this.shape.bytes);
    const views = viewsOf(this.records.buffer);
    this.codecs = parts.map((p) => p.bind(views) as { write(base: number, m: object): void });
    this.seqView = new Float64Array(this.records.buffer);
  }

  private readonly seqView: Float64Array;

  /**
   * Adds a record: its sequence, its time (for the block's span: records of several actors'
   * handlers end out of order), then each part's value.
   */
  add(seq: number, time: number, values: readonly M[]): void {
    if (this.count === 0) {
      this.firstSeq = seq;
      this.beginT = time;
      this.endT = time;
    }
    this.beginT = Math.min(this.beginT, time);
    this.endT = Math.max(this.endT, time);
    const base = this.count * this.shape.bytes;
    this.seqView[base >> 3] = seq;
    for (let p = 0; p < values.length; p++)
      this.codecs[p]!.write(base + this.shape.offsets[p + 1]!, values[p]!);
    if (++this.count === this.perBlock) this.flush();
  }

  flush(): void {
    if (this.count === 0) return;
    const coverage = new Float64Array([this.firstSeq, this.firstSeq + this.count, 0, 0]);
    const objects = compressPart(this.records.slice(0, this.count * this.shape.bytes));
    const at = (t: number) => formatRfc3339Ns(this.epochNs + BigInt(Math.round(t)));
    this.pending.push(
      this.service.ingestBlock({
        blockId: randomUUID(),
        streamId: this.info.streamId,
        processId: this.process.processId,
        beginTime: at(this.beginT),
        beginTicks: Math.round(this.beginT),
        endTime: at(this.endT),
        endTicks: Math.round(this.endT),
        objectCount: this.count,
        payload: { dependencies: compressPart(new Uint8Array(coverage.buffer)), objects },
      }),
    );
    this.count = 0;
  }

  async done(): Promise<void> {
    this.flush();
    await Promise.all(this.pending);
  }
}

function streamInfo(
  processId: string,
  tags: string[],
  parts: readonly Layout<object>[],
  properties: Record<string, string>,
  timeField: string,
): StreamInfo {
  return recordStreamInfo(
    processId,
    tags,
    parts.map((p) => p.describe()),
    timeField,
    properties,
  );
}

/** Writes the run into the lake at `location`. */
export async function writeBenchRun(
  location: LakeLocation,
  trees: number,
  timingRows: number,
  onTiming: (actor: number, stream: number, latency: number, processing: number) => void = () => {},
  {
    messageless = false,
    lostOrdersOf = -1,
    ticksName = 'ticks',
    ticksLayout = Tick,
  }: {
    readonly messageless?: boolean;
    readonly lostOrdersOf?: number;
    readonly ticksName?: string;
    readonly ticksLayout?: Layout<object>;
  } = {},
): Promise<BenchRun> {
  const streams = STREAMS.map(([name, layout], i) =>
    i === 0 ? ([ticksName, ticksLayout] as const) : ([name, layout] as const),
  );
  if (timingRows > 0 && trees < 1 && !messageless) {
    throw new Error('writeBenchRun: timing records of trees need a tree at least (or messageless)');
  }
  const service = new IngestionService(location);
  const epochNs = BigInt(Date.now()) * 1_000_000n;
  const process: ProcessInfo = {
    processId: randomUUID(),
    exe: 'bench/analytics',
    host: 'bench',
    username: 'bench',
    startTime: formatRfc3339Ns(epochNs),
    startTicks: 0,
    clock: { name: 'dorsal-spine-ns', ticksPerSecond: 1e9 },
    properties: {
      'dorsal.spine': JSON.stringify(streams.map(([name, layout]) => ({ name, layout: layout.describe() }))),
      'dorsal.actors': JSON.stringify(ACTORS.map((name, id) => ({ id, name }))),
    },
  };
  await service.ingestProcess(process);
  const messages = streams.map(
    ([name, layout]) =>
      new StreamWriter(
        service,
        process,
        epochNs,
        streamInfo(
          process.processId,
          ['messages'],
          [Tracking, layout as Layout<object>],
          { name },
          'Tracking.publish_t',
        ),
        [Tracking, layout as Layout<object>],
      ),
  );
  const timings = ACTORS.map(
    (actor, id) =>
      new StreamWriter(
        service,
        process,
        epochNs,
        streamInfo(
          process.processId,
          ['timings'],
          [TimingRecord],
          { actor, actor_id: String(id) },
          'TimingRecord.end_t',
        ),
        [TimingRecord],
      ),
  );
  for (const writer of [...messages, ...timings]) await service.ingestStream(writer.info);

  let x = 0x9e3779b9;
  const random = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const envelope = { origin_t: 0, publish_t: 0, parent_seq: 0, parent_stream: NO_PARENT, actor: 0 };
  const timing = { seq: 0, origin_t: 0, publish_t: 0, start_t: 0, end_t: 0, stream: 0, actor: 0 };
  const [ticks, orders, fills] = messages as [
    StreamWriter<object>,
    StreamWriter<object>,
    StreamWriter<object>,
  ];
  for (let i = 0; i < trees; i++) {
    const origin = 1_000_000 + i * 5000;
    Object.assign(envelope, {
      origin_t: origin,
      publish_t: origin,
      parent_seq: 0,
      parent_stream: NO_PARENT,
      actor: 0,
    });
    ticks.add(i, origin, [envelope, { price: 100 + (i % 7), n: i }]);
    const start = origin + 300 + random() * 2000;
    Object.assign(timing, {
      seq: i,
      origin_t: origin,
      publish_t: origin,
      start_t: start,
      end_t: start + 500,
      stream: 0,
      actor: 1,
    });
    timings[1]!.add(i, timing.end_t, [timing]);
    onTiming(1, 0, timing.end_t - origin, 500);
    for (let side = 0; side < 2; side++) {
      const order = 2 * i + side;
      const published = start + 200 + side * 100;
      Object.assign(envelope, {
        origin_t: origin,
        publish_t: published,
        parent_seq: i,
        parent_stream: 0,
        actor: 1,
      });
      if (i !== lostOrdersOf) orders.add(order, published, [envelope, { tick: i, side }]);
      const handled = published + 300 + random() * 3000;
      Object.assign(timing, {
        seq: order,
        origin_t: origin,
        publish_t: published,
        start_t: handled,
        end_t: handled + 700,
        stream: 1,
        actor: 2,
      });
      timings[2]!.add(order, timing.end_t, [timing]);
      onTiming(2, 1, timing.end_t - origin, 700);
      Object.assign(envelope, {
        origin_t: origin,
        publish_t: handled + 400,
        parent_seq: order,
        parent_stream: 1,
        actor: 2,
      });
      fills.add(order, handled + 400, [envelope, { order }]);
    }
  }
  for (let i = 0; i < timingRows; i++) {
    const actor = 3 + (i & 3);
    const tree = Math.min(trees - 1, Math.floor((i * trees) / timingRows));
    const stream = (i >> 2) & 1;
    // Messageless: never a tree's origin (those are whole multiples of 5000 ns past 1 ms).
    const origin = messageless ? 1_000_050 + i * 100 : 1_000_000 + tree * 5000;
    // 1 µs to 1 ms; messageless, 10 µs to 1 ms: slower than any tree (6.6 µs at most).
    const latency = messageless ? 10_000 * 10 ** (2 * random()) : 1000 * 10 ** (3 * random());
    const start = origin + latency * 0.8;
    Object.assign(timing, {
      seq: messageless ? i >> 2 : stream === 0 ? tree : 2 * tree + ((i >> 3) & 1),
      origin_t: origin,
      publish_t: origin + latency * 0.1,
      start_t: start,
      end_t: origin + latency,
      stream,
      actor,
    });
    timings[actor]!.add(i >> 2, timing.end_t, [timing]);
    onTiming(actor, timing.stream, latency, timing.end_t - start);
  }
  for (const writer of [...messages, ...timings]) await writer.done();
  await service.close();
  return {
    processId: process.processId,
    actors: ACTORS,
    streams: streams.map(([name]) => name),
    messages: trees * 5 - (lostOrdersOf >= 0 && lostOrdersOf < trees ? 2 : 0),
    timings: trees * 3 + timingRows,
  };
}
