/**
 * The spine section: what tracking costs, and a 3-hop pipeline end to end.
 *
 * - tracking per hop, in one thread: handling a message and producing the next one through a
 *   SpineAdapter (envelope, parent, two clock reads, a timing record) against a bare
 *   poll + publish of the same message, both in a tight loop; the difference is the cost of
 *   tracking per hop.
 * - end-to-end latency of source → relay → relay → sink, p50/p99/p99.9 (HDR), with full tracking
 *   (a System of actors), on bare queues (no tracking, same adaptive wait) and over MessagePort,
 *   in the same run; on four threads (one role each: more threads than cores, every hop a
 *   wake-up) and on two (source+relay2 and relay1+sink: a thread per core, as a pipeline is
 *   deployed on this machine). The targets are judged on two threads.
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { Clock, CoreBudget, SeqlockQueue, Spine, SpineAdapter, System } from '../src/index.js';
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
  const clockCost = readCost(rounds, BATCH, () => clock.now());
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
      note: `two spine clock reads per hop (publish; the end of a handler, which is the start of the next) cost ${(2 * clockCost).toFixed(0)} ns of it`,
    }),
  ];
}

/** Where the clock results land: a typed array, so that storing them allocates nothing. */
const clockOut = new Float64Array(8);

/** ns per call of `read`, median of `rounds` batches of `batch`. */
function readCost(rounds: number, batch: number, read: () => number): number {
  return perMessage(
    rounds,
    batch,
    () => {},
    () => {
      for (let i = 0; i < batch; i++) clockOut[i & 7] = read();
    },
  );
}

/** Garbage collections (scavenges included) while `read` runs `count` times, after a warm-up. */
async function collectionsDuring(count: number, read: () => number): Promise<number> {
  for (let i = 0; i < 100_000; i++) clockOut[i & 7] = read();
  let collections = 0;
  const observer = new PerformanceObserver((list) => {
    collections += list.getEntries().length;
  });
  observer.observe({ entryTypes: ['gc'] });
  for (let i = 0; i < count; i++) clockOut[i & 7] = read();
  // GC entries are delivered asynchronously.
  await new Promise((r) => setTimeout(r, 50));
  observer.disconnect();
  return collections;
}

