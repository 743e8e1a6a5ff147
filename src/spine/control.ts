import { Signal } from '../queues/index.js';

/**
 * The spine's control block, shared by every thread of a system:
 *
 * ```
 * byte 0    ┌ MAGIC · PHASE · WAKE · SLEEPERS (the spine signal) · REFUSED ────────────────┐
 * byte 32   ├ CLOCK_BASE_F64 (hrtime ns at creation: every thread's clock counts from it)  ─┤
 * byte 64   ├ worker table: MAX_WORKERS Int32 words, 1 while that worker's last round was idle ┤
 *           └────────────────────────────────────────────────────────────────────────────────┘
 * ```
 */
const C = {
  MAGIC: 0,
  PHASE: 1,
  WAKE: 2,
  SLEEPERS: 3,
  REFUSED: 4,
  CLOCK_BASE_F64: 4,
  WORKERS: 16,
} as const;
const CONTROL_MAGIC = 0x64727370; // 'drsp'
export const MAX_WORKERS = 256;

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
  /** The signal every spine producer wakes and every idle worker parks on. */
  readonly signal: Signal;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.signal = new Signal(this.i32, C.WAKE, C.SLEEPERS);
  }

  static create(clockBaseNs: number): SpineControl {
    const control = new SpineControl(new SharedArrayBuffer((C.WORKERS + MAX_WORKERS) * 4));
    // Plain stores before the buffer is shared (postMessage orders them).
    control.i32[C.MAGIC] = CONTROL_MAGIC;
    control.f64[C.CLOCK_BASE_F64] = clockBaseNs;
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

  /** Moves every thread to `phase` and wakes the ones that are parked. */
  setPhase(phase: PhaseValue): void {
    // SC store, then a wake-up: a parked worker re-reads the phase when it wakes.
    Atomics.store(this.i32, C.PHASE, phase);
    this.signal.wakeAll();
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
    Atomics.store(this.i32, C.WORKERS + worker, idle ? 1 : 0);
  }

  isIdle(worker: number): boolean {
    // SC load: pairs with `setIdle`.
    return Atomics.load(this.i32, C.WORKERS + worker) === 1;
  }
}
