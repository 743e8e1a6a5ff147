import type { Spine } from '../spine/index.js';
import type {
  InstrumentationDrops,
  InstrumentationStreamName,
  ThreadBuffersDescriptor,
} from '../telemetry/instrumentation/index.js';
import type { ActorReport } from './protocol.js';

/** An actor of the system, as an attachment sees it. */
export interface AttachedActor {
  readonly id: number;
  /** Known once the actor's thread has loaded it. */
  readonly name: string | undefined;
  /** The module's URL (href). */
  readonly module: string;
  /** The name of the thread it runs on (`actor-<id>` unless spawned with `thread`). */
  readonly thread: string;
  /** The instrumentation buffers of its thread (shared by the actors of one thread). */
  readonly instrumentation: ThreadBuffersDescriptor;
}

/**
 * Where each queue of a thread's instrumentation buffers stood: what comes after is the run's.
 * `dropsBefore`: what the thread had dropped at the source by then (else read when the persister
 * attaches, and drops in between are counted nowhere).
 */
export type InstrumentationPositions = Readonly<Record<InstrumentationStreamName, number>> & {
  readonly dropsBefore?: Readonly<Record<InstrumentationStreamName, InstrumentationDrops>>;
};

/** What the system offers an attachment. */
export interface AttachmentHost {
  readonly spine: Spine;
  /** The actors spawned so far, by id. */
  actors(): readonly AttachedActor[];
  /** Per stream index, the sequence where the system's consumers start. */
  readonly startAt: readonly number[];
  /**
   * A worker index of the spine's control block reserved for the attachment's thread: its own
   * futex word, which a phase change wakes (see `SpineControl.parker`).
   */
  readonly worker: number;
  /**
   * The instrumentation buffers of the thread that runs the system (the main thread), and where
   * their queues stood when the system was made.
   */
  readonly instrumentation: {
    readonly buffers: ThreadBuffersDescriptor;
    readonly from: InstrumentationPositions;
  };
}

/** What the system counted, handed to its attachments at the stop (the persister keeps it in the lake). */
export interface SystemCounts {
  /** Per actor, every incarnation summed: what its consumers and producers counted. */
  readonly actors: readonly ActorReport[];
  /** Ingress messages refused because they came after the stop began. */
  readonly refused: number;
  /** False if consumers were still busy when the drain timeout ran out. */
  readonly drained: boolean;
  /**
   * Threads that did not exit in time and were terminated: their actors did not report, their
   * figures were read from shared memory (as of each one's last commit, timing reads included).
   */
  readonly terminated: readonly string[];
}

/**
 * Something a system runs beside its actors for its whole life (the persister). `start` runs
 * before any actor runs, `stop` after every actor thread has ended, with what the system counted;
 * what `stop` returns goes into the report under the attachment's option name.
 */
export interface SystemAttachment {
  start(host: AttachmentHost): Promise<void>;
  /** An actor was spawned after the start (its timing queue exists). */
  actorSpawned(actor: AttachedActor): void;
  /** Every actor's name is known (the start is complete). */
  actorsNamed(actors: readonly AttachedActor[]): void;
  stop(counts: SystemCounts): Promise<unknown>;
  /** The system failed to start: give back whatever was started, fast. */
  abort(): Promise<void>;
}

/** What the persister says at stop, per source (a spine stream, an actor's timing queue, a thread's instrumentation queue). */
export interface PersistedSource {
  /** `'messages'`, `'timings'`, or an instrumentation queue's: `'log'`, `'metrics'`, `'spans'`. */
  readonly kind: 'messages' | 'timings' | 'log' | 'metrics' | 'spans';
  /** The spine stream, the actor, or the thread. */
  readonly name: string;
  /** Records that reached the lake's blocks (handed to the sink). */
  readonly persisted: number;
  /** Records the persister missed (lapped, or their writer died), recorded in the lake too. */
  readonly lost: number;
  /**
   * Instrumentation only: events the thread dropped at the source, never written to its queue
   * (a string that could not be interned, a span opened 128 deep), recorded in the lake too.
   */
  readonly dropped?: number;
}

/** The persister's part of a stop report (`report.persist`). */
export interface PersistReport {
  /** Where the records went: a lake directory or an ingestion URL. */
  readonly target: string;
  readonly processId: string;
  readonly sources: readonly PersistedSource[];
  /** Blocks handed to the sink, and blocks it could not deliver (counted, reported to the lake when it can). */
  readonly blocks: number;
  readonly blocksDropped: number;
  /** True if every block reached the lake (none left when the flush deadline came, none dropped). */
  readonly flushed: boolean;
  /**
   * Why the persister failed, if it did (its thread died, a block could not be made): what it
   * had not shipped is counted lost above, and in the lake when it could still be reached.
   */
  readonly failure?: string;
  /** Why the last block (or drop count) the lake did not take was not taken, when one was not. */
  readonly deliveryError?: string;
  /**
   * Why each copying thread that was started again had died (at most 3 a run): its successor
   * read on from the last block it had cut, and what the rings overwrote meanwhile is counted lost.
   */
  readonly restarts?: readonly string[];
}

/** Makes an attachment from the value of its system option (checked there). */
export type AttachmentFactory = (options: unknown) => SystemAttachment;

/** A system option backed by an attachment: a light check of its value, and the loader of its code. */
export interface SystemOptionHandler {
  /** Throws a `ConfigError` naming what is wrong with the option's value (when the system is made). */
  check(value: unknown): void;
  /** Loads the attachment's code (when the system starts). */
  load(): Promise<AttachmentFactory>;
}

const registry = new Map<string, SystemOptionHandler>();

/**
 * Registers a system option backed by an attachment. The public face registers `persist`, whose
 * loader imports the telemetry layer only when a system uses it, so that importing the actors
 * loads no database or compression code, and no lower layer imports a higher one.
 */
export function registerSystemOption(name: string, handler: SystemOptionHandler): void {
  registry.set(name, handler);
}

/** The handler registered for `name`, if any. */
export function systemOptionHandler(name: string): SystemOptionHandler | undefined {
  return registry.get(name);
}
