import { Worker } from 'node:worker_threads';

/**
 * Starts a real worker thread on a TypeScript module. Node 20 does not carry `--import tsx`
 * into workers, so the worker is bootstrapped with a one-line ESM that registers tsx first.
 */
export function startWorker(module: URL, workerData: unknown): Worker {
  // An eval'd worker resolves bare specifiers from the working directory: the repository root.
  const code = `import { register } from 'tsx/esm/api'; register(); await import(${JSON.stringify(module.href)});`;
  return new Worker(code, { eval: true, workerData });
}

/** Resolves with the worker's first message; rejects if it errors or exits first. */
export function firstMessage<T>(worker: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before answering`)));
  });
}

/** Resolves when the worker exits (rejects on an error event). */
export function exited(worker: Worker): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', resolve);
  });
}
