import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { makeDirectories, makeDirectoriesSync } from '../src/directories.js';
import { compiled } from './helpers/compiled.js';
import { tempDir } from './telemetry/fixtures.js';

const DORSAL_BIN = fileURLToPath(new URL('../src/cli/dorsal.ts', import.meta.url));

describe('making directories', () => {
  it('makes every missing level and returns the first made, as mkdir -p does', async () => {
    const { dir, cleanup } = tempDir('dorsal-dirs-');
    try {
      expect(makeDirectoriesSync(join(dir, 'a', 'b', 'c'))).toBe(join(dir, 'a'));
      expect(existsSync(join(dir, 'a', 'b', 'c'))).toBe(true);
      expect(makeDirectoriesSync(join(dir, 'a', 'b'))).toBeUndefined();
      expect(await makeDirectories(join(dir, 'a', 'x', 'y'))).toBe(join(dir, 'a', 'x'));
      expect(existsSync(join(dir, 'a', 'x', 'y'))).toBe(true);
      // A level that is a file: the error, not a loop.
      writeFileSync(join(dir, 'f'), '');
      expect(() => makeDirectoriesSync(join(dir, 'f', 'g'))).toThrow(/ENOTDIR/);
      await expect(makeDirectories(join(dir, 'f', 'g'))).rejects.toThrow(/ENOTDIR/);
      // The path itself a file: said, not taken for a directory.
      expect(() => makeDirectoriesSync(join(dir, 'f'))).toThrow(
        /EEXIST: a file, not a directory, is at .*f$/,
      );
      await expect(makeDirectories(join(dir, 'f'))).rejects.toThrow(/EEXIST/);
    } finally {
      cleanup();
    }
  });

  // Node's recursive mkdir spins forever where mkdir answers ENOENT under a parent that is there
  // (procfs, as on CI's Linux). In a child with a deadline: a regression must not hang the suite.
  it('under /proc: an error at once, sync and async, and a dorsal command says it in one line', () => {
    const code = `
      import { makeDirectories, makeDirectoriesSync } from ${JSON.stringify(new URL('../src/directories.ts', import.meta.url).href)};
      try { makeDirectoriesSync('/proc/dorsal-nope/x'); } catch (e) { console.log('sync', e.code); }
      await makeDirectories('/proc/dorsal-nope/x').catch((e) => console.log('async', e.code));`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.signal).toBeNull();
    expect(run.stdout.trim().split('\n')).toEqual(['sync ENOENT', 'async ENOENT']);
    const demo = spawnSync(
      process.execPath,
      [compiled(DORSAL_BIN), 'demo', '--seconds', '0.2', '--data', '/proc/dorsal-nope'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(demo.signal).toBeNull();
    expect(demo.status).toBe(1);
    expect(demo.stderr.trim().split('\n')).toHaveLength(1);
    expect(demo.stderr).toMatch(
      /^dorsal: opening the SQLite lake at \/proc\/dorsal-nope\/lake\.sqlite: ENOENT/,
    );
  }, 120_000);
});
