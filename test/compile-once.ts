import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { COMPILED_ROOT, REPO_ROOT } from './helpers/compiled.js';

/**
 * Vitest's global setup: compiles the tree (sources, examples, test fixtures) to JavaScript once
 * per run. The tests import dorsal compiled (see `vitest.config.ts`), and what they start in a
 * worker thread or a child process runs compiled (`compiled`, `compiledUrl`). Through tsx, every
 * such thread and process paid about a quarter to a second of CPU for a hooks thread and the
 * transform of its modules: on two cores, four tenths of the suite's time. Compiled with
 * `--noCheck` (a few seconds): type errors are `npm run lint`'s to report, and emitting despite
 * them keeps a test's failure its own.
 */
export default function compileOnce(project: TestProject): void {
  compile();
  // In watch mode, again before each rerun: a test must never run what an earlier edit left.
  project.onTestsRerun(compile);
}

function compile(): void {
  rmSync(COMPILED_ROOT, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
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
  writeFileSync(join(COMPILED_ROOT, 'package.json'), JSON.stringify(compiledPackage(), null, 2));
}

/**
 * The package's manifest for the compiled tree: its modules are ES modules, and `import 'dorsal'`
 * (the examples') resolves, as a self-reference, within the tree rather than to `dist`, so that
 * the examples' actors and the command that starts them share one dorsal.
 */
function compiledPackage(): object {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    name: string;
    exports: Record<string, { import: string } | string>;
  };
  const exports = Object.fromEntries(
    Object.entries(manifest.exports).flatMap(([path, target]) =>
      typeof target === 'string' ? [] : [[path, target.import.replace('./dist/', './')]],
    ),
  );
  return { name: manifest.name, type: 'module', private: true, exports };
}
