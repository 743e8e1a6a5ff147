import { availableParallelism } from 'node:os';
import { CoreBudget, type Parker, Signal } from '../queues/index.js';

/**
 * The spine's control block, shared by every thread of a system (Int32 word indices):
 *
 * ```
 * byte 0    ┌ MAGIC · PHASE · REFUSED ───────────────────────────────────────────────────────┐
 * byte 32   ├ CLOCK_BASE_F64 (hrtime ns at creation: every thread's clock counts from it)     ─┤
 * byte 48   ├ THREADS · CORES: the CoreBudget (worker threads alive, against the cores)          ─┤
 * byte 64   ├ IDLE: MAX_WORKERS words, 1 while that worker's last round was idle               ─┤
 *           ├ WAKE: MAX_WORKERS words, the futex word each worker parks on                      ─┤
 *           ├ ALIVE: MAX_WORKERS words, 1 while the CoreBudget counts that worker's thread       ─┤
 *           ├ per stream, a 64-byte line: SLEEPERS (parked workers that consume it), then      ─┤
 *           │ WAITERS: 8 words, a 256-bit mask of which workers those are                        │
 *           └────────────────────────────────────────────────────────────────────────────────────┘
 * ```
 *
 * A publish wakes only the workers parked on *its* stream, each on its own word: on 2 cores,
 * waking every parked thread for every message (one spine-wide futex word) costs a context
 * switch per sleeper and per message.
 */
const C = {
  MAGIC: 0,
  PHASE: 1,
  REFUSED: 2,
  CLOCK_BASE_F64: 4,
  CORE_BUDGET: 12,
  IDLE: 16,
} as const;
const CONTROL_MAGIC = 0x64727363; // 'drsc'
export const MAX_WORKERS = 256;
const WAKE = C.IDLE + MAX_WORKERS;
const ALIVE = WAKE + MAX_WORKERS;
const STREAMS = ALIVE + MAX_WORKERS;
const STREAM_WORDS = 16;
const MASK_WORDS = MAX_WORKERS / 32;

/** Life of a system, as every thread sees it. */
export const Phase = {
  /** Workers attach and run `onInit`; nobody runs `loopBody` yet. */
  STARTING: 0,
  RUNNING: 1,
  /** Stopping: ingress is refused, consumers drain what is left. */
  DRAINING: 2,
  /** Workers leave their loop, run `onExit` and end. */
  EXITING: 3,
} as const;
export type PhaseValue = (typeof Phase)[keyof typeof Phase];

export class SpineControl {
  readonly buffer: SharedArrayBuffer;
  readonly streams: number;
  /** Worker threads against the cores: an adaptive wait spins long only while each has a core. */
  readonly coreBudget: CoreBudget;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly signals: StreamSignal[] = [];

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.streams = (this.i32.length - STREAMS) / STREAM_WORDS;
    this.coreBudget = new CoreBudget(this.i32, C.CORE_BUDGET, ALIVE, MAX_WORKERS);
    for (let s = 0; s < this.streams; s++)
      this.signals.push(new StreamSignal(this.i32, STREAMS + s * STREAM_WORDS));
  }

  static create(clockBaseNs: number, streams: number, cores = availableParallelism()): SpineControl {
    const control = new SpineControl(new SharedArrayBuffer((STREAMS + streams * STREAM_WORDS) * 4));
    // Plain stores before the buffer is shared (postMessage orders them).
    control.i32[C.MAGIC] = CONTROL_MAGIC;
    control.f64[C.CLOCK_BASE_F64] = clockBaseNs;
    control.coreBudget.initialize(cores);
    return control;
  }

  static attach(buffer: SharedArrayBuffer): SpineControl {
    const control = new SpineControl(buffer);
    if (control.i32[C.MAGIC] !== CONTROL_MAGIC) throw new Error('not a dorsal spine control block');
    return control;
  }

  get clockBaseNs(): number {
    return this.f64[C.CLOCK_BASE_F64]!;
  }

  get phase(): PhaseValue {
    // SC load: pairs with the SC store in `setPhase`.
    return Atomics.load(this.i32, C.PHASE) as PhaseValue;
  }

  /** Moves every thread to `phase` and wakes every worker, parked or about to park. */
  setPhase(phase: PhaseValue): void {
    // SC store, then a wake-up of every worker word: a parked worker re-reads the phase.
    Atomics.store(this.i32, C.PHASE, phase);
    for (let w = 0; w < MAX_WORKERS; w++) wake(this.i32, WAKE + w);
  }

  /** The signal producers of stream `index` wake: it reaches the workers parked on that stream. */
  streamSignal(index: number): Signal {
    return this.signals[index]!;
  }

  /**
   * How worker `worker` parks: announced on the streams it consumes, asleep on its own word.
   */
  parker(worker: number, streams: () => readonly number[]): Parker {
    return new WorkerParker(this.i32, worker, streams, this.coreBudget);
  }

  /** Workers parked right now on any stream (for monitoring and tests). */
  get sleeping(): number {
    let n = 0;
    // SC loads of counters changed only by atomic adds.
    for (let s = 0; s < this.streams; s++) n += Atomics.load(this.i32, STREAMS + s * STREAM_WORDS);
    return n;
  }

  /** Ingress messages refused because the system was stopping. */
  get refused(): number {
    // SC load of a counter only ever incremented atomically.
    return Atomics.load(this.i32, C.REFUSED);
  }

  countRefused(): void {
    // SC add: several workers may refuse at once.
    Atomics.add(this.i32, C.REFUSED, 1);
  }

  setIdle(worker: number, idle: boolean): void {
    // SC store; read by the main thread when it looks for quiescence.
    Atomics.store(this.i32, C.IDLE + worker, idle ? 1 : 0);
  }

  isIdle(worker: number): boolean {
    // SC load: pairs with `setIdle`.
    return Atomics.load(this.i32, C.IDLE + worker) === 1;
  }
}

