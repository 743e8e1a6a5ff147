/**
 * One clock for every thread of the process, in Float64 nanoseconds since a base the main
 * thread takes and hands to workers.
 *
 * `performance.now()` (~40 ns, ns resolution in Node) is cheap but its origin is per thread in
 * principle; `process.hrtime.bigint()` is process-wide but allocates. Both read the same
 * monotonic clock, so each thread measures the offset between them once (the pair of readings
 * closest together wins) and from then on pays only for `performance.now()`.
 */

/** The base every thread counts from: take it in the main thread, pass it in workerData. */
export function clockBase(): bigint {
  return process.hrtime.bigint();
}

/** Nanoseconds since `base` (Float64: exact up to ~104 days), calibrated for this thread. */
export function calibratedClock(base: bigint): () => number {
  let closest = Number.POSITIVE_INFINITY;
  let offsetNs = 0;
  for (let i = 0; i < 1000; i++) {
    const before = performance.now();
    const hr = process.hrtime.bigint();
    const after = performance.now();
    if (after - before < closest) {
      closest = after - before;
      offsetNs = Number(hr - base) - ((before + after) / 2) * 1e6;
    }
  }
  return () => performance.now() * 1e6 + offsetNs;
}
