/** What `System` takes and returns: spawn and system options, the stop report. */
import { ConfigError } from '../errors.js';
import { checkOptionNames, type OptionNames } from '../options.js';
import type { QueueStats, WaitStrategyName } from '../queues/index.js';
import type { SpineOptions } from '../spine/index.js';
import type { PersistReport } from './attachments.js';
import type { ActorCrashedError } from './errors.js';
import type { ActorReport } from './protocol.js';

export interface SpawnOptions {
  /** Actors spawned with the same thread name share one worker, run round-robin. */
  readonly thread?: string;
  /** Passed (structured-cloned) to the actor's constructor. */
  readonly args?: unknown;
  /** Restart the actor this many times if it crashes (single-actor threads only). Default 0. */
  readonly restarts?: number;
  /**
   * How the actor's thread waits when idle: 'adaptive' (default: spin ~10 µs, then park; up to
   * 200 µs while the system has no more threads than cores), 'blocking', 'spin-then-yield' or
   * 'busy-spin' (lowest latency; only while busy-spinning threads are fewer than cores). Actors
   * sharing a thread must agree.
   */
  readonly wait?: WaitStrategyName;
}

export interface SystemOptions {
  readonly spine?: SpineOptions;
  /**
   * Persist every message, timing record and instrumentation event of the run: `{ data: dir }`
   * (the embedded lake) or `{ url }` (an ingestion server). See `PersistOptions`; its shape is
   * checked by the persister when the system is made.
   */
  readonly persist?: PersistOptions;
  /** How long `stop` lets consumers drain before it tells threads to exit, in ms. Default 3000. */
  readonly drainTimeoutMs?: number;
  /** How long `stop` waits for threads to exit before terminating them, in ms. Default 5000. */
  readonly exitTimeoutMs?: number;
  /**
   * How long `start` waits for every actor's `onInit` to return (and its thread to answer), in
   * ms; past it, the threads not started are terminated and `start` fails naming them, so that a
   * start (and `run`) always settles. Default 60000.
   */
  readonly startTimeoutMs?: number;
  /**
   * Slots of each instrumentation queue of every thread the system makes buffers for (its actor
   * threads, and the thread that makes it if that has none yet), powers of two. Defaults: 4096
   * logs, 4096 metrics, 8192 span events. A thread that records faster than the persister reads
   * between two of its passes laps its queue, and what was overwritten is counted lost: an actor
   * that opens a span per message at tens of thousands of messages a second wants span rings
   * as deep as its streams' (the market example's strategy: `spanCapacity: 1 << 15`).
   */
  readonly instrumentation?: InstrumentationCapacities;
}

/** `SystemOptions.instrumentation`: the depth of each instrumentation queue of a thread. */
export interface InstrumentationCapacities {
  readonly logCapacity?: number;
  readonly metricCapacity?: number;
  readonly spanCapacity?: number;
}

/** Every option name, checked by the compiler against the interfaces above. */
export const SYSTEM_OPTIONS = {
  spine: true,
  drainTimeoutMs: true,
  exitTimeoutMs: true,
  startTimeoutMs: true,
  persist: true,
  instrumentation: true,
} as const satisfies OptionNames<SystemOptions>;

export const INSTRUMENTATION_OPTIONS = {
  logCapacity: true,
  metricCapacity: true,
  spanCapacity: true,
} as const satisfies OptionNames<InstrumentationCapacities>;

/** Refuses instrumentation capacities that are not powers of two from 2 to 2^30, naming the option. */
export function checkInstrumentationCapacities(options: InstrumentationCapacities): void {
  checkOptionNames(options, INSTRUMENTATION_OPTIONS, 'System option', 'instrumentation');
  for (const name of Object.keys(INSTRUMENTATION_OPTIONS) as (keyof InstrumentationCapacities)[]) {
    const value = options[name];
    if (value === undefined) continue;
    if (!(Number.isSafeInteger(value) && value >= 2 && value <= 2 ** 30 && (value & (value - 1)) === 0)) {
      throw new ConfigError(
        `System option 'instrumentation.${name}' must be a power of two from 2 to 2^30, got ${String(value)}`,
      );
    }
  }
}

export const SPINE_OPTIONS = {
  timingCapacity: true,
  maxConsumers: true,
  poisonTimeoutMs: true,
  cores: true,
} as const satisfies OptionNames<SpineOptions>;

export const SPAWN_OPTIONS = {
  thread: true,
  args: true,
  restarts: true,
  wait: true,
} as const satisfies OptionNames<SpawnOptions>;

export const RUN_OPTIONS = { seconds: true } as const satisfies OptionNames<RunOptions>;

/** What `run` takes. */
export interface RunOptions {
  /** How long to run before the graceful stop, in seconds (a finite number ≥ 0). */
  readonly seconds: number;
}

