/**
 * The spine section: what tracking costs, and a 3-hop pipeline end to end.
 *
 * - tracking per hop, in one thread: handling a message and producing the next one through a
 *   SpineAdapter (envelope, parent, three clock reads, a timing record) against a bare
 *   poll + publish of the same message, both in a tight loop; the difference is the cost of
 *   tracking per hop.
 * - end-to-end latency of source → relay → relay → sink on four worker threads, p50/p99/p99.9
 *   (HDR), with full tracking (a System of actors), on bare queues (no tracking, same adaptive
 *   wait), and over MessagePort — all three in the same run.
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { Clock, SeqlockQueue, Spine, SpineAdapter, System } from '../src/index.js';
import { Hop, type LatencyReport, pipelineSpine } from './spine/spine.js';
import type { BenchRow, BenchSection } from './types.js';

const GROUP = 'spine';
const row = (name: string, value: number, unit: string, extra: Partial<BenchRow> = {}): BenchRow => ({
  group: GROUP,
  name,
  value,
  unit,
  ...extra,
});

/** ns per message of `step` (which handles `batch` messages), median of `rounds`. */
function perMessage(rounds: number, batch: number, refill: () => void, step: () => void): number {
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    refill();
    const start = performance.now();
    step();
    samples.push(((performance.now() - start) * 1e6) / batch);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1]!;
}

function trackingRows(quick: boolean): BenchRow[] {
  const BATCH = 1000;
  const rounds = quick ? 300 : 3000;
  const msg = { n: 0, a: 1, b: 2, c: 3 };

  const spine = Spine.create(pipelineSpine);
  spine.addTimingQueue(0);
  const adapter = new SpineAdapter<typeof pipelineSpine>(spine, 0, 'bench', 'head');
  const source = new SpineAdapter<typeof pipelineSpine>(spine, 1, 'source', 'head');
  adapter.consume('hop1', () => {});
  const tracked = perMessage(
    rounds,
    BATCH,
    () => {
      for (let i = 0; i < BATCH; i++) source.produce('hop1', msg);
    },
    () => {
      adapter.consume('hop1', (m, producers) => {
        producers.produce('hop2', m);
      });
    },
  );

  const a = SeqlockQueue.create(Hop, { capacity: 1 << 14 });
  const b = SeqlockQueue.create(Hop, { capacity: 1 << 14 });
  const inA = a.producer();
  const consumer = a.consumer();
  const outB = b.producer();
  const out = Hop.create();
  const bare = perMessage(
    rounds,
    BATCH,
    () => {
      for (let i = 0; i < BATCH; i++) inA.publish(msg);
    },
    () => {
      while (consumer.poll(out)) outB.publish(out);
    },
  );
  const clock = new Clock(Clock.newBase());
  let sink = 0;
  const clockCost = perMessage(
    rounds,
    BATCH,
    () => {},
    () => {
      for (let i = 0; i < BATCH; i++) sink += clock.now();
    },
  );
  if (sink === 0) console.log('');
  const bareRow = row('hop on bare queues (poll + publish), one thread', bare, 'ns/msg');
  const overhead = tracked - bare;
  return [
    bareRow,
    row('hop through a SpineAdapter (consume + produce, tracked), one thread', tracked, 'ns/msg', {
      baseline: bareRow.name,
      ratio: tracked / bare,
    }),
    row('tracking cost per hop (tracked − bare)', overhead, 'ns/hop', {
      target: '≤ 60 ns',
      met: overhead <= 60,
      note: `three spine clock reads per hop (start, publish, end) cost ${(3 * clockCost).toFixed(0)} ns of it`,
    }),
    row('spine clock read (performance.now + offset)', clockCost, 'ns'),
  ];
}

/** The tracked pipeline; with `threads: 2`, source+relay2 share one thread and relay1+sink the other. */
async function tracked(count: number, intervalNs: number, threads: 2 | 4): Promise<LatencyReport> {
  const channel = `dorsal-bench-${process.pid}-${Math.random()}`;
  const bc = new BroadcastChannel(channel);
  const report = new Promise<LatencyReport>((resolve) => {
    bc.onmessage = (event) => resolve((event as unknown as { data: LatencyReport }).data);
  });
  const system = new System(pipelineSpine);
  const actors = new URL('./spine/tracked-actors.js', import.meta.url);
  const pairs: Record<string, string> = { source: 'left', relay2: 'left', relay1: 'right', sink: 'right' };
  for (const role of ['source', 'relay1', 'relay2', 'sink']) {
    const args = { role, count, intervalNs, channel };
    system.spawn(actors, threads === 2 ? { args, thread: pairs[role]! } : { args });
  }
  await system.start();
  // Run until the sink saw everything (the source paces itself), then stop gracefully.
  while (
    system.spine
      .queue(2)
      .stats()
      .consumers.every((c) => c.position < count)
  )
    await sleep(20);
  await system.stop();
  const result = await report;
  bc.close();
  return result;
}

