import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { isTypeScriptModule, startModuleWorker } from '../module-worker.js';
import { ActorModuleError } from './errors.js';
import type { ActorWorkerData } from './protocol.js';

/**
 * Starts an actor worker. When dorsal itself runs from TypeScript sources (its tests) or an
 * actor module is a `.ts` file, the worker first registers tsx: Node 20 does not carry
 * `--import tsx` into workers.
 */
export function launchActorWorker(data: ActorWorkerData): Worker {
  const extension = isTypeScriptModule(import.meta.url) ? '.ts' : '.js';
  const entry = new URL(`./worker-main${extension}`, import.meta.url);
  const typescript = extension === '.ts' || data.actors.some((a) => isTypeScriptModule(a.module));
  return startModuleWorker(entry, { workerData: data }, typescript);
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
