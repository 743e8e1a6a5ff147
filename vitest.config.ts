import { dirname, join, relative, resolve, sep } from 'node:path';
import { configDefaults, defineConfig, type Plugin } from 'vitest/config';
import { COMPILED_ROOT, REPO_ROOT } from './test/helpers/compiled.js';

/** What the tests import compiled: the sources and the examples. */
const COMPILED_DIRS = ['src', 'examples'].map((dir) => join(REPO_ROOT, dir) + sep);

/**
 * The tests' imports of dorsal's sources and examples load their compiled JavaScript, which the
 * global setup writes once per run. What a test starts in a worker thread or a child process
 * runs compiled too (`compiledUrl`, `compiled`): through tsx, each such thread paid a hooks
 * thread and the transform of its modules, about four tenths of the suite's time. One compiled
 * dorsal for the test and its threads: an actor module's class is the `Actor` the system checks.
 * The test files and their helpers stay TypeScript, run by vitest; a type error is `npm run
 * lint`'s to report.
 */
const compiledSources: Plugin = {
  name: 'dorsal-compiled-sources',
  enforce: 'pre',
  resolveId(source, importer) {
    if (importer === undefined || importer.startsWith(COMPILED_ROOT)) return null;
    // The package's own specifiers, as its exports map them: 'dorsal' to src/index, 'dorsal/x' to src/x.
    if (source === 'dorsal') return join(COMPILED_ROOT, 'src', 'index.js');
    if (source.startsWith('dorsal/'))
      return join(COMPILED_ROOT, 'src', `${source.slice('dorsal/'.length)}.js`);
    if (!source.startsWith('.')) return null;
    const path = resolve(dirname(importer.split('?')[0]!), source);
    if (!COMPILED_DIRS.some((dir) => path.startsWith(dir))) return null;
    return join(COMPILED_ROOT, relative(REPO_ROOT, path));
  },
};

export default defineConfig({
  plugins: [compiledSources],
  // The compiled tree changes under the run (the global setup writes it): not a change to react to.
  server: { watch: { ignored: ['**/.vitest-build-*/**'] } },
  test: {
    // In watch mode, an edit of the sources, the examples or the fixtures reruns every test: the
    // tests hold the compiled tree, which the global setup writes again before the rerun.
    forceRerunTriggers: [
      ...configDefaults.forceRerunTriggers,
      '**/src/**',
      '**/examples/**',
      '**/test/fixtures/**',
    ],
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/compile-once.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
