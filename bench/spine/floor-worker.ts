/**
 * The machine's floor for the 3-hop pipeline on two threads: the same hops (source → relay1 →
 * relay2 → sink, 32-byte messages) on the same pairing of roles to threads as the tracked
 * 2-thread pipeline (left: source + relay2, right: relay1 + sink), hand-written on raw Atomics
 * with no dorsal queue, spine or actor code. Each hop is a ring of slots and a head word: the
 * writer copies the message plainly, then publishes it with an SC store of the head; the
 * reader's SC load of the head synchronizes-with that store, so the copy it then reads is whole.
 * Both threads spin between messages for ever (the tracked actors' adaptive wait spins 200 µs
 * while each thread has a core, then parks; between two messages 50 µs apart it spins). Whatever
 * else runs on the machine takes its share from both alike: the ratio of the tracked pipeline to
 * this floor is what dorsal adds.
 *
 * `tracked`: the same floor with dorsal's tracking written out by hand on it, and nothing else
 * of dorsal: each message carries its envelope (origin time, publish time, parent), a relay
 * reads the clock when it publishes and when its handler ends (as a SpineAdapter does: the end
 * of one handler is the start of the next), and every handler writes a timing record (stream,
 * seq, origin, publish, start, end) into its actor's own ring, published like a hop's. The
 * tracked pipeline against this one is what dorsal's queues, spine and actors add beyond the
 * work that tracking is.
 *
 * Timestamps come from the spine clock (native, comparable across threads), as in the tracked
 * pipeline's sink.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Clock } from '../../src/spine/clock.js';
import {
  FLOOR_SLOT_F64,
  FLOOR_SLOTS,
  FLOOR_SLOTS_F64,
  type FloorWorkerData,
  LatencyRecorder,
} from './spine.js';

const { side, links, timings, tracked, count, warmup, intervalNs, clockBase } = workerData as FloorWorkerData;

const SLOT_F64 = FLOOR_SLOT_F64;
const SLOTS_F64 = FLOOR_SLOTS_F64;
/** The head word of a hop: alone on the first cache line; slots follow. */
const HEAD = 0;
/** Where a tracked message's envelope sits in its slot, after the message's 4 words. */
const ORIGIN = 4;
const PUBLISH = 5;
const PARENT = 6;

interface Ring {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
}

{
  const clock = new Clock(clockBase);
  const ring = (b: SharedArrayBuffer): Ring => ({ i32: new Int32Array(b), f64: new Float64Array(b) });
  const [hop1, hop2, hop3] = links.map(ring) as [Ring, Ring, Ring];
  const mask = FLOOR_SLOTS - 1;
  /** Copies message `k` of `from` (a, b, c after n) into slot `k` of `to`, then publishes it. */
  const relayPlain = (from: Ring, to: Ring, k: number) => {
    const src = SLOTS_F64 + (k & mask) * SLOT_F64;
    to.f64[src] = from.f64[src]!;
    to.f64[src + 1] = from.f64[src + 1]!;
    to.f64[src + 2] = from.f64[src + 2]!;
    to.f64[src + 3] = from.f64[src + 3]!;
    // SC store of the head: the copy above happens-before the reader's SC load that reads it.
    Atomics.store(to.i32, HEAD, k + 1);
  };

  // Tracked: per actor of this thread, its timing ring, how many records it wrote, and when its
  // last handler ended (a handler starts at that end, or at its message's publish time if later).
  const [relay1Timing, relay2Timing, sinkTiming] = (tracked ? timings : []).map(ring) as [Ring, Ring, Ring];
  const timed = { relay1: 0, relay2: 0, sink: 0 };
  const ended = { relay1: 0, relay2: 0, sink: 0 };
  /** Writes one timing record into `timing` as its `n`-th, then publishes it. */
  const record = (
    timing: Ring,
    n: number,
    stream: number,
    seq: number,
    from: Ring,
    at: number,
    start: number,
    end: number,
  ) => {
    const t = SLOTS_F64 + (n & mask) * SLOT_F64;
    timing.f64[t] = stream;
    timing.f64[t + 1] = seq;
    timing.f64[t + 2] = from.f64[at + ORIGIN]!;
    timing.f64[t + 3] = from.f64[at + PUBLISH]!;
    timing.f64[t + 4] = start;
    timing.f64[t + 5] = end;
    // SC store of the ring's head: the record above happens-before a reader's SC load of it.
    Atomics.store(timing.i32, HEAD, n + 1);
  };
  /** relayPlain, tracked: the envelope travels, the publish and the handler's end are read off the clock. */
  const relayTracked = (from: Ring, to: Ring, k: number) => {
    const src = SLOTS_F64 + (k & mask) * SLOT_F64;
    const first = from === hop1;
    const start = Math.max(first ? ended.relay1 : ended.relay2, from.f64[src + PUBLISH]!);
    to.f64[src] = from.f64[src]!;
    to.f64[src + 1] = from.f64[src + 1]!;
    to.f64[src + 2] = from.f64[src + 2]!;
    to.f64[src + 3] = from.f64[src + 3]!;
    to.f64[src + ORIGIN] = from.f64[src + ORIGIN]!;
    to.f64[src + PUBLISH] = clock.now();
    to.f64[src + PARENT] = k;
    // SC store of the head: the copy above happens-before the reader's SC load that reads it.
    Atomics.store(to.i32, HEAD, k + 1);
    const end = clock.now();
    if (first) {
      ended.relay1 = end;
      record(relay1Timing, timed.relay1++, 1, k, from, src, start, end);
    } else {
      ended.relay2 = end;
      record(relay2Timing, timed.relay2++, 2, k, from, src, start, end);
    }
  };
  const relay = tracked ? relayTracked : relayPlain;

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
          const origin = clock.now();
          hop1.f64[at + 1] = origin;
          hop1.f64[at + 2] = 2;
          hop1.f64[at + 3] = 3;
          if (tracked) {
            // An ingress message: its origin is its publish time, and it has no parent.
            hop1.f64[at + ORIGIN] = origin;
            hop1.f64[at + PUBLISH] = origin;
            hop1.f64[at + PARENT] = -1;
          }
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
        if (tracked) {
          const start = Math.max(ended.sink, hop3.f64[at + PUBLISH]!);
          latencies.record(received, clock.now() - hop3.f64[at + 1]!);
          const end = clock.now();
          ended.sink = end;
          record(sinkTiming, timed.sink++, 3, received, hop3, at, start, end);
        } else {
          latencies.record(received, clock.now() - hop3.f64[at + 1]!);
        }
        received++;
      }
    }
    parentPort!.postMessage(latencies.report());
  }
}
