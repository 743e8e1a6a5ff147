import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { System } from '../../src/index.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { runDorsal } from './cli-helpers.js';
import { tempDir } from './fixtures.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

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
    const system = new System(spine, { persist: { data: lake } });
    system.spawn(fixture('feed'), { args: { count: 10, perLoop: 10 } });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('gateway'));
    await system.start();
    await until(() => system.spine.queue(2).stats().published === 20, 'every fill');
    await system.stop();
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
});
