import { isMainThread, threadId } from 'node:worker_threads';
import { ConfigError } from '../../errors.js';
import { SeqlockQueue } from '../../queues/index.js';
import { checkDescriptor, createThreadBuffers, type ThreadBuffersDescriptor } from './descriptor.js';
import { LogEvent, MetricEvent, SpanEvent } from './events.js';
import { StringInterner } from './string-table.js';
import { ThreadWriter } from './thread-writer.js';

/** This thread's writer: bound explicitly, or made on the first event. */
let current: ThreadWriter | undefined;
const rebindListeners: (() => void)[] = [];

/**
 * The calling thread's writer. A thread that bound no buffers gets its own on its first event
 * (a plain process, or a worker started without them): find them with `currentThreadBuffers()`.
 */
export function threadWriter(): ThreadWriter {
  return current ?? bindLazily();
}

function bindLazily(): ThreadWriter {
  bindThreadInstrumentation(createThreadBuffers({ name: isMainThread ? 'main' : `worker-${threadId}` }));
  return current!;
}

/**
 * Makes `descriptor` this thread's buffers: every later log, metric and span of the thread goes
 * there, and the thread adopts their process's level table and clock base. Call it before the
 * thread's first event (in a worker: before importing modules that log at load). Binding again
 * replaces buffers that recorded nothing; buffers that did are kept, with a `ConfigError`. A
 * `ConfigError` too if another thread holds these buffers (see `releaseThreadBuffers`).
 *
 * @example
 * // worker.ts
 * import { workerData } from 'node:worker_threads';
 * bindThreadInstrumentation(workerData.instrumentation);
 * await import('./actor.js');
 */
export function bindThreadInstrumentation(descriptor: ThreadBuffersDescriptor): void {
  const checked = checkDescriptor(descriptor);
  if (current !== undefined) {
    if (current.descriptor.strings === checked.strings) return;
    if (current.used) {
      throw new ConfigError(
        `this thread already records into its buffers '${current.descriptor.name}' (currentThreadBuffers()): bind before its first event`,
      );
    }
    current.close();
    current = undefined;
  }
  current = new ThreadWriter(checked);
  for (const listener of rebindListeners) listener();
}

/**
 * This thread's buffers if it has bound (or made) any, and whether it recorded into them; made
 * by nothing. A System asks it before it gives its own thread buffers on its spine's clock.
 */
export function boundThreadBuffers():
  | { readonly descriptor: ThreadBuffersDescriptor; readonly used: boolean }
  | undefined {
  return current === undefined ? undefined : { descriptor: current.descriptor, used: current.used };
}

/** This thread's buffers, made now if it has none: what a persister attaches to. */
export function currentThreadBuffers(): ThreadBuffersDescriptor {
  return threadWriter().descriptor;
}

/**
 * Frees the buffers of a thread known to be dead (a crashed worker), so that its replacement can
 * bind them: it resumes where the dead one stopped (string ids, span ids, sequences). Never call
 * it for a live thread: two writers would corrupt the buffers.
 */
export function releaseThreadBuffers(descriptor: ThreadBuffersDescriptor): void {
  const d = checkDescriptor(descriptor);
  SeqlockQueue.attach(LogEvent, d.logs).releaseProducer();
  SeqlockQueue.attach(MetricEvent, d.metrics).releaseProducer();
  SeqlockQueue.attach(SpanEvent, d.spans).releaseProducer();
  StringInterner.release(d.strings);
}

/**
 * Releases this thread's buffers (their roles go back; events stay readable): for a thread that
 * is done recording, or a test. Its next event binds new buffers.
 */
export function unbindThreadInstrumentation(): void {
  current?.close();
  current = undefined;
  for (const listener of rebindListeners) listener();
}

/** Called after every bind and unbind: loggers and cached ids re-resolve against the new buffers. */
export function onRebind(listener: () => void): void {
  rebindListeners.push(listener);
}
