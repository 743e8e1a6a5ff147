import { dirname, join, relative, resolve, sep } from 'node:path';
import { defineConfig, type Plugin } from 'vitest/config';
import { COMPILED_ROOT, REPO_ROOT } from './test/helpers/compiled.js';

/** What the tests import compiled: the sources and the examples. */
const COMPILED_DIRS = ['src', 'examples'].map((dir) => join(REPO_ROOT, dir) + sep);

/**
 * The tests' imports of dorsal's sources and examples load their compiled JavaScript, which the
 * global setup writes once per run. What a test starts in a worker thread or a child process
 * runs compiled too (`compiledUrl`, `compiled`): through tsx, each such thread paid a hooks
 * thread and the transform of its modules: about four tenths of the suite's time. One compiled dorsal for the
 * test and its threads: an actor module's class is the `Actor` the system checks. The test files
 * and their helpers stay TypeScript, run by vitest; a type error is `npm run lint`'s to report.
 */
const compiledSources: Plugin = {
  name: 'dorsal-compiled-sources',
  enforce: 'pre',
  resolveId(source, importer) {
    if (importer === undefined || importer.startsWith(COMPILED_ROOT)) return null;
    if (source === 'dorsal') return join(COMPILED_ROOT, 'src', 'index.js');
    if (!source.startsWith('.')) return null;
    const path = resolve(dirname(importer.split('?')[0]!), source);
    if (!COMPILED_DIRS.some((dir) => path.startsWith(dir))) return null;
    return join(COMPILED_ROOT, relative(REPO_ROOT, path));
  },
};

export default defineConfig({
  plugins: [compiledSources],
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/compile-once.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
