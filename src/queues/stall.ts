/** A slot whose writer was taken for dead (see `QueueOptions.poisonTimeoutMs`). */
export interface PoisonedSlot {
  /** The queue's message layout name. */
  readonly queue: string;
  /**
   * The sequence of the message lost: exact for a consumer's `'skipped'`; mod 2^32 for a
   * producer's events (the absent writer's sequence, or its own for `'dropped'`).
   */
  readonly sequence: number;
  /**
   * `'skipped'`: a consumer gave up waiting for the message (or met an abandoned slot) and
   * counted it lost; `'taken-over'`: a producer wrote the slot a writer claimed and never started;
   * `'abandoned'`: a producer gave a half-written slot up for good (its writer may be paused, and
   * its late stores must never mix with a message); `'dropped'`: a producer found the slot it
   * claimed taken over or abandoned, and dropped its message.
   */
  readonly what: 'skipped' | 'taken-over' | 'abandoned' | 'dropped';
}

/**
 * Times how long one sequence has been stuck (its slot claimed or half written) against a time
 * limit. No clock is read on a hot path: a stuck slot is usually a writer caught mid-copy, done
 * nanoseconds later, so the clock starts only at the second check of the same sequence (or when
 * a caller asks how long to wait: it is about to sleep); `expiredSometimes` reads it at every
 * 64th check, for spin loops.
 */
export class SlotStall {
  /** A private word to nap on while a writer is waited for. */
  readonly nap = new Int32Array(new SharedArrayBuffer(4));
  readonly timeoutMs: number;
  /** Called right before the clock starts (a consumer notes what was claimed by then, and when). */
  private readonly beforeClock: (() => void) | undefined;
  private seq = Number.NaN;
  private key = 0;
  private limitMs = 0;
  private since = Number.NaN;
  private checks = 0;

  constructor(timeoutMs: number, beforeClock?: () => void) {
    this.timeoutMs = timeoutMs;
    this.beforeClock = beforeClock;
  }

  /**
   * Times `seq` (of `key`, for a vector) against `limitMs` (default: the timeout), unless it is
   * already the one timed; from `sinceMs` (performance.now()) if it is known stuck since then.
   * Returns true when it starts timing a new one.
   */
  begin(seq: number, key = 0, limitMs = this.timeoutMs, sinceMs = Number.NaN): boolean {
    if (seq === this.seq && key === this.key) return false;
    this.seq = seq;
    this.key = key;
    this.limitMs = limitMs;
    this.since = sinceMs;
    this.checks = 0;
    return true;
  }

  /** True while `seq` is the sequence being timed. */
  timing(seq: number): boolean {
    return seq === this.seq;
  }

  /** True once the sequence timed has been stuck for its limit. */
  expired(): boolean {
    if (Number.isNaN(this.since)) {
      if (this.checks++ > 0) this.start();
      return false;
    }
    return performance.now() - this.since >= this.limitMs;
  }

  /** `expired`, with the clock read at every 64th call only. */
  expiredSometimes(): boolean {
    return (++this.checks & 63) === 0 && this.expired();
  }

  /**
   * Milliseconds until the sequence timed expires. A caller asks before it sleeps that long: the
   * clock starts now if it has not (else the sleep only started it, and a second sleep of the
   * whole limit followed).
   */
  remainingMs(): number {
    if (Number.isNaN(this.since)) {
      this.start();
      return this.limitMs;
    }
    return Math.max(0, this.limitMs - (performance.now() - this.since));
  }

  clear(): void {
    this.seq = Number.NaN;
  }

  private start(): void {
    this.beforeClock?.();
    this.since = performance.now();
  }
}
