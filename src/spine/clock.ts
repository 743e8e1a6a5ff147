import { nativeClock, nativeClockMissing } from './native-clock.js';

/** Where a Clock reads the time: the native addon (no allocation) or `performance.now()`. */
export type ClockSource = 'native' | 'performance.now';

/**
 * One clock for every thread of a process: nanoseconds since a base taken when the spine was
 * created, monotonic, comparable between workers.
 *
 * Read from `native/clock.cc` when it was built on install: a call that writes the time into a
 * Float64Array this thread owns, read back unboxed, so nothing is allocated. On x86-64 Linux with
 * a TSC clock source it reads RDTSC, scaled to CLOCK_MONOTONIC nanoseconds by one process-wide
 * calibration that every thread shares; elsewhere it calls clock_gettime(CLOCK_MONOTONIC). On
 * Node 20 optimized code calls it as a V8 fast call. ~10–25 ns a read on these machines (RDTSC
 * alone takes ~10 ns on the AMD EPYC ones), where the Node-API version cost ~45–60. Otherwise from `performance.now()`, which is slower here (~55–90 ns) and
 * returns a boxed double: 16 bytes of garbage per read, a scavenge every ~64k reads on a hot path.
 * `process.hrtime.bigint()` reads the process-wide monotonic clock but allocates a BigInt.
 *
 * The native source needs no calibration per thread: `now()` is the reading minus the base, and a
 * base taken by `newBase()` is a reading of the same line. `performance.now()` counts from each
 * thread's own origin, so it is calibrated once per thread: a read is bracketed between two
 * hrtime reads and the offset kept.
 *
 * Resolution: 1 ns for the native source, and `performance.now()` is not coarsened in Node. Two
 * threads on the native source read the same line (`uncertaintyNs` 0), though an RDTSC reading
 * may be taken up to the CPU's out-of-order window (tens of ns) ahead of the instruction before
 * it, so readings on two threads order events only to within that; a thread on
 * `performance.now()` is off by at most half its bracketing interval (`uncertaintyNs`, well under
 * a microsecond here). Values are Float64 nanoseconds, exact to the nanosecond for 104 days
 * after the base.
 */
export class Clock {
  /** The base, in ns on the monotonic clock's line (a Float64: the same value in every thread). */
  readonly baseNs: number;
  /** How far this thread's readings may be from another thread's, in ns (0 on the native source). */
  readonly uncertaintyNs: number;
  readonly source: ClockSource;
  private readonly offsetNs: number;
  /** Writes the source's reading, in ns, into `slot[0]`: the native tick, or a performance.now() read. */
  private readonly tick: () => void;
  private readonly slot: Float64Array;

  constructor(baseNs: number) {
    this.baseNs = baseNs;
    this.source = nativeClock === undefined ? 'performance.now' : 'native';
    if (nativeClock !== undefined) {
      this.tick = nativeClock.tick;
      this.slot = nativeClock.slot;
      // Every thread computes the same function of the same counter: nothing to calibrate.
      this.offsetNs = -baseNs;
      this.uncertaintyNs = 0;
      return;
    }
    const slot = new Float64Array(1);
    this.slot = slot;
    this.tick = () => {
      slot[0] = performance.now() * 1e6;
    };
    // performance.now() counts from this thread's own time origin: place it on the base's line.
    const base = BigInt(Math.round(baseNs));
    let best = Number.POSITIVE_INFINITY;
    let offset = 0;
    for (let i = 0; i < 9; i++) {
      const before = process.hrtime.bigint();
      this.tick();
      const raw = slot[0]!;
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

  /**
   * A base for a new clock domain: now, in ns, on the native clock's line when this process has
   * one, else on the process-wide monotonic clock (hrtime). The two lines agree to within
   * microseconds: the TSC's line is steered back to CLOCK_MONOTONIC (native/clock.cc).
   */
  static newBase(): number {
    if (nativeClock === undefined) return Number(process.hrtime.bigint());
    nativeClock.tick();
    return nativeClock.slot[0]!;
  }

  /** Where the native clock reads the time and how it is called, e.g. `rdtsc, … · V8 fast call` ('' without it). */
  static get nativeSource(): string {
    return nativeClock === undefined ? '' : `${nativeClock.source} · ${nativeClock.call}`;
  }

  /** Why this thread reads `performance.now()` instead of the native clock ('' if it does not). */
  static get nativeMissing(): string {
    return nativeClockMissing;
  }

  /**
   * Nanoseconds since the base. Kept under V8's "small function" size (27 bytes of bytecode), so
   * that every call site inlines it whatever else competes for the inlining budget.
   */
  now(): number {
    this.tick();
    return this.slot[0]! + this.offsetNs;
  }
}