/** The spine clock against `performance.now()`: cost per read and garbage per read. */
async function clockRows(quick: boolean): Promise<BenchRow[]> {
  const rounds = quick ? 300 : 3000;
  const reads = quick ? 1_000_000 : 10_000_000;
  const clock = new Clock(Clock.newBase());
  const perf = () => performance.now() * 1e6;
  const spine = () => clock.now();
  const perfRow = row('performance.now() read', readCost(rounds, 1000, perf), 'ns');
  const name = `spine clock read (${clock.source}${clock.source === 'native' ? '' : `: ${Clock.nativeMissing}`})`;
  const spineCost = readCost(rounds, 1000, spine);
  const [perfCollections, spineCollections] = [
    await collectionsDuring(reads, perf),
    await collectionsDuring(reads, spine),
  ];
  const millions = `${reads / 1e6} M reads`;
  return [
    row(name, spineCost, 'ns', { baseline: perfRow.name, ratio: spineCost / perfRow.value }),
    perfRow,
    row(`garbage collections during ${millions} of the spine clock`, spineCollections, 'GCs', {
      note: 'any collection in the process while the reads run counts; the native source allocates nothing per read',
    }),
    row(`garbage collections during ${millions} of performance.now()`, perfCollections, 'GCs', {
      note: 'a boxed double per read',
    }),
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

/**
 * The pipeline on bare queues (one role per thread) or over MessagePorts, on 4 threads (one role
 * each) or 2 (source+relay2 and relay1+sink, as the 2-thread tracked pipeline pairs its actors).
 */
async function chain(
  kind: 'bare' | 'ports',
  count: number,
  intervalNs: number,
  threads: 2 | 4,
): Promise<LatencyReport> {
  const ports = kind === 'ports';
  const url = new URL(ports ? './spine/port-worker.js' : './spine/bare-worker.js', import.meta.url);
  const clockBase = Clock.newBase();
  const links = ports
    ? [0, 1, 2].map(() => new MessageChannel())
    : [0, 1, 2].map(() => SeqlockQueue.create(Hop, { capacity: 1 << 14 }).buffer);
  const input = (i: number) => (ports ? (links[i] as MessageChannel).port2 : links[i]);
  const output = (i: number) => (ports ? (links[i] as MessageChannel).port1 : links[i]);
  type Link = ReturnType<typeof input>;
  type RoleSpec = { role: string; input?: Link; output?: Link };
  const sink: RoleSpec = { role: 'sink', input: input(2) };
  const relay2: RoleSpec = { role: 'relay', input: input(1), output: output(2) };
  const relay1: RoleSpec = { role: 'relay', input: input(0), output: output(1) };
  const source: RoleSpec = { role: 'source', output: output(0) };
  // The source's thread starts last: a bare source publishes as soon as it runs.
  const groups: RoleSpec[][] =
    threads === 4
      ? [[sink], [relay2], [relay1], [source]]
      : [
          [relay1, sink],
          [source, relay2],
        ];
  if (!ports && threads !== 4) throw new Error('the bare pipeline runs one role per thread');
  const budget = CoreBudget.create({ members: groups.length });
  const workers: Worker[] = [];
  let sinkReport: Promise<LatencyReport> | undefined;
  for (const [member, group] of groups.entries()) {
    const transfer = ports ? group.flatMap((r) => [r.input, r.output]).filter((p) => p !== undefined) : [];
    const worker = new Worker(url, {
      workerData: {
        ...(ports ? { roles: group } : group[0]),
        ...{ count, intervalNs, clockBase, budget: budget.buffer, member },
      },
      transferList: transfer as MessagePort[],
    });
    workers.push(worker);
    const report = new Promise<LatencyReport>((resolve, reject) => {
      worker.on('message', (m: { type: string }) => m.type === 'latency' && resolve(m as LatencyReport));
      worker.once('error', reject);
    });
    if (group.includes(sink)) sinkReport = report;
    await new Promise<void>((resolve) => worker.once('message', () => resolve()));
  }
  // Every worker is ready: a MessagePort source starts when told.
  if (ports) for (const worker of workers) worker.postMessage('go');
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
    const rows = [...trackingRows(quick), ...(await clockRows(quick))];
    const count = quick ? 2_000 : 20_000;
    const intervalNs = 50_000;
    const portCount = quick ? 300 : 2_000;
    const tracked4 = await tracked(count, intervalNs, 4);
    const tracked2 = await tracked(count, intervalNs, 2);
    const bare4 = await chain('bare', count, intervalNs, 4);
    // setTimeout paces the MessagePort source: 1 ms is its finest step.
    const ports4 = await chain('ports', portCount, 1e6, 4);
    const ports2 = await chain('ports', portCount, 1e6, 2);
    const on4 = '3-hop pipeline on 4 threads';
    const on2 = '3-hop pipeline on 2 threads';
    const bare4Name = `${on4}, bare queues (adaptive wait)`;
    rows.push(
      ...latencyRows(bare4Name, bare4),
      ...latencyRows(`${on4}, tracked actors (adaptive wait)`, tracked4, {
        baseline: `${bare4Name}: end-to-end p50`,
        ratio: tracked4.p50 / bare4.p50,
        note: `tracking adds ${((tracked4.p50 - bare4.p50) / 3).toFixed(0)} ns per hop at p50 across threads`,
      }),
      ...latencyRows(`${on4}, MessagePort`, ports4),
      row(`${on4}: MessagePort p50 ÷ tracked p50`, ports4.p50 / tracked4.p50, '×', {
        note: 'more threads than cores: every hop is a futex wake-up',
      }),
      ...latencyRows(`${on2}, tracked actors (adaptive wait)`, tracked2),
      ...latencyRows(`${on2}, MessagePort`, ports2),
      row(`${on2}: MessagePort p50 ÷ tracked p50`, ports2.p50 / tracked2.p50, '×', {
        target: '≥ 20×',
        met: ports2.p50 / tracked2.p50 >= 20,
        note: 'one thread per core, as a pipeline is deployed on 2 cores: the adaptive wait spins between messages',
      }),
      row(`${on2}: tracked p99 ÷ tracked p50`, tracked2.p99 / tracked2.p50, '×', {
        target: '≤ 3×',
        met: tracked2.p99 / tracked2.p50 <= 3,
      }),
    );
    return rows;
  },
};