function wake(i32: Int32Array, word: number): void {
  // SC add before the notify: a worker that read the word as its ticket but has not slept yet
  // finds it changed and does not sleep.
  Atomics.add(i32, word, 1);
  Atomics.notify(i32, word);
}

/**
 * A stream's signal as its producers see it: SLEEPERS is the word they load after their odd
 * store (see Signal); waking reads the WAITERS mask and wakes each parked worker's own word.
 */
class StreamSignal extends Signal {
  private readonly masks: number;

  constructor(i32: Int32Array, base: number) {
    super(i32, WAKE, base);
    this.masks = base + 1;
  }

  // Only the producer side of a Signal: workers park through `SpineControl.parker`.
  override announce(): number {
    throw new Error('a stream signal is woken by producers only; workers park with SpineControl.parker');
  }

  override wakeAll(): void {
    const i32 = this.words;
    for (let m = 0; m < MASK_WORDS; m++) {
      // SC load: a worker sets its bit before it counts itself in SLEEPERS, which the producer
      // loaded before calling here, so every worker it must wake has its bit visible.
      let bits = Atomics.load(i32, this.masks + m);
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits);
        bits &= ~(1 << bit);
        wake(i32, WAKE + m * 32 + bit);
      }
    }
  }
}

/** No streams announced (one shared list: a fresh `[]` per park was garbage). */
const NONE: readonly number[] = [];

/**
 * How a worker parks. `announce` sets its bit in the WAITERS mask and counts it in SLEEPERS of
 * every stream it consumes, then reads its own WAKE word as the ticket; the caller re-checks
 * its consumers and sleeps on that word; `retire` undoes the announcement. It tells the adaptive
 * wait whether the system's core budget allows a long spin.
 */
class WorkerParker implements Parker {
  private readonly i32: Int32Array;
  private readonly word: number;
  private readonly maskWord: number;
  private readonly bit: number;
  private readonly streams: () => readonly number[];
  private readonly budget: CoreBudget;
  private announced: readonly number[] = NONE;

  constructor(i32: Int32Array, worker: number, streams: () => readonly number[], budget: CoreBudget) {
    this.i32 = i32;
    this.word = WAKE + worker;
    this.maskWord = worker >> 5;
    this.bit = 1 << (worker & 31);
    this.streams = streams;
    this.budget = budget;
  }

  announce(): number {
    const announced = this.streams();
    this.announced = announced;
    for (let i = 0; i < announced.length; i++) {
      const base = STREAMS + announced[i]! * STREAM_WORDS;
      // SC or, then SC add: the bit is visible to any producer that sees the count.
      Atomics.or(this.i32, base + 1 + this.maskWord, this.bit);
      Atomics.add(this.i32, base, 1);
    }
    // SC load: the ticket; a wake-up after this changes the word and `park` returns at once.
    return Atomics.load(this.i32, this.word);
  }

  park(ticket: number, timeoutMs: number): void {
    Atomics.wait(this.i32, this.word, ticket, timeoutMs);
  }

  coreFree(): boolean {
    return this.budget.coreFree();
  }

  retire(): void {
    const announced = this.announced;
    for (let i = 0; i < announced.length; i++) {
      const base = STREAMS + announced[i]! * STREAM_WORDS;
      // SC sub, then SC and: counted out first, so a producer never misses a counted sleeper.
      Atomics.sub(this.i32, base, 1);
      Atomics.and(this.i32, base + 1 + this.maskWord, ~this.bit);
    }
    this.announced = NONE;
  }
}