/** What `stop` (and `run`) return: every actor's per-stream figures and how the stop went. */
export interface SystemReport {
  readonly actors: readonly ActorReport[];
  /** Per stream (by stream name): the queue's count and every consumer's position and loss. */
  readonly streams: readonly (QueueStats & { readonly stream: string })[];
  /** Ingress messages refused because they came after `stop` began. */
  readonly refused: number;
  /**
   * False if consumers were still busy when the drain timeout ran out, or if an actor left
   * messages unread (one that crashed for good, say: see each actor's `unread`).
   */
  readonly drained: boolean;
  /** Threads that did not exit in time and were terminated. */
  readonly terminated: readonly string[];
  /** Every crash, those healed by a restart too. */
  readonly crashes: readonly ActorCrashedError[];
  /** The crash that stopped the system (the first one no restart healed), if one did. */
  readonly failure?: ActorCrashedError;
  /** What the persister recorded and missed, with `persist`. */
  readonly persist?: PersistReport;
}

/** Where and how a system persists its run (`SystemOptions.persist`). */
export interface PersistOptions {
  /** The embedded lake's directory (SQLite + blob files), e.g. `'./dorsal-data'`. */
  readonly data?: string;
  /** An ingestion server, e.g. `'http://127.0.0.1:8081'` (instead of `data`). */
  readonly url?: string;
  /** The server's API key (default: the `DORSAL_KEY` environment variable). */
  readonly key?: string;
  /** A block is cut at this many bytes of records (default 1 MiB)… */
  readonly blockBytes?: number;
  /** …or once its first record is this old, in ms (default 1000): a quiet stream reaches the lake within about that. */
  readonly blockMs?: number;
  /**
   * How long `stop` waits for the last blocks to reach the lake, in ms (default 10 000). Half of
   * it (3 s at most) is kept for the run's account (each stream's last coverage, the counts):
   * blocks not sent by then are set aside (dropped, and counted lost in that account). Blocks in
   * flight at the end, and the sink's drop counts, are waited for up to two seconds more.
   */
  readonly flushTimeoutMs?: number;
  /**
   * With `url`: a request to the server ends when no byte moves for this long, or when its answer
   * is not whole this long after its body went, in ms (default 10 000); it is then tried again.
   * Raise it for large blocks over a slow link (a block's upload is one request).
   */
  readonly requestTimeoutMs?: number;
  /**
   * Bytes of records waiting for compression, at most (default 256 MiB): the memory the
   * persister may hold when compression or the lake cannot keep up. Past it, a block's records
   * are dropped and counted lost, in the report and in the lake; a block that finds nothing
   * waiting is taken whatever its size (so a backlog smaller than a block still persists).
   */
  readonly backlogBytes?: number;
  /**
   * More properties of the run's process in the lake (e.g. `dorsal.system`: the system module it
   * ran, `dorsal.replay_of`: the process it replays), beside those the persister writes.
   */
  readonly properties?: Readonly<Record<string, string>>;
}

/** The longest timer Node keeps (a longer one fires at once, with a warning). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Refuses `drainTimeoutMs`, `exitTimeoutMs` and `startTimeoutMs` that are not a number of ms a timer can wait. */
export function checkStopTimeouts(options: SystemOptions): void {
  for (const name of ['drainTimeoutMs', 'exitTimeoutMs', 'startTimeoutMs'] as const) {
    const value = options[name];
    if (value === undefined) continue;
    if (!(typeof value === 'number' && value >= 0 && value <= MAX_TIMEOUT_MS)) {
      throw new ConfigError(
        `System option '${name}' must be a number of ms from 0 to ${MAX_TIMEOUT_MS}, got ${typeof value === 'string' ? `'${value}'` : String(value)}`,
      );
    }
  }
}

/** Refuses spawn options of the wrong kind, naming the option, before anything is registered. */
export function checkSpawnOptions(options: SpawnOptions): void {
  checkOptionNames(options, SPAWN_OPTIONS, 'spawn option');
  const { restarts, thread } = options;
  if (options.args !== undefined) {
    try {
      // What the worker is given: refused here, not as a DataCloneError of the thread's launch.
      structuredClone(options.args);
    } catch (error) {
      throw new ConfigError(
        `spawn option 'args' must be a value a worker can be sent (structured-cloneable: no functions, no class instances' methods): ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  if (restarts !== undefined && !(Number.isSafeInteger(restarts) && restarts >= 0)) {
    throw new ConfigError(`spawn option 'restarts' must be an integer ≥ 0, got ${String(restarts)}`);
  }
  if (thread !== undefined && (typeof thread !== 'string' || thread.length === 0)) {
    throw new ConfigError(`spawn option 'thread' must be a non-empty string, got ${String(thread)}`);
  }
}
