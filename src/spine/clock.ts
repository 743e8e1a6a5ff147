import { type NativeClock, nativeClock, nativeClockMissing } from './native-clock.js';

/** Where a Clock reads the time: the native addon (no allocation) or `performance.now()`. */
export type ClockSource = 'native' | 'performance.now';

/**
 * One clock for every thread of a process: nanoseconds since a base taken when the spine was
 * created, monotonic, comparable between workers.
 *
 * Read from `native/clock.c` when it was built on install: one Node-API call that writes
 * CLOCK_MONOTONIC into a Float64Array this thread owns, read back unboxed — no allocation, ~45–60
 * ns here. Otherwise from `performance.now()`, which is slower here (~55–90 ns) and returns a boxed
 * double: 16 bytes of garbage per read, a scavenge every ~64k reads on a hot path.
 * `process.hrtime.bigint()` reads the process-wide monotonic clock but allocates a BigInt.
 *
 * Either source is calibrated once per thread: a read is bracketed between two hrtime reads and
 * the offset kept; afterwards `now()` is one read and one add (and a multiply for
 * performance.now). All are CLOCK_MONOTONIC underneath, so the offset does not drift.
 *
 * Resolution: 1 ns for the native source, and `performance.now()` is not coarsened in Node; the
 * calibration error is at most half the bracketing interval (`uncertaintyNs`, well under a
 * microsecond here), the same for every reading of a thread. Values are Float64 nanoseconds,
 * exact to the nanosecond for 104 days after the base.
 */
export class Clock {
  /** hrtime at the base, in ns (as a Float64: the same value in every thread). */
  readonly baseNs: number;
  /** Half-width of the best calibration bracket, in ns: the error bound of this thread's offset. */
  readonly uncertaintyNs: number;
  readonly source: ClockSource;
  private readonly offsetNs: number;
  private readonly native: NativeClock | undefined;

  constructor(baseNs: number) {
    this.baseNs = baseNs;
    this.native = nativeClock;
    this.source = nativeClock === undefined ? 'performance.now' : 'native';
    const base = BigInt(Math.round(baseNs));
    let best = Number.POSITIVE_INFINITY;
    let offset = 0;
    for (let i = 0; i < 9; i++) {
      const before = process.hrtime.bigint();
      const raw = this.raw();
      const after = process.hrtime.bigint();
      const width = Number(after - before);
      if (width < best) {
        best = width;
        offset = Number((before + after) / 2n - base) - raw;
      }
    }
    this.offsetNs = offset;
    this.uncertaintyNs = best / 2;
  }

  /** A base for a new clock domain: now, on the process-wide monotonic clock. */
  static newBase(): number {
    return Number(process.hrtime.bigint());
  }

  /** Why this thread reads `performance.now()` instead of the native clock ('' if it does not). */
  static get nativeMissing(): string {
    return nativeClockMissing;
  }

  /** Nanoseconds since the base. */
  now(): number {
    return this.raw() + this.offsetNs;
  }

  /** The source's own reading, in ns, before the offset. */
  private raw(): number {
    const native = this.native;
    if (native === undefined) return performance.now() * 1e6;
    native.tick();
    return native.slot[0]!;
  }
}