async function chain(
  module: string,
  count: number,
  intervalNs: number,
  ports: boolean,
): Promise<LatencyReport> {
  const url = new URL(module, import.meta.url);
  const clockBase = Clock.newBase();
  const links = ports
    ? [0, 1, 2].map(() => new MessageChannel())
    : [0, 1, 2].map(() => SeqlockQueue.create(Hop, { capacity: 1 << 14 }).buffer);
  const input = (i: number) => (ports ? (links[i] as MessageChannel).port2 : links[i]);
  const output = (i: number) => (ports ? (links[i] as MessageChannel).port1 : links[i]);
  const specs = [
    { role: 'sink', input: input(2) },
    { role: 'relay', input: input(1), output: output(2) },
    { role: 'relay', input: input(0), output: output(1) },
    { role: 'source', output: output(0) },
  ];
  const workers: Worker[] = [];
  let sinkReport: Promise<LatencyReport> | undefined;
  for (const spec of specs) {
    const transfer = ports ? [spec.input, spec.output].filter((p) => p !== undefined) : [];
    const worker = new Worker(url, {
      workerData: { ...spec, count, intervalNs, clockBase },
      transferList: transfer as MessagePort[],
    });
    workers.push(worker);
    const messages = new Promise<{ type: string }>((resolve, reject) => {
      worker.on('message', (m: { type: string }) => m.type !== 'ready' && resolve(m));
      worker.once('error', reject);
    });
    if (spec.role === 'sink') sinkReport = messages as Promise<LatencyReport>;
    await new Promise<void>((resolve) => worker.once('message', () => resolve()));
  }
  const result = await sinkReport!;
  await Promise.all(workers.map((w) => w.terminate()));
  return result;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function latencyRows(name: string, r: LatencyReport, extra: Partial<BenchRow> = {}): BenchRow[] {
  return [
    row(`${name}: end-to-end p50`, r.p50 / 1e3, 'µs', extra),
    row(`${name}: end-to-end p99`, r.p99 / 1e3, 'µs'),
    row(`${name}: end-to-end p99.9`, r.p999 / 1e3, 'µs', { note: `${r.count} messages` }),
  ];
}

export const spineBench: BenchSection = {
  group: GROUP,
  async run({ quick }) {
    const rows = trackingRows(quick);
    const count = quick ? 2_000 : 20_000;
    const intervalNs = 50_000;
    const withTracking = await tracked(count, intervalNs, 4);
    const twoThreads = await tracked(count, intervalNs, 2);
    const bare = await chain('./spine/bare-worker.js', count, intervalNs, false);
    const ports = await chain('./spine/port-worker.js', quick ? 300 : 2_000, 1e6, true);
    const trackedName = '3-hop pipeline, tracked actors (adaptive wait)';
    const bareName = '3-hop pipeline, bare queues (adaptive wait)';
    const portName = '3-hop pipeline, MessagePort';
    rows.push(
      ...latencyRows(bareName, bare),
      ...latencyRows(trackedName, withTracking, {
        baseline: `${bareName}: end-to-end p50`,
        ratio: withTracking.p50 / bare.p50,
        note: `tracking adds ${((withTracking.p50 - bare.p50) / 3).toFixed(0)} ns per hop at p50 across threads`,
      }),
      ...latencyRows('3-hop pipeline, tracked actors on 2 threads (adaptive wait)', twoThreads),
      ...latencyRows(portName, ports),
      row('MessagePort p50 ÷ tracked p50', ports.p50 / withTracking.p50, '×', {
        target: '≥ 20×',
        met: ports.p50 / withTracking.p50 >= 20,
      }),
      row('tracked p99 ÷ tracked p50', withTracking.p99 / withTracking.p50, '×', {
        target: '≤ 3×',
        met: withTracking.p99 / withTracking.p50 <= 3,
      }),
    );
    return rows;
  },
};
