import { ConfigError } from '../errors.js';
import type { Parker } from './signal.js';

/** What a wait strategy waits for: a consumer has a message, or its queue was closed. */
export interface WaitCondition {
  /** A cheap check, repeated while spinning; it may lag a moment behind the truth. */
  ready(): boolean;
  /**
   * The exact check made after announcing a sleeper on the signal: it must read what the
   * producer stores before it looks for sleepers (see Signal). Defaults to `ready`.
   */
  readyToPark?(): boolean;
}

/**
 * How an idle consumer waits, named as in the LMAX Disruptor. `wait` returns true when the
 * condition holds and false when `timeoutMs` passed first; it never throws.
 */
export interface WaitStrategy {
  readonly name: string;
  wait(condition: WaitCondition, parker: Parker, timeoutMs: number): boolean;
  /**
   * For a waiter that can spin on its work itself (an actor thread runs rounds of its actors,
   * whose own polls find a message sooner than a separate check would): how long this strategy
   * spins before it parks, in ms, for a wait of `timeoutMs` (Infinity: it never parks). The
   * waiter spins that long, then parks with `parkUntil`, without a second spin. A strategy
   * without it is only waited on with `wait`. (Actor threads ask it of the strategy their
   * `spawn` names.)
   */
  spinMs?(parker: Parker, timeoutMs: number): number;
}

/**
 * The clock a wait reads for its spins and deadlines: monotonic milliseconds. The default,
 * `performance.now()`, allocates on every read (a boxed double); a thread that has an
 * allocation-free clock (an actor thread has the spine clock) passes it, and its spins then make
 * no garbage.
 */
export type MillisecondClock = () => number;

/** Options every wait strategy takes. */
export interface WaitClockOptions {
  /** Monotonic milliseconds; default `performance.now()`. */
  readonly now?: MillisecondClock;
}

const performanceNow: MillisecondClock = () => performance.now();

/** The `now` option, checked: a strategy given something else would fail mid-spin. */
function clockOf(options: WaitClockOptions): MillisecondClock {
  const now = options.now ?? performanceNow;
  if (typeof now !== 'function') {
    throw new ConfigError(
      `wait strategy option 'now' must be a function returning milliseconds, got ${String(now)}`,
    );
  }
  return now;
}

/**
 * Spinning waits look at the clock once per this many checks of their condition (~1 µs). Not
 * for its cost (~40 ns) but for the default clock's garbage: `performance.now()` returns a boxed
 * double, and a spin that read it every 16 checks allocated tens of MB/s (a scavenge every
 * ~15 ms per spinning thread, measured with --trace-gc).
 */
const CLOCK_CHECK_EVERY = 256;

function deadlineOf(now: MillisecondClock, timeoutMs: number): number {
  return timeoutMs === Number.POSITIVE_INFINITY ? timeoutMs : now() + timeoutMs;
}

/**
 * A wait's timeout as the strategies use it: NaN or below zero is 0 (a wait that times out at
 * once), never a deadline no comparison reaches (a NaN deadline spun or slept for good).
 */
function timeoutOf(timeoutMs: number): number {
  // biome-ignore lint/complexity/useMathMinMax: Math.max(NaN, 0) is NaN, the very case to end
  return timeoutMs >= 0 ? timeoutMs : 0;
}

/** Spins as long as it waits: lowest latency, one core burnt. Only when threads < cores. */
export class BusySpinWaitStrategy implements WaitStrategy {
  readonly name = 'busy-spin';
  private readonly now: MillisecondClock;

  constructor(options: WaitClockOptions = {}) {
    this.now = clockOf(options);
  }

  wait(condition: WaitCondition, _parker: Parker, timeoutMs: number): boolean {
    const deadline = deadlineOf(this.now, timeoutOf(timeoutMs));
    for (let i = 1; ; i++) {
      if (condition.ready()) return true;
      if (i % CLOCK_CHECK_EVERY === 0 && this.now() >= deadline) return condition.ready();
    }
  }

