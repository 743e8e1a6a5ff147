/**
 * One-way latency of a 64-byte message between two threads, p50/p99/p99.9 from an HDR
 * histogram (hdr-histogram-js), and ping-pong round trips of the peers.
 *
 * The sender stamps the shared clock (the spine's Clock) into the message and sends one every SPACING
 * (so the queue is empty at each send: latency, not queueing); the receiver busy-spins and keeps
 * receive − send. The first WARMUP_SHARE of each run is dropped (JIT warm-up). Baselines in the
 * same run, interleaved round by round with dorsal so drift on the VM hits all alike:
 * - raw Atomics one-way: an Int32 flag, `Atomics.store` / `Atomics.load` spin, moving the same
 *   64-byte message field by field (the target's baseline: same bytes, same two cache lines) and
 *   a lone 8-byte stamp (one cache line: the floor of any cross-thread hand-over);
 * - MessagePort one-way: the same message object posted, received in the event loop.
 * Peers: raw Atomics spin ping-pong and MessagePort ping-pong round trips.
 */
import { MessageChannel } from 'node:worker_threads';
import { build, type Histogram } from 'hdr-histogram-js';
import { SeqlockQueue } from '../../src/index.js';
import type { BenchRow } from '../types.js';
import { Bench64 } from './message.js';
import { type LatencyJob, type RawPayload, RawSlot } from './protocol.js';
import { against, row, target } from './rows.js';
import { runSides } from './workers.js';

const WORKER = new URL('./latency-worker.js', import.meta.url);
const SPACING_NS = 20_000;
const PORT_SPACING_NS = 50_000;
const WARMUP_SHARE = 0.1;
const TIMEOUT_MS = 120_000;

interface Plan {
  readonly rounds: number;
  readonly oneWay: number;
  readonly port: number;
  readonly pingPong: number;
}

/** Samples of all rounds of one variant, dropping each run's warm-up and counting clock errors. */
class Recorded {
  readonly histogram: Histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 1e10,
    numberOfSignificantValueDigits: 3,
  });
  negative = 0;
  /** Messages the receiver lost to laps (dorsal only). */
  lost = 0;

  add(samples: Float64Array | undefined): void {
    if (samples === undefined) throw new Error('a latency worker returned no samples');
    for (let i = Math.floor(samples.length * WARMUP_SHARE); i < samples.length; i++) {
      const v = samples[i]!;
      if (v < 0) this.negative++;
      this.histogram.recordValue(Math.max(1, Math.round(v)));
    }
  }

  at(percentile: number): number {
    return this.histogram.getValueAtPercentile(percentile);
  }
}

async function dorsalOneWay(count: number, target: 'layout' | 'class', into: Recorded): Promise<void> {
  const queue = SeqlockQueue.create(Bench64, { capacity: 1024 });
  const { buffer } = queue;
  const [receiver] = await runSides<LatencyJob>(
    WORKER,
    [
      { job: { kind: 'dorsal-receive', buffer, count, into: target } },
      { job: { kind: 'dorsal-send', buffer, count, spacingNs: SPACING_NS } },
    ],
    TIMEOUT_MS,
  );
  // A receiver descheduled for longer than the ring lasts (1024 × 20 µs) is lapped: its loss is
  // counted and reported with the row, and the latency is that of what it received.
  into.lost += receiver!.lost;
  into.add(receiver!.samples?.subarray(0, receiver!.count));
}

async function atomicsOneWay(count: number, payload: RawPayload, into: Recorded): Promise<void> {
  const buffer = new SharedArrayBuffer(RawSlot.BYTES);
  const [receiver] = await runSides<LatencyJob>(
    WORKER,
    [
      { job: { kind: 'atomics-receive', buffer, count, payload } },
      { job: { kind: 'atomics-send', buffer, count, spacingNs: SPACING_NS, payload } },
    ],
    TIMEOUT_MS,
  );
  into.add(receiver!.samples);
}

async function portOneWay(count: number, into: Recorded): Promise<void> {
  const { port1, port2 } = new MessageChannel();
  const [receiver] = await runSides<LatencyJob>(
    WORKER,
    [
      { job: { kind: 'port-receive', port: port2, count }, transfer: [port2] },
      { job: { kind: 'port-send', port: port1, count, spacingNs: PORT_SPACING_NS }, transfer: [port1] },
    ],
    TIMEOUT_MS,
  );
  into.add(receiver!.samples);
}

async function atomicsPingPong(count: number, into: Recorded): Promise<void> {
  const buffer = new SharedArrayBuffer(RawSlot.BYTES);
  const [, ping] = await runSides<LatencyJob>(
    WORKER,
    [{ job: { kind: 'atomics-pong', buffer, count } }, { job: { kind: 'atomics-ping', buffer, count } }],
    TIMEOUT_MS,
  );
  into.add(ping!.samples);
}

