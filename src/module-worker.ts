import { Worker, type WorkerOptions } from 'node:worker_threads';

const TYPESCRIPT = /\.[mc]?ts$/;

/** True when `url` names a TypeScript module. */
export function isTypeScriptModule(url: URL | string): boolean {
  return TYPESCRIPT.test(new URL(url).pathname);
}

/**
 * Starts a worker thread on an ES module. When the module (or one it loads) is TypeScript, as
 * when dorsal runs from its sources in its tests, the worker first registers tsx: Node 20 does
 * not carry `--import tsx` into workers.
 */
export function startModuleWorker(
  entry: URL,
  options: WorkerOptions = {},
  typescript = isTypeScriptModule(entry),
): Worker {
  const execArgv = options.execArgv ?? inheritedFlags();
  if (!typescript) return new Worker(entry, { ...options, execArgv });
  const code = `import { register } from 'tsx/esm/api'; register(); await import(${JSON.stringify(entry.href)});`;
  return new Worker(code, { ...options, execArgv, eval: true });
}

/**
 * The flags a worker gets: the process's own, inherited (`undefined`: Node passes them on
 * unchecked; a list given explicitly may only hold per-thread flags, and `--trace-gc` or
 * `--max-old-space-size` would be refused). But `--input-type` (of `node -e`) makes a worker that
 * starts from a file fail: without it, the rest is passed explicitly.
 */
function inheritedFlags(): string[] | undefined {
  if (!process.execArgv.some((flag) => flag.startsWith('--input-type'))) return undefined;
  return process.execArgv.filter((flag) => !flag.startsWith('--input-type'));
}
