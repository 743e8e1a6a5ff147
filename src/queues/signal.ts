/**
 * A wake-up signal in shared memory: a futex word that sleepers wait on and a count of sleepers,
 * so that a producer pays for `Atomics.notify` (~36 ns) only when somebody is parked.
 *
 * Lost wake-ups are excluded by a Dekker-style pair of sequentially consistent operations.
 * Producer: SC store of something a sleeper's condition can see (a queue producer: the done
 * version of the slot it just filled), then SC load of SLEEPERS, and a wake-up if that load saw
 * a sleeper. Sleeper: SC increment of SLEEPERS (`announce`), then an SC re-check of its
 * condition. In the single total order of SC operations one of the two comes first: either the
 * producer sees the sleeper and wakes it, or the sleeper sees the message and does not park. The
 * sleeper reads WAKE before its re-check, so a wake-up landing between the re-check and
 * `Atomics.wait` changes the word and the wait returns at once.
 */
/** What a waiter needs to park: announce itself, sleep, and retire. `Signal` is one. */
export interface Parker {
  /** Announces a sleeper; returns the ticket `park` waits on. Re-check the condition after it. */
  announce(): number;
  /** Sleeps until woken or `timeoutMs` passes (Infinity: no timeout). */
  park(ticket: number, timeoutMs: number): void;
  /** Undoes `announce`. */
  retire(): void;
  /**
   * True while a core is free for this thread to keep spinning (see CoreBudget). A parker
   * without it never lets an adaptive wait spin past its short spin.
   */
  coreFree?(): boolean;
  /** Wakes every thread parked here (a queue's `close` calls it on the parkers of its consumers). */
  wakeAll?(): void;
}

export class Signal implements Parker {
  /** The shared words; producers load `words[sleepersIndex]` inline on their hot path. */
  readonly words: Int32Array;
  readonly wakeIndex: number;
  readonly sleepersIndex: number;

  /** `wakeIndex` and `sleepersIndex` are Int32 indices into `words` (a view of shared memory). */
  constructor(words: Int32Array, wakeIndex: number, sleepersIndex: number) {
    this.words = words;
    this.wakeIndex = wakeIndex;
    this.sleepersIndex = sleepersIndex;
  }

  /** Wakes every sleeper unconditionally (used by close and stop). */
  wakeAll(): void {
    // Changing the word first makes a sleeper that has read WAKE but not yet slept return at once.
    Atomics.add(this.words, this.wakeIndex, 1);
    Atomics.notify(this.words, this.wakeIndex);
  }

  /**
   * Sleeper side: announces a sleeper and returns the ticket to pass to `park`. The caller must
   * check its condition again after this and park only if it still does not hold.
   */
  announce(): number {
    // SC read-modify-write: ordered before the caller's re-check of its condition.
    Atomics.add(this.words, this.sleepersIndex, 1);
    // The ticket: a wake-up after this load changes the word and `park` returns immediately.
    return Atomics.load(this.words, this.wakeIndex);
  }

  /** Parks until notified or `timeoutMs` passes (Infinity: no timeout). */
  park(ticket: number, timeoutMs: number): void {
    Atomics.wait(this.words, this.wakeIndex, ticket, timeoutMs);
  }

  /** Sleeper side: the sleeper is awake again. */
  retire(): void {
    // SC RMW; the producer reads it with an SC load and skips notify once it reaches zero.
    Atomics.sub(this.words, this.sleepersIndex, 1);
  }

  /** How many threads are parked on this signal now (for monitoring). */
  get sleeping(): number {
    // SC load; a monitoring read, any recent value will do.
    return Atomics.load(this.words, this.sleepersIndex);
  }
}