async function portPingPong(count: number, into: Recorded): Promise<void> {
  const { port1, port2 } = new MessageChannel();
  const [, ping] = await runSides<LatencyJob>(
    WORKER,
    [
      { job: { kind: 'port-pong', port: port2, count }, transfer: [port2] },
      { job: { kind: 'port-ping', port: port1, count }, transfer: [port1] },
    ],
    TIMEOUT_MS,
  );
  into.add(ping!.samples);
}

const PERCENTILES = [
  ['p50', 50],
  ['p99', 99],
  ['p99.9', 99.9],
] as const;

function percentileRows(label: string, r: Recorded, note: string): BenchRow[] {
  const extra =
    (r.negative > 0 ? `; ${r.negative} samples < 0 (clock skew) recorded as 1 ns` : '') +
    (r.lost > 0 ? `; ${r.lost} messages lost to laps (receiver descheduled)` : '');
  return PERCENTILES.map(([name, p]) => row(`${label} ${name}`, r.at(p), 'ns', `${note}${extra}`));
}

export async function latencyRows(quick: boolean): Promise<BenchRow[]> {
  const plan: Plan = quick
    ? { rounds: 1, oneWay: 10_000, port: 3_000, pingPong: 20_000 }
    : { rounds: 3, oneWay: 60_000, port: 10_000, pingPong: 100_000 };
  const dorsal = new Recorded();
  const dorsalClass = new Recorded();
  const raw = new Recorded();
  const raw64 = new Recorded();
  const port = new Recorded();
  const rawPing = new Recorded();
  const portPing = new Recorded();
  for (let round = 0; round < plan.rounds; round++) {
    await atomicsOneWay(plan.oneWay, 'stamp', raw);
    await atomicsOneWay(plan.oneWay, 'message', raw64);
    await dorsalOneWay(plan.oneWay, 'layout', dorsal);
    await dorsalOneWay(plan.oneWay, 'class', dorsalClass);
    await portOneWay(plan.port, port);
    await atomicsPingPong(plan.pingPong, rawPing);
    await portPingPong(plan.pingPong / 10, portPing);
  }
  const rounds = `${plan.rounds} round${plan.rounds > 1 ? 's' : ''}`;
  const oneWayNote = `${rounds} × ${plan.oneWay.toLocaleString('en-US')} sends, one per ${SPACING_NS / 1000} µs, busy-spin receiver`;
  const [d50, d99, d999] = percentileRows('dorsal one-way', dorsal, `${oneWayNote}; 64-byte message`);
  const [c50] = percentileRows(
    'dorsal one-way, polled into a class instance,',
    dorsalClass,
    `${oneWayNote}; out = a class instance instead of Bench64.create()`,
  );
  const [r50, r99, r999] = percentileRows(
    'raw Atomics one-way',
    raw,
    `${oneWayNote}; 8-byte stamp + Int32 flag`,
  );
  const [p50, p99, p999] = percentileRows(
    'MessagePort one-way',
    port,
    `${rounds} × ${plan.port.toLocaleString('en-US')} posts, one per ${PORT_SPACING_NS / 1000} µs`,
  );
  const [m50, m99, m999] = percentileRows(
    'raw Atomics one-way, 64-byte message,',
    raw64,
    `${oneWayNote}; the same 64 bytes, field by field, + Int32 flag (72 bytes, two cache lines, as a dorsal slot)`,
  );
  const ratio50 = d50!.value / m50!.value;
  const speedup = p50!.value / d50!.value;
  const [rp50] = percentileRows(
    'raw Atomics spin ping-pong round trip',
    rawPing,
    `${rounds} × ${plan.pingPong.toLocaleString('en-US')} round trips`,
  );
  const [mp50] = percentileRows(
    'MessagePort ping-pong round trip',
    portPing,
    `${rounds} × ${(plan.pingPong / 10).toLocaleString('en-US')} round trips`,
  );
  for (const r of [dorsal, dorsalClass, raw, raw64, port, rawPing, portPing]) r.histogram.destroy();
  return [
    target(against(d50!, m50!), '≤ 1.15× raw Atomics (same 64 bytes)', ratio50 <= 1.15),
    against(d99!, m99!),
    against(d999!, m999!),
    against(c50!, m50!),
    { ...against(d50!, r50!), name: 'dorsal one-way p50 against the 8-byte stamp' },
    m50!,
    m99!,
    m999!,
    r50!,
    r99!,
    r999!,
    target(against(p50!, d50!), '≥ 20× dorsal', speedup >= 20),
    against(p99!, d99!),
    against(p999!, d999!),
    rp50!,
    against(mp50!, rp50!),
  ];
}
