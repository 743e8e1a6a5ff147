/** A slot whose writer was taken for dead (see `QueueOptions.poisonTimeoutMs`). */
export interface PoisonedSlot {
  /** The queue's message layout name. */
  readonly queue: string;
  /**
   * The sequence of the message lost: exact for a consumer's `'skipped'`; mod 2^32 for a
   * producer's `'taken-over'` (the dead writer's) and `'dropped'` (its own).
   */
  readonly sequence: number;
  /**
   * `'skipped'`: a consumer gave up waiting for the message and counted it lost;
   * `'taken-over'`: a producer overwrote the slot its dead writer left claimed or half written;
   * `'dropped'`: a producer found the slot it claimed taken over, and dropped its message.
   */
  readonly what: 'skipped' | 'taken-over' | 'dropped';
}

/**
 * Times how long one sequence has been stuck (its slot claimed or half written) against the poison
 * timeout. The clock is read only once something is stuck, never on a hot path: `expired` reads it
 * at every call, `expiredSometimes` at every 64th, for spin loops.
 */
export class SlotStall {
  /** A private word to nap on while a writer is waited for. */
  readonly nap = new Int32Array(new SharedArrayBuffer(4));
  readonly timeoutMs: number;
  private seq = Number.NaN;
  private key = 0;
  private since = Number.NaN;
  private checks = 0;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** Times `seq` (of `key`, for a vector) from the next check on, unless it is already the one timed. */
  begin(seq: number, key = 0): void {
    if (seq === this.seq && key === this.key) return;
    this.seq = seq;
    this.key = key;
    this.since = Number.NaN;
    this.checks = 0;
  }

  /** True while `seq` is the sequence being timed. */
  timing(seq: number): boolean {
    return seq === this.seq;
  }

  /** True once the sequence timed has been stuck for the timeout (the first call starts the clock). */
  expired(): boolean {
    const now = performance.now();
    if (Number.isNaN(this.since)) {
      this.since = now;
      return false;
    }
    return now - this.since >= this.timeoutMs;
  }

  /** `expired`, with the clock read at every 64th call only. */
  expiredSometimes(): boolean {
    return (++this.checks & 63) === 0 && this.expired();
  }

  /** Milliseconds until the sequence timed expires (the whole timeout if its clock has not started). */
  remainingMs(): number {
    if (Number.isNaN(this.since)) return this.timeoutMs;
    return Math.max(0, this.timeoutMs - (performance.now() - this.since));
  }

  clear(): void {
    this.seq = Number.NaN;
  }
}
