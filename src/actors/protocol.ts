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
  /** Where its adapter keeps its figures (`SpineAdapter`'s `figures`): new for each incarnation. */
  readonly figures: SharedArrayBuffer;
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
  /** Its actors' modules loaded and constructed, their names checked: before any `onInit`. */
  | { readonly type: 'loaded'; readonly actors: readonly { id: number; name: string }[] }
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
      readonly actors: readonly WorkerActorReport[];
    }
  | { readonly type: 'exited'; readonly actors: readonly WorkerActorReport[] }
  | { readonly type: 'names-received' };

export type ToWorker =
  /** `ack`: answer 'names-received' (at start, before any actor runs). */
  | { readonly type: 'names'; readonly names: Readonly<Record<number, string>>; readonly ack?: boolean }
  /** An actor spawned after this worker started: its timing queue, for observers. */
  | { readonly type: 'timing-queue'; readonly actor: number; readonly buffer: SharedArrayBuffer };

/** What one actor did on one stream, every incarnation summed (see `ActorReport`). */
export interface ActorStreamCounts extends AdapterStreamStats {
  /**
   * Published on the stream from the message its consumer would have read next when its thread
   * ended (its last incarnation's, or a crashed one's no restart took over), and still in the
   * ring: never read (what the ring wrote over before it was read is in `lost`). Nonzero when the
   * stop did not drain, or the actor crashed and was not restarted; 0 for a stream it never
   * consumed. With it, `handled + skipped + lost + failed + unread` is every message published on
   * the stream from where the actor began reading to the end of the run.
   */
  readonly unread: number;
}

/** What an observer did with one actor's timing queue, every incarnation summed (see `ActorReport`). */
export interface ActorTimingCounts extends AdapterTimingStats {
  /**
   * Timing records written from the one its reader would have read next when its thread ended,
   * and still in the ring: never read (those written over are in `lost`). With it,
   * `handled + lost + unread` is every record written from where the observer began reading to
   * the end of the run (for an observer terminated in a handler, that record counts as unread).
   */
  readonly unread: number;
}

export interface ActorReport {
  readonly id: number;
  readonly name: string;
  readonly streams: readonly ActorStreamCounts[];
  /** For observers: what they read of each actor's timing queue, losses included. */
  readonly timings: readonly ActorTimingCounts[];
}

/**
 * What a worker reports of one of its actors: its adapter's figures, and per stream (and timing
 * queue) the sequence its consumer would have read next (null: it never consumed that stream),
 * from which the system counts what was left unread once every thread has ended.
 */
export interface WorkerActorReport {
  readonly id: number;
  readonly name: string;
  readonly streams: readonly AdapterStreamStats[];
  readonly timings: readonly AdapterTimingStats[];
  readonly stoppedAt: readonly (number | null)[];
  /** Per actor id whose timing queue it read, the sequence its reader would have read next. */
  readonly timingsStoppedAt: Readonly<Record<number, number>>;
}

export function errorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error)
    return { message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  return { message: String(error) };
}
