/**
 * Cross-thread throughput of 64-byte messages, one producer worker and one consumer worker.
 *
 * - dorsal flat out: the producer publishes N messages as fast as it can; the consumer (busy-spin)
 *   counts what it received and what it lost to being lapped → published M msg/s, received
 *   M msg/s, loss %.
 * - dorsal paced at 10 M msg/s: bursts of 64 against the clock → loss at that rate (target: none),
 *   with a ring of 2^20 slots (105 ms deep) and of 65,536 (6.5 ms).
 * - Peers in the same run: ringbuf.js SPSC (lossless, the producer waits when full), MessagePort
 *   and BroadcastChannel posting the same message object.
 *
 * Each figure is the median of `runs` runs (the run whose headline figure is the median, so its
 * other figures belong to the same run); losses are summed over all runs.
 */
import { MessageChannel } from 'node:worker_threads';
import { RingBuffer } from 'ringbuf.js';
import { SeqlockQueue } from '../../src/index.js';
import type { BenchRow } from '../types.js';
import { Bench64, MESSAGE_F64 } from './message.js';
import type { ThroughputJob, WorkerResult } from './protocol.js';
import { against, medianBy, row, target } from './rows.js';
import { runSides } from './workers.js';

const WORKER = new URL('./throughput-worker.js', import.meta.url);
const CAPACITY = 65_536;
/**
 * The paced run's ring: 2^20 slots, 105 ms at 10 M msg/s (128 MB). A consumer that keeps up on
 * average loses messages only when the OS stops it for longer than the ring lasts; on this
 * shared 2-core VM, with two spinning threads, stops of 5–100 ms happen a few times a minute
 * (measured: each of two spinning threads sees a gap over 1 ms 3–7 times a second), which a ring
 * of 65,536 (6.5 ms) does not ride out. The same run with 65,536 slots is reported beside it.
 * Rings are pre-touched (`preTouch`), so the first lap pays no page faults.
 */
const PACED_CAPACITY = 1 << 20;
const PACED_RATE = 10_000_000;
const BURST = 64;
const TIMEOUT_MS = 120_000;

interface Plan {
  readonly runs: number;
  readonly dorsal: number;
  readonly ringbuf: number;
  readonly posted: number;
}

interface Stream {
  /** Producer's own rate, msg/s. */
  readonly published: number;
  /** Consumer's received messages over producer start → consumer end, msg/s. */
  readonly received: number;
  readonly producer: WorkerResult;
  readonly consumer: WorkerResult;
}

function stream(producer: WorkerResult, consumer: WorkerResult): Stream {
  if (consumer.disorder !== 0) throw new Error(`consumer saw ${consumer.disorder} messages out of order`);
  return {
    published: producer.count / ((producer.endNs - producer.startNs) / 1e9),
    received: consumer.count / ((consumer.endNs - producer.startNs) / 1e9),
    producer,
    consumer,
  };
}

async function dorsal(count: number, rate: number, capacity = CAPACITY): Promise<Stream> {
  const queue = SeqlockQueue.create(Bench64, { capacity, preTouch: true });
  const { buffer } = queue;
  const [consumer, producer] = await runSides<ThroughputJob>(
    WORKER,
    [
      { job: { kind: 'dorsal-consume', buffer } },
      { job: { kind: 'dorsal-produce', buffer, count, rate, burst: BURST } },
    ],
    TIMEOUT_MS,
  );
  const s = stream(producer!, consumer!);
  if (s.consumer.count + s.consumer.lost !== count) {
    throw new Error(`received ${s.consumer.count} + lost ${s.consumer.lost} ≠ published ${count}`);
  }
  return s;
}

async function ringbuf(count: number): Promise<Stream> {
  const buffer = RingBuffer.getStorageForCapacity(CAPACITY * MESSAGE_F64, Float64Array);
  const [consumer, producer] = await runSides<ThroughputJob>(
    WORKER,
    [
      { job: { kind: 'ringbuf-consume', buffer, count } },
      { job: { kind: 'ringbuf-produce', buffer, count } },
    ],
    TIMEOUT_MS,
  );
  return stream(producer!, consumer!);
}

async function messagePort(count: number): Promise<Stream> {
  const { port1, port2 } = new MessageChannel();
  const [consumer, producer] = await runSides<ThroughputJob>(
    WORKER,
    [
      { job: { kind: 'port-consume', port: port2, count }, transfer: [port2] },
      { job: { kind: 'port-produce', port: port1, count }, transfer: [port1] },
    ],
    TIMEOUT_MS,
  );
  return stream(producer!, consumer!);
}

