/** Starts the instrumentation fixtures on real worker threads and talks to them. */
import type { Worker } from 'node:worker_threads';
import type { ThreadBuffersDescriptor } from '../../src/index.js';
import type { CollectedThread } from '../fixtures/instrumentation/collector.js';
import type { EmitterDone } from '../fixtures/instrumentation/emitter.js';
import type { ScriptArgs, ScriptName } from '../fixtures/instrumentation/scripts.js';
import { compiledUrl } from '../helpers/compiled.js';
import { exited, messageOfType, startWorker } from '../helpers/workers.js';

const fixture = (name: string) => compiledUrl(`../fixtures/instrumentation/${name}.ts`, import.meta.url);

/** An emitter worker, ready to run scripts; bound to `buffers` if given. */
export async function startEmitter(buffers?: ThreadBuffersDescriptor): Promise<Worker> {
  const worker = startWorker(fixture('emitter'), buffers === undefined ? {} : { buffers });
  await messageOfType(worker, 'ready');
  return worker;
}

/** An emitter that is expected to fail at start: the promise of its end (rejected with its error). */
export function emitterEnd(buffers: ThreadBuffersDescriptor): Promise<number> {
  return exited(startWorker(fixture('emitter'), { buffers }));
}

/** Runs a script in an emitter and resolves once it is done. */
export async function run(worker: Worker, script: ScriptName, args: ScriptArgs): Promise<EmitterDone> {
  const done = messageOfType<EmitterDone>(worker, 'done');
  worker.postMessage({ type: 'run', script, args });
  return done;
}

/** Asks a worker to leave and waits for its exit. */
export async function stop(worker: Worker): Promise<void> {
  worker.postMessage({ type: 'exit' });
  await exited(worker);
}

/** A collector worker reading `buffers`, its consumers open from `from`. */
export async function startCollector(
  buffers: ThreadBuffersDescriptor[],
  from: 'oldest' | 'head' = 'oldest',
): Promise<Worker> {
  const worker = startWorker(fixture('collector'), { buffers, from });
  await messageOfType(worker, 'ready');
  return worker;
}

/** Everything the collector can read now, per descriptor, in the order it was given them. */
export async function collect(collector: Worker): Promise<CollectedThread[]> {
  const answer = messageOfType<{ type: 'collected'; threads: CollectedThread[] }>(collector, 'collected');
  collector.postMessage('collect');
  return (await answer).threads;
}

export async function stopCollector(collector: Worker): Promise<void> {
  collector.postMessage('exit');
  await exited(collector);
}
