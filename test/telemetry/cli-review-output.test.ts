import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPersistedPipeline } from './analytics-checks.js';
import { runDorsal } from './cli-helpers.js';
import { tempDir } from './fixtures.js';

/**
 * `-o` through a link to a file not made yet: the write makes the file the link names, so the
 * lake's own directories are refused by where the link ends, not by the link's own path (a
 * dangling link's real path could not be resolved, and its own path was checked: the report was
 * written into the lake's views).
 */
describe('trace and report -o through a link to nothing yet', () => {
  const { dir, cleanup } = tempDir('dorsal-cli-review-output-');
  const lake = join(dir, 'lake');

  beforeAll(async () => {
    await runPersistedPipeline({ data: lake }, 10);
  }, 120_000);
  afterAll(cleanup);

  it('refuses a link (or a chain of them) that ends in the lake, and writes nothing there', async () => {
    mkdirSync(join(lake, 'views'), { recursive: true });
    const viewsBefore = readdirSync(join(lake, 'views'));
    // A link to a file not made yet in the lake's views; a chain of two, the second relative.
    symlinkSync(join(lake, 'views', 'evil.html'), join(dir, 'direct.html'));
    symlinkSync(join('lake', 'blobs', 'evil.json'), join(dir, 'second.json'));
    symlinkSync(join(dir, 'second.json'), join(dir, 'first.json'));
    for (const [command, output, entry] of [
      ['report', join(dir, 'direct.html'), 'views'],
      ['trace', join(dir, 'direct.html'), 'views'],
      ['report', join(dir, 'first.json'), 'blobs'],
      ['trace', join(dir, 'first.json'), 'blobs'],
    ] as const) {
      const { code, stderr } = await runDorsal([command, '--data', lake, '-o', output]);
      expect(code, `${command} -o ${output}: ${stderr}`).toBe(1);
      expect(stderr).toBe(
        `dorsal: -o ${output} is the lake's own ${entry} in ${lake}: write it elsewhere (DORSAL_CLI)\n`,
      );
    }
    expect(readdirSync(join(lake, 'views'))).toEqual(viewsBefore);
    expect(existsSync(join(lake, 'blobs', 'evil.json'))).toBe(false);
  }, 60_000);

  it('writes through a link to nothing yet outside the lake: the file it names is made, the link stays', async () => {
    mkdirSync(join(dir, 'out'));
    symlinkSync(join(dir, 'out', 'report.html'), join(dir, 'to-report.html'));
    symlinkSync(join('out', 'trace.json'), join(dir, 'to-trace.json'));
    const report = await runDorsal(['report', '--data', lake, '-o', join(dir, 'to-report.html')]);
    expect(report.code, report.stderr).toBe(0);
    const trace = await runDorsal(['trace', '--data', lake, '-o', join(dir, 'to-trace.json')]);
    expect(trace.code, trace.stderr).toBe(0);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['report.html', 'trace.json']);
  }, 60_000);
  it('follows a `..` after a link as the kernel does (a link’s target, then its parent): into the lake, refused', async () => {
    mkdirSync(join(lake, 'views', 'sub'), { recursive: true });
    const work = join(dir, 'work');
    mkdirSync(work);
    symlinkSync(join(lake, 'views', 'sub'), join(work, 'a'));
    symlinkSync('a/../evil2.html', join(work, 'dangling'));
    // As written: `join` would take `a/..` away as text.
    for (const output of ['a/../evil1.html', 'dangling', 'a/../../lake.sqlite-journal'].map(
      (o) => `${work}/${o}`,
    )) {
      const { code, stderr } = await runDorsal(['report', '--data', lake, '-o', output]);
      expect(code, `${output}: ${stderr}`).toBe(1);
      expect(stderr).toMatch(/is the lake's own (views|lake\.sqlite-journal) in /);
    }
    expect(readdirSync(join(lake, 'views')).filter((f) => f.startsWith('evil'))).toEqual([]);
    // Outside the lake, the trace lands where the kernel puts it: by the link's target's parent.
    mkdirSync(join(dir, 'real', 'proj'), { recursive: true });
    symlinkSync(join(dir, 'real', 'proj'), join(work, 'proj'));
    const trace = await runDorsal(['trace', '--data', lake, '-o', `${work}/proj/../trace.json`]);
    expect(trace.code, trace.stderr).toBe(0);
    expect(existsSync(join(dir, 'real', 'trace.json'))).toBe(true);
    expect(existsSync(join(work, 'trace.json'))).toBe(false);
  }, 60_000);

  it('writes no -o named as a directory (`link/`), and leaves the link a link', async () => {
    symlinkSync(join(dir, 'nowhere.json'), join(dir, 'slash-link'));
    for (const command of ['trace', 'report']) {
      const { code, stderr } = await runDorsal([
        command,
        '--data',
        lake,
        '-o',
        `${join(dir, 'slash-link')}/`,
      ]);
      expect(code, stderr).toBe(1);
      expect(stderr).toMatch(/cannot write .*slash-link\/ \((EISDIR|ENOENT|ENOTDIR)\)/);
    }
    expect(lstatSync(join(dir, 'slash-link')).isSymbolicLink()).toBe(true);
  }, 60_000);

  it('writes no -o that names a directory, and leaves no partial file: `x/.`, `x/..`, an existing directory', async () => {
    const t = join(dir, 'dots');
    mkdirSync(join(t, 'adir'), { recursive: true });
    symlinkSync(join(t, 'nowhere.html'), join(t, 'dot-link'));
    for (const command of ['report', 'trace']) {
      for (const output of [`${t}/newdir/.`, `${t}/dot-link/.`, `${t}/gone/..`, join(t, 'adir')]) {
        const { code, stderr } = await runDorsal([command, '--data', lake, '-o', output]);
        expect(code, `${command} -o ${output}: ${stderr}`).toBe(1);
        expect(stderr).toMatch(/^dorsal: cannot write .* \((EISDIR|ENOENT)\)/);
      }
    }
    // Nothing made: no file named as the directory, no partial file, the link still a link.
    expect(readdirSync(t).sort()).toEqual(['adir', 'dot-link']);
    expect(readdirSync(join(t, 'adir'))).toEqual([]);
    expect(lstatSync(join(t, 'dot-link')).isSymbolicLink()).toBe(true);
  }, 120_000);

  it('replaces a hard link to the lake’s database by the report, not the database’s bytes', async () => {
    const before = readFileSync(join(lake, 'lake.sqlite'));
    linkSync(join(lake, 'lake.sqlite'), join(dir, 'hard.sqlite'));
    const report = await runDorsal(['report', '--data', lake, '-o', join(dir, 'hard.sqlite')]);
    expect(report.code, report.stderr).toBe(0);
    expect(readFileSync(join(lake, 'lake.sqlite')).equals(before)).toBe(true);
    expect(readFileSync(join(dir, 'hard.sqlite'), 'utf8')).toMatch(/^<!doctype html>/);
  }, 60_000);
});