async function broadcast(count: number): Promise<Stream> {
  const channel = `dorsal-bench-${process.pid}-${Date.now()}`;
  const [consumer, producer] = await runSides<ThroughputJob>(
    WORKER,
    [
      { job: { kind: 'broadcast-consume', channel, count } },
      { job: { kind: 'broadcast-produce', channel, count } },
    ],
    TIMEOUT_MS,
  );
  return stream(producer!, consumer!);
}

async function repeat(runs: number, measure: () => Promise<Stream>): Promise<Stream[]> {
  const out: Stream[] = [];
  for (let i = 0; i < runs; i++) out.push(await measure());
  return out;
}

const M = (perSecond: number) => perSecond / 1e6;
const lostOf = (runs: readonly Stream[]) => runs.reduce((sum, s) => sum + s.consumer.lost, 0);
const sentOf = (runs: readonly Stream[]) => runs.reduce((sum, s) => sum + s.producer.count, 0);

export async function throughputRows(quick: boolean): Promise<BenchRow[]> {
  const plan: Plan = quick
    ? { runs: 1, dorsal: 3_000_000, ringbuf: 2_000_000, posted: 100_000 }
    : { runs: 3, dorsal: 20_000_000, ringbuf: 10_000_000, posted: 300_000 };
  const runsNote = `median of ${plan.runs} run${plan.runs > 1 ? 's' : ''}`;

  const ring = medianBy(await repeat(plan.runs, () => ringbuf(plan.ringbuf)), (s) => s.received);
  const ringRow = row(
    'ringbuf.js SPSC throughput (64 B, lossless)',
    M(ring.received),
    'M msg/s',
    `${runsNote} of ${plan.ringbuf.toLocaleString('en-US')} messages`,
  );

  const flat = await repeat(plan.runs, () => dorsal(plan.dorsal, 0));
  const f = medianBy(flat, (s) => s.published);
  const flatNote = `${runsNote} of ${plan.dorsal.toLocaleString('en-US')} messages, ring of ${CAPACITY}`;
  const published = target(
    against(
      row(
        'dorsal publish rate, 1 consumer, flat out (lossy: a lapped consumer skips)',
        M(f.published),
        'M msg/s',
        flatNote,
      ),
      ringRow,
    ),
    '≥ 15 M msg/s',
    f.published >= 15e6,
  );
  const received = against(
    row('dorsal receive rate, flat out (busy-spin consumer)', M(f.received), 'M msg/s', flatNote),
    ringRow,
  );
  const flatLoss = row(
    'dorsal loss, flat out',
    (100 * lostOf(flat)) / sentOf(flat),
    '%',
    `${lostOf(flat).toLocaleString('en-US')} of ${sentOf(flat).toLocaleString('en-US')} lost over ${plan.runs} run(s); received + lost = published in every run`,
  );

  const paced = await repeat(plan.runs, () => dorsal(plan.dorsal, PACED_RATE, PACED_CAPACITY));
  const p = medianBy(paced, (s) => s.published);
  const achieved = target(
    row(
      'dorsal paced publish rate (asked 10 M msg/s)',
      M(p.published),
      'M msg/s',
      `${runsNote}, bursts of ${BURST}, ring of ${PACED_CAPACITY}`,
    ),
    '≥ 10 M msg/s',
    p.published >= 0.995 * PACED_RATE,
  );
  const lossRow = (name: string, runs: readonly Stream[], capacity: number): BenchRow => {
    const lost = lostOf(runs);
    const sent = sentOf(runs).toLocaleString('en-US');
    const note = `${lost.toLocaleString('en-US')} of ${sent} lost over ${plan.runs} run(s), ring of ${capacity}`;
    return row(name, (100 * lost) / sentOf(runs), '%', note);
  };
  const pacedLoss = target(
    lossRow('dorsal loss at 10 M msg/s (ring of 2^20)', paced, PACED_CAPACITY),
    '0 % (lossless)',
    lostOf(paced) === 0,
  );
  const shallow = await repeat(plan.runs, () => dorsal(plan.dorsal, PACED_RATE));
  const shallowLoss = lossRow('dorsal loss at 10 M msg/s (ring of 65,536)', shallow, CAPACITY);

  const port = medianBy(await repeat(plan.runs, () => messagePort(plan.posted)), (s) => s.received);
  const bc = medianBy(await repeat(plan.runs, () => broadcast(plan.posted)), (s) => s.received);
  const postedNote = `${runsNote} of ${plan.posted.toLocaleString('en-US')} posts of the message object`;
  return [
    published,
    received,
    flatLoss,
    achieved,
    pacedLoss,
    shallowLoss,
    ringRow,
    against(row('MessagePort throughput', M(port.received), 'M msg/s', postedNote), received),
    against(row('BroadcastChannel throughput', M(bc.received), 'M msg/s', postedNote), received),
  ];
}
