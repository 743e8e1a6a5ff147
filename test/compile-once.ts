import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { COMPILED_ROOT, COMPILED_ROOT_VARIABLE, REPO_ROOT } from './helpers/compiled.js';

/**
 * Vitest's global setup: compiles the tree (sources, examples, test fixtures) to JavaScript once
 * per run. The tests import dorsal compiled (see `vitest.config.ts`), and what they start in a
 * worker thread or a child process runs compiled (`compiled`, `compiledUrl`). Through tsx, every
 * such thread and process paid about a quarter to a second of CPU for a hooks thread and the
 * transform of its modules: on two cores, four tenths of the suite's time. Compiled with
 * `--noCheck` (a few seconds): type errors are `npm run lint`'s to report, and emitting despite
 * them keeps a test's failure its own.
 */
export default function compileOnce(project: TestProject): () => void {
  removeOrphans();
  // For the test processes, and what they start: this run's tree (see `COMPILED_ROOT`).
  process.env[COMPILED_ROOT_VARIABLE] = COMPILED_ROOT;
  rmSync(COMPILED_ROOT, { recursive: true, force: true });
  compile();
  // In watch mode (`forceRerunTriggers` in vitest.config.ts), again before each rerun, and the
  // modules vitest holds of the tree are invalidated: a test never runs what an earlier edit left.
  project.onTestsRerun(() => {
    compile();
    for (const file of readdirSync(COMPILED_ROOT, { recursive: true, encoding: 'utf8' }))
      if (file.endsWith('.js')) project.vitest.invalidateFile(join(COMPILED_ROOT, file));
  });
  return () => rmSync(COMPILED_ROOT, { recursive: true, force: true });
}

/**
 * Compiles the tree. tsc emits despite errors: it says them, and the run goes on with what it
 * emitted (a file with a syntax error fails the tests that load it, with their own failure).
 */
function compile(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(
      process.execPath,
      [
        tsc,
        '-p',
        'tsconfig.json',
        '--noEmit',
        'false',
        '--noCheck',
        '--declaration',
        'false',
        '--outDir',
        COMPILED_ROOT,
      ],
      { cwd: REPO_ROOT, stdio: 'inherit' },
    );
  } catch {
    console.error('compile-once: tsc reported errors (above); the tests run what it emitted');
  }
  writeFileSync(join(COMPILED_ROOT, 'package.json'), JSON.stringify(compiledPackage(), null, 2));
}

/** Removes the trees of earlier runs whose process is gone (a run killed before its teardown). */
function removeOrphans(): void {
  for (const entry of readdirSync(REPO_ROOT)) {
    const pid = /^\.vitest-build-(\d+)$/.exec(entry)?.[1];
    if (pid === undefined || Number(pid) === process.pid || alive(Number(pid))) continue;
    rmSync(join(REPO_ROOT, entry), { recursive: true, force: true });
  }
}

/** The analytics' own `alive` (its spill directories) is not importable here: the sources are compiled by this. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The package's manifest for the compiled tree: its modules are ES modules, and `import 'dorsal'`
 * (the examples') resolves, as a self-reference, within the tree rather than to `dist`, so that
 * the examples' actors and the command that starts them share one dorsal.
 */
function compiledPackage(): object {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    exports: Record<string, { import: string } | string>;
  };
  // The entries point into the compiled tree; `./package.json` at this one (the CLI's version).
  const exports = Object.fromEntries(
    Object.entries(manifest.exports).map(([path, target]) =>
      typeof target === 'string' ? [path, target] : [path, target.import.replace('./dist/', './')],
    ),
  );
  return { name: manifest.name, version: manifest.version, type: 'module', private: true, exports };
}
