/** The 3-hop pipeline's spine: source → hop1 → hop2 → hop3 (the sink reads hop3). */
import * as hdr from 'hdr-histogram-js';
import { defineMessage, defineSpine } from '../../src/index.js';

export const Hop = defineMessage('Hop', { n: 'u32', a: 'f64', b: 'f64', c: 'f64' });

export const pipelineSpine = defineSpine({
  hop1: { message: Hop, capacity: 1 << 14 },
  hop2: { message: Hop, capacity: 1 << 14 },
  hop3: { message: Hop, capacity: 1 << 14 },
});
export type PipelineSpine = typeof pipelineSpine;

/**
 * The same streams with rings of 2^18 slots (~0.4 s of slack at 667k msg/s each): the persister
 * bench, where a thread on a 2-core machine may be descheduled for tens of ms.
 */
export const deepPipelineSpine = defineSpine({
  hop1: { message: Hop, capacity: 1 << 18 },
  hop2: { message: Hop, capacity: 1 << 18 },
  hop3: { message: Hop, capacity: 1 << 18 },
});

/** An HDR histogram of nanoseconds, as every variant's sink keeps one. */
function latencyHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 1e10,
    numberOfSignificantValueDigits: 3,
  });
}

/**
 * What every variant's sink records: the latency of message `n` (ns), into a histogram of its
 * own for the first `warmup` messages and into the reported one after. Both phases run the same
 * code: a sink that returned early during the warm-up and began recording at its end took a
 * branch its compiled code had never seen, and V8 deoptimized the handler (and the loops it was
 * inlined into) right there: the first tens of recorded messages then waited hundreds of µs
 * each, enough to make the p99 of a 20,000-message run.
 */
export class LatencyRecorder {
  /** The warm-up's histogram, then the reported one: picked by index, so that no code is new at the switch. */
  private readonly histograms = [latencyHistogram(), latencyHistogram()];
  private readonly warmup: number;

  constructor(warmup: number) {
    this.warmup = warmup;
  }

  record(n: number, ns: number): void {
    this.histograms[n < this.warmup ? 0 : 1]!.recordValue(ns < 1 ? 1 : Math.round(ns));
  }

  report(): LatencyReport {
    return latencyReport(this.histograms[1]!);
  }
}

/** The sink's report from its histogram. */
function latencyReport(h: hdr.Histogram): LatencyReport {
  return {
    type: 'latency',
    count: h.totalCount,
    p50: h.getValueAtPercentile(50),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
  };
}

/** What the sink of every variant reports: end-to-end latencies in ns, as HDR percentiles. */
export interface LatencyReport {
  readonly type: 'latency';
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
}

/** The floor pipeline's hops (spine/floor-worker.ts): slots per ring, Float64 words per slot. */
export const FLOOR_SLOTS = 1 << 14;
export const FLOOR_SLOT_F64 = 8;
/** Float64 index of a hop's first slot: its head word sits alone on the first cache line. */
export const FLOOR_SLOTS_F64 = 8;

/** A floor hop's buffer: its head word, then its slots. */
export function floorLink(): SharedArrayBuffer {
  return new SharedArrayBuffer((FLOOR_SLOTS_F64 + FLOOR_SLOTS * FLOOR_SLOT_F64) * 8);
}

/** What the floor workers take (spine/floor-worker.ts on raw Atomics, spine/queue-floor-worker.ts on dorsal's queues). */
export interface FloorWorkerData {
  readonly side: 'left' | 'right';
  /** One buffer per hop: a `floorLink`, or a queue (with the `Tracking` envelope when `tracked`). */
  readonly links: readonly SharedArrayBuffer[];
  /** Tracked: the timing rings (`floorLink`s: relay1, relay2, sink) or queues (relay1, relay2). */
  readonly timings: readonly SharedArrayBuffer[];
  readonly tracked: boolean;
  readonly count: number;
  readonly warmup: number;
  readonly intervalNs: number;
  readonly clockBase: number;
}
