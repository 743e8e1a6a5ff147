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
 * nanoseconds later, so the clock starts only at the second check of the same sequence;
 * `expiredSometimes` reads it at every 64th check, for spin loops.
 */
export class SlotStall {
  /** A private word to nap on while a writer is waited for. */
  readonly nap = new Int32Array(new SharedArrayBuffer(4));
  readonly timeoutMs: number;
  private seq = Number.NaN;
  private key = 0;
  private limitMs = 0;
  private since = Number.NaN;
  private checks = 0;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /**
   * Times `seq` (of `key`, for a vector) against `limitMs` (default: the timeout), unless it is
   * already the one timed. Returns true when it starts timing a new one.
   */
  begin(seq: number, key = 0, limitMs = this.timeoutMs): boolean {
    if (seq === this.seq && key === this.key) return false;
    this.seq = seq;
    this.key = key;
    this.limitMs = limitMs;
    this.since = Number.NaN;
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
      if (this.checks++ > 0) this.since = performance.now();
      return false;
    }
    return performance.now() - this.since >= this.limitMs;
  }

  /** `expired`, with the clock read at every 64th call only. */
  expiredSometimes(): boolean {
    return (++this.checks & 63) === 0 && this.expired();
  }

  /** Milliseconds until the sequence timed expires (its whole limit if its clock has not started). */
  remainingMs(): number {
    if (Number.isNaN(this.since)) return this.limitMs;
    return Math.max(0, this.limitMs - (performance.now() - this.since));
  }

  clear(): void {
    this.seq = Number.NaN;
  }
}
