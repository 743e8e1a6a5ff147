/**
 * The machine's floor for the 3-hop pipeline on two threads: the same hops (source → relay1 →
 * relay2 → sink, 32-byte messages) on the same pairing of roles to threads as the tracked
 * 2-thread pipeline (left: source + relay2, right: relay1 + sink), hand-written on raw Atomics
 * with no dorsal queue, spine or actor code and no tracking. Each hop is a ring of slots and a
 * head word: the writer copies the message plainly, then publishes it with an SC store of the
 * head; the reader's SC load of the head synchronizes-with that store, so the copy it then reads
 * is whole. Both threads spin between messages, as the tracked actors' adaptive wait does when
 * each has a core. Whatever else runs on the machine takes its share from both alike: the ratio
 * of the tracked pipeline to this floor is what dorsal adds.
 *
 * Timestamps come from the spine clock (native, comparable across threads), as in the tracked
 * pipeline's sink; it is measurement, not pipeline code.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Clock } from '../../src/spine/clock.js';
import { FLOOR_SLOT_F64, FLOOR_SLOTS, FLOOR_SLOTS_F64, LatencyRecorder } from './spine.js';

const { side, links, count, warmup, intervalNs, clockBase } = workerData as {
  side: 'left' | 'right';
  /** One buffer per hop (see `floorLink`). */
  links: readonly SharedArrayBuffer[];
  count: number;
  warmup: number;
  intervalNs: number;
  clockBase: number;
};

const SLOT_F64 = FLOOR_SLOT_F64;
const SLOTS_F64 = FLOOR_SLOTS_F64;
/** The head word of a hop: alone on the first cache line; slots follow. */
const HEAD = 0;

{
  const clock = new Clock(clockBase);
  const views = links.map((b) => ({ i32: new Int32Array(b), f64: new Float64Array(b) }));
  const [hop1, hop2, hop3] = views as [(typeof views)[0], (typeof views)[0], (typeof views)[0]];
  const mask = FLOOR_SLOTS - 1;
  /** Copies message `k` of `from` (a, b, c after n) into slot `k` of `to`, then publishes it. */
  const relay = (from: typeof hop1, to: typeof hop1, k: number) => {
    const src = SLOTS_F64 + (k & mask) * SLOT_F64;
    to.f64[src] = from.f64[src]!;
    to.f64[src + 1] = from.f64[src + 1]!;
    to.f64[src + 2] = from.f64[src + 2]!;
    to.f64[src + 3] = from.f64[src + 3]!;
    // SC store of the head: the copy above happens-before the reader's SC load that reads it.
    Atomics.store(to.i32, HEAD, k + 1);
  };
  parentPort!.postMessage({ type: 'ready' });
  if (side === 'left') {
    // Source and relay2.
    let sent = 0;
    let relayed = 0;
    let next = clock.now();
    while (relayed < count) {
      if (sent < count) {
        const now = clock.now();
        if (now >= next) {
          const at = SLOTS_F64 + (sent & mask) * SLOT_F64;
          hop1.f64[at] = sent;
          hop1.f64[at + 1] = clock.now();
          hop1.f64[at + 2] = 2;
          hop1.f64[at + 3] = 3;
          // SC store of the head: the message above happens-before the reader's SC load.
          Atomics.store(hop1.i32, HEAD, ++sent);
          next = now + intervalNs;
        }
      }
      // SC load of hop2's head: what relay1 published is whole to read.
      while (relayed < Atomics.load(hop2.i32, HEAD)) relay(hop2, hop3, relayed++);
    }
    parentPort!.postMessage({ type: 'done' });
  } else {
    // Relay1 and sink.
    const latencies = new LatencyRecorder(warmup);
    let relayed = 0;
    let received = 0;
    while (received < count) {
      // SC loads of the heads, as above.
      while (relayed < Atomics.load(hop1.i32, HEAD)) relay(hop1, hop2, relayed++);
      while (received < Atomics.load(hop3.i32, HEAD)) {
        const at = SLOTS_F64 + (received & mask) * SLOT_F64;
        latencies.record(received, clock.now() - hop3.f64[at + 1]!);
        received++;
      }
    }
    parentPort!.postMessage(latencies.report());
  }
}
