import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ActorModuleError } from './errors.js';
import type { ActorWorkerData } from './protocol.js';

const TYPESCRIPT = /\.[mc]?ts$/;

/**
 * Starts an actor worker. When dorsal itself runs from TypeScript sources (its tests) or an
 * actor module is a `.ts` file, the worker first registers tsx: Node 20 does not carry
 * `--import tsx` into workers.
 */
export function launchActorWorker(data: ActorWorkerData): Worker {
  const extension = TYPESCRIPT.test(import.meta.url) ? '.ts' : '.js';
  const entry = new URL(`./worker-main${extension}`, import.meta.url);
  const needsTsx =
    extension === '.ts' || data.actors.some((a) => TYPESCRIPT.test(new URL(a.module).pathname));
  if (!needsTsx) return new Worker(entry, { workerData: data });
  const code = `import { register } from 'tsx/esm/api'; register(); await import(${JSON.stringify(entry.href)});`;
  return new Worker(code, { eval: true, workerData: data });
}

/** Normalizes a module given to `spawn` to a URL href, and checks a file module exists. */
export function actorModuleHref(module: URL | string): string {
  let url: URL;
  try {
    url = module instanceof URL ? module : new URL(module);
  } catch {
    url = pathToFileURL(String(module));
  }
  if (url.protocol === 'file:' && !existsSync(fileURLToPath(url))) {
    throw new ActorModuleError(url.href, 'no such file');
  }
  return url.href;
}
