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
 *
 * The worker inherits the process's flags: Node passes them on unchecked, where an explicit
 * `execArgv` may hold only per-thread flags (`--max-old-space-size` or `--trace-gc` would be
 * refused). One inherited flag breaks a worker that starts from a file: `--input-type` (of
 * `node --input-type=module -e`). Then, and for TypeScript, the worker starts from a line of
 * code instead, which loads the module with a dynamic `import()`: valid as a script and as a
 * module, so it runs whichever `--input-type` says.
 */
export function startModuleWorker(
  entry: URL,
  options: WorkerOptions = {},
  typescript = isTypeScriptModule(entry),
): Worker {
  const load = `import(${JSON.stringify(entry.href)})`;
  if (typescript) {
    const code = `import('tsx/esm/api').then(({ register }) => { register(); return ${load}; });`;
    return new Worker(code, { ...options, eval: true });
  }
  if (options.execArgv === undefined && process.execArgv.some((flag) => flag.startsWith('--input-type'))) {
    return new Worker(`${load};`, { ...options, eval: true });
  }
  return new Worker(entry, options);
}
