/**
 * The floor's pipeline (spine/floor-worker.ts: the same roles on the same two threads, the same
 * spinning loops) with dorsal's queues for hops: `SeqlockQueue` producers and consumers polled in
 * tight loops, no spine, no actors, no wait strategy. Against the raw floor it is what the
 * queues cost; against the tracked actors, what the spine and the actors add.
 *
 * `tracked`: tracking written out by hand on those queues, as a SpineAdapter does it: each hop's
 * queue carries the `Tracking` envelope (origin, publish time, parent), a relay reads the clock
 * after the poll that found its message (its start), when it publishes and when it is done (its
 * end), and writes a `TimingRecord` into its actor's timing queue (claimed in place, no wake-up).
 * The envelope makes the bench's 32-byte message a 72-byte slot: two cache lines instead of one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  type ClaimingProducer,
  type Consumer,
  type MessageOfLayout,
  type QueueProducer,
  SeqlockQueue,
} from '../../src/queues/index.js';
import { Clock } from '../../src/spine/clock.js';
import { TimingRecord, Tracking } from '../../src/spine/tracking.js';
import { type FloorWorkerData, Hop, LatencyRecorder } from './spine.js';

const { side, links, timings, tracked, count, warmup, intervalNs, clockBase } = workerData as FloorWorkerData;

type HopMessage = MessageOfLayout<typeof Hop>;
type HopQueue = SeqlockQueue<HopMessage, Tracking | null>;
const RECORD = {
  seq: TimingRecord.offsetOf('seq'),
  origin: TimingRecord.offsetOf('origin_t'),
  publish: TimingRecord.offsetOf('publish_t'),
  start: TimingRecord.offsetOf('start_t'),
  end: TimingRecord.offsetOf('end_t'),
  stream: TimingRecord.offsetOf('stream'),
};

{
  const clock = new Clock(clockBase);
  const queues = links.map((b) =>
    tracked ? SeqlockQueue.attach(Hop, b, { envelope: Tracking }) : SeqlockQueue.attach(Hop, b),
  ) as HopQueue[];
  const msg = Hop.create();

  /** Every message waiting on `from`, published on `to`; how many. */
  const relayPlain = (
    from: Consumer<HopMessage, Tracking | null>,
    to: QueueProducer<HopMessage, Tracking | null>,
  ): number => {
    let n = 0;
    while (from.poll(msg)) {
      to.publish(msg);
      n++;
    }
    return n;
  };
  /** relayPlain, tracked by hand (see the file's comment). */
  const relayTracked = (
    from: Consumer<HopMessage, Tracking | null>,
    to: QueueProducer<HopMessage, Tracking | null>,
    timing: ClaimingProducer<TimingRecord, null>,
    stream: number,
  ): number => {
    let n = 0;
    while (from.poll(msg)) {
      const parent = from.envelope!;
      const published = parent.publish_t;
      const now = clock.now();
      // Comparisons, not Math.max, as the adapter writes them (see SpineAdapter.handle).
      // biome-ignore lint/complexity/useMathMinMax: as the adapter
      const start = now > published ? now : published;
      const child = to.envelope!;
      child.origin_t = parent.origin_t;
      child.parent_stream = stream;
      child.parent_seq = from.sequence - 1;
      const publish = clock.now();
      // biome-ignore lint/complexity/useMathMinMax: as the adapter
      child.publish_t = publish > start ? publish : start;
      to.publish(msg);
      const end = clock.now();
      const { f64, u16 } = timing.views;
      const at = timing.claim();
      f64[(at + RECORD.seq) >> 3] = from.sequence - 1;
      f64[(at + RECORD.origin) >> 3] = parent.origin_t;
      f64[(at + RECORD.publish) >> 3] = published;
      f64[(at + RECORD.start) >> 3] = start;
      // biome-ignore lint/complexity/useMathMinMax: as the adapter
      f64[(at + RECORD.end) >> 3] = end > start ? end : start;
      u16[(at + RECORD.stream) >> 1] = stream;
      timing.commit();
      n++;
    }
    return n;
  };
  /** Tracked: this side's relay's timing queue (relay1's on the right, relay2's on the left). */
  const timing = tracked
    ? SeqlockQueue.attach(TimingRecord, timings[side === 'right' ? 0 : 1]!).claimingProducer({ wakes: false })
    : undefined;

  parentPort!.postMessage({ type: 'ready' });
  if (side === 'left') {
    // Source and relay2.
    const hop1 = queues[0]!.producer();
    const hop2 = queues[1]!.consumer();
    const hop3 = queues[2]!.producer();
    const out = Hop.create();
    let sent = 0;
    let relayed = 0;
    let next = clock.now();
    while (relayed < count) {
      if (sent < count) {
        const now = clock.now();
        if (now >= next) {
          out.n = sent++;
          const origin = clock.now();
          out.a = origin;
          if (tracked) {
            // An ingress message: its origin is its publish time, and it has no parent.
            const envelope = hop1.envelope!;
            envelope.origin_t = origin;
            envelope.publish_t = origin;
            envelope.parent_stream = 0xffff;
          }
          hop1.publish(out);
          next = now + intervalNs;
        }
      }
      relayed += tracked ? relayTracked(hop2, hop3, timing!, 1) : relayPlain(hop2, hop3);
    }
    parentPort!.postMessage({ type: 'done' });
  } else {
    // Relay1 and sink.
    const hop1 = queues[0]!.consumer();
    const hop2 = queues[1]!.producer();
    const hop3 = queues[2]!.consumer();
    const latencies = new LatencyRecorder(warmup);
    let received = 0;
    while (received < count) {
      if (tracked) relayTracked(hop1, hop2, timing!, 0);
      else relayPlain(hop1, hop2);
      while (hop3.poll(msg)) latencies.record(received++, clock.now() - msg.a);
    }
    parentPort!.postMessage(latencies.report());
  }
}
