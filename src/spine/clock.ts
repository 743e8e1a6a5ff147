/**
 * One clock for every thread of a process: nanoseconds since a base taken when the spine was
 * created, monotonic, comparable between workers.
 *
 * `performance.now()` is the cheapest clock Node has (~40–60 ns here; it returns a boxed double,
 * 16 bytes of garbage per read) but counts from each thread's own time origin.
 * `process.hrtime.bigint()` reads the process-wide monotonic clock but allocates a BigInt. So each thread calibrates once: it brackets `performance.now()` between
 * two hrtime reads and keeps the offset; afterwards `now()` is one `performance.now()`, one
 * multiply and one add. Both clocks are CLOCK_MONOTONIC underneath, so the offset does not drift.
 *
 * Resolution: `performance.now()` in Node is not coarsened; the calibration error is at most half
 * the bracketing interval (well under a microsecond here), the same for every reading of a
 * thread. Values are Float64 nanoseconds, exact to the nanosecond for 104 days after the base.
 */
export class Clock {
  /** hrtime at the base, in ns (as a Float64: the same value in every thread). */
  readonly baseNs: number;
  /** Half-width of the best calibration bracket, in ns: the error bound of this thread's offset. */
  readonly uncertaintyNs: number;
  private readonly offsetNs: number;

  constructor(baseNs: number) {
    this.baseNs = baseNs;
    const base = BigInt(Math.round(baseNs));
    let best = Number.POSITIVE_INFINITY;
    let offset = 0;
    for (let i = 0; i < 9; i++) {
      const before = process.hrtime.bigint();
      const perf = performance.now();
      const after = process.hrtime.bigint();
      const width = Number(after - before);
      if (width < best) {
        best = width;
        offset = Number((before + after) / 2n - base) - perf * 1e6;
      }
    }
    this.offsetNs = offset;
    this.uncertaintyNs = best / 2;
  }

  /** A base for a new clock domain: now, on the process-wide monotonic clock. */
  static newBase(): number {
    return Number(process.hrtime.bigint());
  }

  /** Nanoseconds since the base. */
  now(): number {
    return performance.now() * 1e6 + this.offsetNs;
  }
}
