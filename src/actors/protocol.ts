/**
 * The protocol between the System (main thread) and its worker threads, as typed unions.
 * Control that must be fast (phase changes, wake-ups, idle flags) goes through the spine's
 * shared control block instead; these messages carry setup, names, reports and crashes.
 */
import type { WaitStrategyName } from '../queues/index.js';
import type {
  AdapterPositions,
  AdapterStart,
  AdapterStreamStats,
  AdapterTimingStats,
  SpineDescriptor,
} from '../spine/index.js';
import type { ThreadBuffersDescriptor } from '../telemetry/instrumentation/index.js';

export interface ActorAssignment {
  readonly id: number;
  /** The actor module's URL (href). */
  readonly module: string;
  /** Structured-cloned and passed to the actor's constructor. */
  readonly args: unknown;
  readonly start: AdapterStart;
}

export interface ActorWorkerData {
  readonly worker: number;
  /** The wait strategy's name: how the thread parks when idle. */
  readonly wait: WaitStrategyName;
  readonly spine: SpineDescriptor;
  readonly actors: readonly ActorAssignment[];
  /** Names of the actors known when this worker starts, by id (for observers). */
  readonly names: Readonly<Record<number, string>>;
  /** The thread's instrumentation buffers, bound before any actor module loads. */
  readonly instrumentation: ThreadBuffersDescriptor;
}

export interface ErrorInfo {
  readonly message: string;
  readonly stack?: string;
}

export type FromWorker =
  | { readonly type: 'initialized'; readonly actors: readonly { id: number; name: string }[] }
  | { readonly type: 'init-failed'; readonly module: string; readonly error: ErrorInfo }
  | {
      readonly type: 'crashed';
      readonly actor: number;
      readonly name: string;
      readonly stream?: string;
      readonly error: ErrorInfo;
      /** Where the crashed actor's consumers were: a restart resumes there. */
      readonly positions: AdapterPositions;
      /** What every actor of the thread did until the crash (a restart starts counting anew). */
      readonly actors: readonly ActorReport[];
    }
  | { readonly type: 'exited'; readonly actors: readonly ActorReport[] }
  | { readonly type: 'names-received' };

export type ToWorker =
  /** `ack`: answer 'names-received' (at start, before any actor runs). */
  | { readonly type: 'names'; readonly names: Readonly<Record<number, string>>; readonly ack?: boolean }
  /** An actor spawned after this worker started: its timing queue, for observers. */
  | { readonly type: 'timing-queue'; readonly actor: number; readonly buffer: SharedArrayBuffer };

export interface ActorReport {
  readonly id: number;
  readonly name: string;
  readonly streams: readonly AdapterStreamStats[];
  /** For observers: what they read of each actor's timing queue, losses included. */
  readonly timings: readonly AdapterTimingStats[];
}

export function errorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error)
    return { message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  return { message: String(error) };
}