  spinMs(): number {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * Spins `spins` times (or until the timeout), then gives the core away in short naps (`napMs`, an
 * `Atomics.wait` on a private word: Node has no thread yield). Wakes within about a nap without
 * any notify.
 */
export class SpinThenYieldWaitStrategy implements WaitStrategy {
  readonly name = 'spin-then-yield';
  private readonly spins: number;
  private readonly napMs: number;
  private readonly nap = new Int32Array(new SharedArrayBuffer(4));
  private readonly now: MillisecondClock;

  constructor(options: { spins?: number; napMs?: number } & WaitClockOptions = {}) {
    this.spins = nonNegative('spins', options.spins ?? 100);
    this.napMs = nonNegative('napMs', options.napMs ?? 0.05);
    this.now = clockOf(options);
  }

  wait(condition: WaitCondition, _parker: Parker, waitMs: number): boolean {
    const timeoutMs = timeoutOf(waitMs);
    const timed = timeoutMs !== Number.POSITIVE_INFINITY;
    // Read at the first clock check: a message found in the first spins costs no clock read.
    let deadline = Number.NaN;
    for (let i = 1; i <= this.spins; i++) {
      if (condition.ready()) return true;
      if (timed && i % CLOCK_CHECK_EVERY === 0) {
        const now = this.now();
        if (Number.isNaN(deadline)) deadline = now + timeoutMs;
        if (now >= deadline) return condition.ready();
      }
    }
    if (Number.isNaN(deadline)) deadline = deadlineOf(this.now, timeoutMs);
    for (;;) {
      if (condition.ready()) return true;
      const left = deadline - this.now();
      if (left <= 0) return false;
      // Nobody notifies this private word: the wait is a bounded sleep.
      Atomics.wait(this.nap, 0, 0, Math.min(this.napMs, left));
    }
  }
}

/**
 * Parks on the queue's signal until a producer notifies (`Atomics.wait`/`Atomics.notify`).
 * No CPU while idle; a wake-up costs a futex round trip (~tens of µs on this class of VM).
 */
export class BlockingWaitStrategy implements WaitStrategy {
  readonly name: string = 'blocking';
  private readonly now: MillisecondClock;

  constructor(options: WaitClockOptions = {}) {
    this.now = clockOf(options);
  }

  wait(condition: WaitCondition, signal: Parker, timeoutMs: number): boolean {
    return parkUntil(condition, signal, deadlineOf(this.now, timeoutOf(timeoutMs)), this.now);
  }

  spinMs(): number {
    return 0;
  }
}

/**
 * The default: spin for a while (a message usually follows a message), then park on the signal.
 * Spins are measured in time, not iterations, so they mean the same on every machine.
 *
 * - The short spin (`spinMicros`, default 10 µs) always runs: enough for a burst to flow without
 *   a futex round trip, short enough that threads outnumbering the cores (the normal case on
 *   2 cores) do not starve the ones with work.
 * - The long spin (`freeCoreSpinMicros`, default 200 µs) follows when the parker says each thread
 *   has a core (a `CoreBudget` counts the threads of the system against the cores): two threads
 *   of a pipeline on two cores then hand messages over in a few microseconds instead of a futex
 *   wake-up of tens. A parker without a budget (a bare Signal) gets the short spin only.
 *
 * Idle, a thread burns at most one spin per wake-up: five idle actors cost almost nothing.
 */
export class AdaptiveWaitStrategy implements WaitStrategy {
  readonly name = 'adaptive';
  private readonly shortSpinMs: number;
  private readonly freeCoreSpinMs: number;
  private readonly now: MillisecondClock;

  constructor(options: { spinMicros?: number; freeCoreSpinMicros?: number } & WaitClockOptions = {}) {
    this.shortSpinMs = nonNegative('spinMicros', options.spinMicros ?? 10) / 1000;
    this.freeCoreSpinMs = nonNegative('freeCoreSpinMicros', options.freeCoreSpinMicros ?? 200) / 1000;
    this.now = clockOf(options);
  }

  wait(condition: WaitCondition, parker: Parker, waitMs: number): boolean {
    const timeoutMs = timeoutOf(waitMs);
    const start = this.now();
    const deadline = start + timeoutMs;
    // A short timeout means a thread driven by time: it gets a short spin, not a busy loop,
    // unless a core is free, and then spinning to the deadline is the precise timer it wants.
    const spinUntil = start + Math.min(this.shortSpinMs, timeoutMs / 4);
    const longSpinUntil = Math.min(start + this.freeCoreSpinMs, deadline);
    for (let i = 1; ; i++) {
      if (condition.ready()) return true;
      if (i % CLOCK_CHECK_EVERY === 0) {
        const now = this.now();
        if (now >= spinUntil && (now >= longSpinUntil || parker.coreFree === undefined || !parker.coreFree()))
          break;
      }
    }
    return parkUntil(condition, parker, deadline, this.now);
  }

  /**
   * The short spin, or the long one while the parker says a core is free, as `wait` spins (which
   * asks the parker again every 256 looks; this asks once).
   */
  spinMs(parker: Parker, waitMs: number): number {
    const timeoutMs = timeoutOf(waitMs);
    const short = Math.min(this.shortSpinMs, timeoutMs / 4);
    if (parker.coreFree === undefined || !parker.coreFree()) return short;
    return Math.max(short, Math.min(this.freeCoreSpinMs, timeoutMs));
  }
}

/**
 * Parks on `signal` until `condition` holds (true) or `deadline` passes (false; ms on `now`'s
 * clock): announces a sleeper, re-checks exactly, sleeps, retires. No spin: what a waiter that
 * spun already (see `WaitStrategy.spinMs`) calls.
 */
export function parkUntil(
  condition: WaitCondition,
  signal: Parker,
  deadline: number,
  now: MillisecondClock,
): boolean {
  for (;;) {
    if (condition.ready()) return true;
    // A deadline already passed (a time-driven thread's usual case) needs no announcement; nor
    // does a NaN one, which no clock reaches (a park of NaN ms would sleep for good).
    const left = deadline === Number.POSITIVE_INFINITY ? deadline : deadline - now();
    if (!(left > 0)) return false;
    const ticket = signal.announce();
    try {
      // The exact re-check after announcing closes the race with a producer that published just now.
      if (condition.readyToPark ? condition.readyToPark() : condition.ready()) return true;
      signal.park(ticket, left);
    } finally {
      signal.retire();
    }
  }
}

function nonNegative(name: string, value: number): number {
  // Finite: a nap or a spin of Infinity is a wait that neither a message nor a close ends.
  if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
    throw new ConfigError(
      `wait strategy option '${name}' must be a finite non-negative number, got ${String(value)}`,
    );
  }
  return value;
}

/** The names `waitStrategyNamed` knows. */
export type WaitStrategyName = 'busy-spin' | 'spin-then-yield' | 'blocking' | 'adaptive';

/** A wait strategy by name, for options given as strings (`'adaptive'`, `'blocking'`, …). */
export function waitStrategyNamed(
  name: WaitStrategyName | string,
  options: WaitClockOptions = {},
): WaitStrategy {
  switch (name) {
    case 'busy-spin':
      return new BusySpinWaitStrategy(options);
    case 'spin-then-yield':
      return new SpinThenYieldWaitStrategy(options);
    case 'blocking':
      return new BlockingWaitStrategy(options);
    case 'adaptive':
      return new AdaptiveWaitStrategy(options);
    default:
      throw new ConfigError(
        `unknown wait strategy '${name}' (known: busy-spin, spin-then-yield, blocking, adaptive)`,
      );
  }
}
