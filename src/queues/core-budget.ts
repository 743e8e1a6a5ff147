import { availableParallelism } from 'node:os';
import { ConfigError } from '../errors.js';
import type { Parker } from './signal.js';

/**
 * The threads of a group (a system's workers) against the cores they share, in shared Int32
 * words: THREADS, CORES, and one flag per member thread.
 *
 * It tells an adaptive wait whether a long spin is free: with no more threads than cores, each
 * can keep a core to itself, and a spinning thread hands a message over in a microsecond instead
 * of a futex wake-up of tens. With more threads than cores, a spinner holds the core a thread
 * with work needs, and the scheduler gives it back only at the end of a time slice (ms).
 *
 * Counting awake threads instead (parked ones out) looks finer but fails on 2 cores: a thread
 * whose timed park expires is runnable before it can count itself in, and two spinners then
 * starve it for a time slice: measured, a 4-thread pipeline went from ~0.1 ms to 0.2–0.8 ms at p50.
 *
 * The per-member flag makes `join` and `leave` idempotent, so a thread that ended can be counted
 * out both by itself and by whoever saw it end.
 *
 * A System keeps one in its spine's control block. On bare queues:
 * @example
 * const budget = CoreBudget.create();                  // main thread; share budget.buffer
 * const mine = CoreBudget.attach(buffer);              // in worker number `k`
 * mine.join(k);
 * const consumer = queue.consumer({ signal: mine.parker(queue.signal) });
 * consumer.take(out);                                  // spins long only while threads <= cores
 * mine.leave(k);
 */
export class CoreBudget {
  readonly words: Int32Array;
  readonly members: number;
  private readonly threadsIndex: number;
  private readonly coresIndex: number;
  private readonly flagsIndex: number;

  /**
   * A budget over shared words: THREADS at `index`, CORES at `index + 1`, and `members` flags
   * from `flagsIndex`. All zero in a new buffer; set the cores with `initialize`.
   */
  constructor(words: Int32Array, index: number, flagsIndex: number, members: number) {
    this.words = words;
    this.threadsIndex = index;
    this.coresIndex = index + 1;
    this.flagsIndex = flagsIndex;
    this.members = members;
  }

  /** A budget in a buffer of its own, for `members` threads sharing `cores` cores. */
  static create(options: { cores?: number; members?: number } = {}): CoreBudget {
    const members = options.members ?? 64;
    if (!Number.isInteger(members) || members < 1) {
      throw new ConfigError(`option 'members' must be a positive whole number, got ${members}`);
    }
    const budget = new CoreBudget(new Int32Array(new SharedArrayBuffer((2 + members) * 4)), 0, 2, members);
    budget.initialize(options.cores ?? availableParallelism());
    return budget;
  }

  /** The budget of `create`, in another thread. */
  static attach(buffer: SharedArrayBuffer): CoreBudget {
    const words = new Int32Array(buffer);
    return new CoreBudget(words, 0, 2, words.length - 2);
  }

  /** The shared memory of a budget made by `create`, to post to other threads. */
  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }

  /** Sets the core count before the words are shared (a plain store: postMessage orders it). */
  initialize(cores: number): void {
    if (!Number.isInteger(cores) || cores < 1) {
      throw new ConfigError(`option 'cores' must be a positive whole number, got ${cores}`);
    }
    this.words[this.coresIndex] = cores;
  }

  get cores(): number {
    return this.words[this.coresIndex]!;
  }

  /** Member threads now. */
  get threads(): number {
    // SC load of a counter changed only by atomic adds; any recent value will do.
    return Atomics.load(this.words, this.threadsIndex);
  }

  /** Counts `member` in: its thread started. */
  join(member: number): void {
    this.checkMember(member);
    // SC exchange of the member's flag: of two joins racing, exactly one sees 0 and counts.
    if (Atomics.exchange(this.words, this.flagsIndex + member, 1) === 0) {
      // SC add: spinners' next `coreFree` counts one more thread.
      Atomics.add(this.words, this.threadsIndex, 1);
    }
  }

  /** Counts `member` out: its thread ended. */
  leave(member: number): void {
    this.checkMember(member);
    // SC exchange: only the call that sees the flag set counts the member out.
    if (Atomics.exchange(this.words, this.flagsIndex + member, 0) === 1) {
      // SC sub: the core it held is free for a spinner from now on.
      Atomics.sub(this.words, this.threadsIndex, 1);
    }
  }

  /** True while the group has no more threads than cores: a spinner starves nobody. */
  coreFree(): boolean {
    // SC load (a plain load on x64): cheap enough to repeat while spinning.
    return Atomics.load(this.words, this.threadsIndex) <= this.words[this.coresIndex]!;
  }

  /** `signal` as a parker that lets an adaptive wait spin long while this budget allows it. */
  parker(signal: Parker): Parker {
    return new BudgetedParker(signal, this);
  }

  private checkMember(member: number): void {
    if (!(Number.isInteger(member) && member >= 0 && member < this.members)) {
      throw new ConfigError(
        `core budget member must be a whole number from 0 to ${this.members - 1}, got ${member}`,
      );
    }
  }
}

/** A parker that asks a CoreBudget whether a long spin is free. */
class BudgetedParker implements Parker {
  private readonly inner: Parker;
  private readonly budget: CoreBudget;

  constructor(inner: Parker, budget: CoreBudget) {
    this.inner = inner;
    this.budget = budget;
  }

  announce(): number {
    return this.inner.announce();
  }

  park(ticket: number, timeoutMs: number): void {
    this.inner.park(ticket, timeoutMs);
  }

  retire(): void {
    this.inner.retire();
  }

  coreFree(): boolean {
    return this.budget.coreFree();
  }

  wakeAll(): void {
    this.inner.wakeAll?.();
  }
}
