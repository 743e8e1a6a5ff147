import type { Worker } from 'node:worker_threads';
import { startModuleWorker } from '../../src/module-worker.js';

/**
 * Starts a real worker thread on a module, with dorsal's own bootstrap: compiled JavaScript
 * (`compiledUrl`) as the tests name it, or a TypeScript module, which the worker loads through
 * tsx (Node 20 does not carry `--import tsx` into workers: see startModuleWorker).
 */
export function startWorker(module: URL, workerData: unknown, env?: Record<string, string>): Worker {
  const worker = startModuleWorker(module, {
    workerData,
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  // Listen for the exit from the start: a worker may be gone before a test asks.
  exits.set(
    worker,
    new Promise<number>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', resolve);
    }),
  );
  return worker;
}

const exits = new WeakMap<Worker, Promise<number>>();

/** Resolves with the worker's first message; rejects if it errors or exits first. */
export function firstMessage<T>(worker: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before answering`)));
  });
}

/** Resolves with the exit code once the worker has exited, even if it exited before this call. */
export function exited(worker: Worker): Promise<number> {
  const exit = exits.get(worker);
  if (exit === undefined) throw new Error('exited() only knows workers made by startWorker()');
  return exit;
}

/** Resolves with the worker's first message whose `type` is `type`; rejects if it errors or exits first. */
export function messageOfType<T extends { type: string }>(worker: Worker, type: T['type']): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (message: T) => {
      if (message?.type !== type) return;
      cleanup();
      resolve(message);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`worker exited with code ${code} before sending '${type}'`));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}
