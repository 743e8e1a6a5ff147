import { existsSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The repository's root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The environment variable that names this run's tree to the processes of the run. */
export const COMPILED_ROOT_VARIABLE = 'DORSAL_TEST_BUILD';

/**
 * Where the global setup compiles the tree (`test/compile-once.ts`): a directory per run, named
 * by the run's main process (two runs in one checkout do not share one), which the test
 * processes learn from the environment; inside the repository, so that a compiled module finds
 * `node_modules` and the native addons (`build/`) as one in `dist` does.
 */
export const COMPILED_ROOT =
  process.env[COMPILED_ROOT_VARIABLE] ?? join(REPO_ROOT, `.vitest-build-${process.pid}`);

/**
 * The compiled JavaScript of a TypeScript file of the repository (a path relative to the
 * repository's root or absolute, or a file URL); anything else is returned as it is.
 */
export function compiled(file: string): string {
  if (!file.endsWith('.ts')) return file;
  const path = file.startsWith('file:') ? fileURLToPath(file) : resolve(REPO_ROOT, file);
  const inRepo = relative(REPO_ROOT, path);
  if (inRepo.startsWith('..') || isAbsolute(inRepo) || !existsSync(path)) return file;
  return join(COMPILED_ROOT, inRepo.replace(/\.ts$/, '.js'));
}

/** `text` as a regular expression that matches it literally. */
export function literally(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The file URL of the compiled JavaScript of a TypeScript module named relative to `base` (a
 * module's `import.meta.url`): how a test names a module that a worker thread or a child
 * process runs. Run compiled, it shares one dorsal with the sources the test imports (compiled
 * too: see `vitest.config.ts`), and needs no tsx in its thread.
 */
export function compiledUrl(path: string, base: string): URL {
  return pathToFileURL(compiled(fileURLToPath(new URL(path, base))));
}
