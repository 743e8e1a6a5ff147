import { ConfigError } from '../../errors.js';
import { type Layout, SeqlockQueue } from '../../queues/index.js';
import { processContext } from './context.js';
import { LogEvent, MetricEvent, SpanEvent } from './events.js';
import { LevelTable } from './level-table.js';
import { StringTable, type StringTableSize } from './string-table.js';

/**
 * One thread's instrumentation buffers, as plain data and SharedArrayBuffers: post it to a worker
 * (`workerData`) and bind it there, or attach it from the persister's thread to read it.
 *
 * A thread has three queues, not one, each a lake stream of its own tagged as micromegas tags
 * them (`log`, `metrics`, `spans`), and one string table their events share:
 * - each kind has its layout: a span event is 32 bytes, a log with its properties 184; one
 *   layout for all would make every span pay for a log's fields, written and shipped;
 * - a flood of one kind laps only its own queue: a burst of debug logs does not cost the spans
 *   their nesting;
 * - all three stay per thread, where micromegas keeps logs and metrics per process: a process-wide
 *   queue would be a multi-producer one, whose producers claim slots with an atomic add and wait
 *   for each other (up to the poison timeout); per thread, no producer ever waits.
 */
export interface ThreadBuffersDescriptor {
  readonly format: typeof DESCRIPTOR_FORMAT;
  /** What the thread is, for people: the actor or worker it serves ('main' for the main thread). */
  readonly name: string;
  /** Every event time is nanoseconds since this base, on the spine clock's line. */
  readonly clockBaseNs: number;
  readonly strings: SharedArrayBuffer;
  readonly logs: SharedArrayBuffer;
  readonly metrics: SharedArrayBuffer;
  readonly spans: SharedArrayBuffer;
  /** The level table of the process: shared by every descriptor made in it. */
  readonly levels: SharedArrayBuffer;
}

export const DESCRIPTOR_FORMAT = 'dorsal.instrumentation/1';

export interface ThreadBuffersOptions extends StringTableSize {
  /** Default 'thread'. */
  readonly name?: string;
  /**
   * The clock base of the thread's events (default: the process's, taken on first need). A
   * System passes its spine's (`spine.control.clockBaseNs`), so that events and messages share
   * one time line.
   */
  readonly clockBaseNs?: number;
  /** Slots of each queue, powers of two. Defaults: 4096 logs, 4096 metrics, 8192 span events. */
  readonly logCapacity?: number;
  readonly metricCapacity?: number;
  readonly spanCapacity?: number;
  /** Readers each queue accepts at once (the persister, a live tail…). Default 8. */
  readonly maxReaders?: number;
}

/**
 * Makes the buffers of one thread, in the calling thread (the main thread, for its workers).
 *
 * @example
 * const buffers = createThreadBuffers({ name: 'strategy' });
 * const worker = new Worker(url, { workerData: { instrumentation: buffers } });
 * // in the worker: bindThreadInstrumentation(workerData.instrumentation);
 * // in the persister's thread: ThreadBuffersReader.attach(buffers)
 */
export function createThreadBuffers(options: ThreadBuffersOptions = {}): ThreadBuffersDescriptor {
  const context = processContext();
  const clockBaseNs = options.clockBaseNs ?? context.clockBaseNs;
  if (typeof clockBaseNs !== 'number' || !Number.isFinite(clockBaseNs)) {
    throw new ConfigError(`clockBaseNs must be a finite number of ns, got ${String(clockBaseNs)}`);
  }
  const maxConsumers = options.maxReaders ?? 8;
  const queue = <M extends object>(layout: Layout<M>, capacity: number) =>
    SeqlockQueue.create(layout, { capacity, maxConsumers }).buffer;
  return {
    format: DESCRIPTOR_FORMAT,
    name: options.name ?? 'thread',
    clockBaseNs,
    strings: StringTable.createBuffer(clockBaseNs, options),
    logs: queue(LogEvent, options.logCapacity ?? 4096),
    metrics: queue(MetricEvent, options.metricCapacity ?? 4096),
    spans: queue(SpanEvent, options.spanCapacity ?? 8192),
    levels: context.levels.buffer,
  };
}

/** Checks a descriptor's shape (one received from another thread); throws a `ConfigError` if wrong. */
export function checkDescriptor(value: unknown): ThreadBuffersDescriptor {
  const d = value as Partial<ThreadBuffersDescriptor> | null;
  if (d === null || typeof d !== 'object' || d.format !== DESCRIPTOR_FORMAT) {
    throw new ConfigError(
      `not instrumentation buffers of this version (expected format '${DESCRIPTOR_FORMAT}', from createThreadBuffers)`,
    );
  }
  for (const key of ['strings', 'logs', 'metrics', 'spans', 'levels'] as const) {
    if (!(d[key] instanceof SharedArrayBuffer)) {
      throw new ConfigError(`instrumentation buffers: '${key}' is not a SharedArrayBuffer`);
    }
  }
  StringTable.check(d.strings);
  LevelTable.attach(d.levels);
  if (typeof d.name !== 'string' || typeof d.clockBaseNs !== 'number') {
    throw new ConfigError('instrumentation buffers: name and clockBaseNs are missing');
  }
  return d as ThreadBuffersDescriptor;
}
