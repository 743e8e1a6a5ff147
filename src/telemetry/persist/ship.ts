import type { PersistOptions, PersistReport } from '../../actors/index.js';
import { ConfigError } from '../../errors.js';
import { checkOptionNames, type OptionNames } from '../../options.js';
import { Clock } from '../../spine/clock.js';
import {
  currentThreadBuffers,
  type ThreadBuffersDescriptor,
  ThreadBuffersReader,
} from '../instrumentation/index.js';
import { checkPersistValues, PERSIST_OPTIONS } from './options.js';
import { PersistPipeline } from './pipeline.js';
import type { StoredCounts } from './run-counts.js';

/** Where and how a plain process ships its instrumentation: a System's persist options, and more. */
export interface ShipInstrumentationOptions extends PersistOptions {
  /**
   * Buffers of other threads to ship too: workers this process started with buffers made by
   * `createThreadBuffers` (`attach` adds more later).
   */
  readonly threads?: readonly ThreadBuffersDescriptor[];
  /** Properties of the lake process, for people (`{ service: 'billing' }`). */
  readonly properties?: Readonly<Record<string, string>>;
}

const SHIP_OPTIONS = {
  ...PERSIST_OPTIONS,
  threads: true,
  properties: true,
} as const satisfies OptionNames<ShipInstrumentationOptions>;

/** A plain process's instrumentation on its way to the lake. */
export interface InstrumentationShipping {
  /** The lake process the events go to. */
  readonly processId: string;
  /** Ships another thread's buffers too: every event still in them, and what follows. */
  attach(buffers: ThreadBuffersDescriptor): void;
  /**
   * Ships everything recorded before the call, then stops (waiting at most `flushTimeoutMs` for
   * the lake); the report says, per thread and queue, what was persisted, lost and dropped.
   */
  stop(): Promise<PersistReport>;
}

/**
 * Ships the logs, metrics and spans of a process that runs no System to the lake, as a System's
 * persister does (the same thread, blocks and lake streams): the calling thread's buffers (made
 * now if it has none) and those of `threads`, each from the oldest event still in them. The
 * process's clock is the calling thread's instrumentation clock.
 *
 * @example
 * import { shipInstrumentation } from 'dorsal/persist';
 * const shipping = await shipInstrumentation({ data: './dorsal-data' });   // or { url, key }
 * log.info('billing', 'invoice sent', { amount: 12 });
 * const report = await shipping.stop();
 */
export async function shipInstrumentation(
  options: ShipInstrumentationOptions,
): Promise<InstrumentationShipping> {
  checkOptionNames(options, SHIP_OPTIONS, 'shipInstrumentation option');
  const persist = checkPersistValues(options as unknown as Readonly<Record<string, unknown>>);
  const threads = checkThreads(options.threads);
  const properties = checkProperties(options.properties);
  const own = currentThreadBuffers();
  const pipeline = new PersistPipeline(persist, own.clockBaseNs, new Clock(own.clockBaseNs).now());
  let processId: string;
  try {
    await pipeline.openLake();
    pipeline.addThread(own, 'oldest');
    for (const buffers of threads) pipeline.addThread(buffers, 'oldest');
    await pipeline.start();
    // Inside: nothing is left running behind a failed open (its sink's target, say).
    ({ processId } = pipeline.open(properties));
  } catch (error) {
    await pipeline.abort();
    throw error;
  }
  let stopped: Promise<PersistReport> | undefined;
  return {
    processId,
    attach: (buffers) => {
      if (stopped !== undefined) throw new ConfigError('cannot attach: the shipping has stopped');
      pipeline.addThread(ThreadBuffersReader.attach(buffers).descriptor, 'oldest');
    },
    stop: () => {
      // Counts of no actor: the lake gets the persister's account of every stream all the same.
      stopped ??= pipeline.stop(NO_ACTORS);
      return stopped;
    },
  };
}

/** The run's counts of a process that ships instrumentation alone: no actor counted anything. */
const NO_ACTORS: StoredCounts = { streams: [], timings: [], refused: 0, drained: true, terminated: [] };

function checkThreads(value: unknown): ThreadBuffersDescriptor[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new ConfigError(`shipInstrumentation option 'threads' must be an array of thread buffers`);
  }
  // A ConfigError naming what is wrong with one that is not buffers of this version.
  return value.map(
    (buffers: unknown) => ThreadBuffersReader.attach(buffers as ThreadBuffersDescriptor).descriptor,
  );
}

function checkProperties(value: unknown): Readonly<Record<string, string>> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`shipInstrumentation option 'properties' must be an object of strings`);
  }
  for (const [name, text] of Object.entries(value)) {
    if (typeof text !== 'string') {
      throw new ConfigError(
        `shipInstrumentation option 'properties.${name}' must be a string, got ${String(text)}`,
      );
    }
  }
  return value as Readonly<Record<string, string>>;
}
