import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { runDorsal } from './cli-helpers.js';
import { tempDir } from './fixtures.js';

const SYSTEM = 'examples/market/system.ts';

/**
 * A recorded run whose counts block (what its actors counted lost, kept at its stop) is damaged:
 * the commands that show those losses must say they could not read them, as they say unreadable
 * blocks of records, and `--strict` must refuse to answer without them.
 */
describe('the dorsal commands on a run whose counts do not read', () => {
  const { dir, cleanup } = tempDir('dorsal-unreadable-counts-');
  const said =
    /^dorsal: the run's counts \(what its actors counted lost, kept at its stop\) did not read, and are left out of what follows:\n {2}block [0-9a-f-]+[ :]/;

  beforeAll(async () => {
    const run = await runDorsal(['run', SYSTEM, '--seconds', '1', '--data', dir]);
    expect(run.code, run.stderr).toBe(0);
    const lake = Lake.open({ data: dir });
    try {
      const counts = (await lake.streams()).filter((s) => s.tags.includes('counts'));
      expect(counts).toHaveLength(1);
      const [block] = await lake.blocks({ streamId: counts[0]!.streamId });
      // Bytes that are no block: the blob damaged.
      await lake.blobs.replace(block!.blobPath, new TextEncoder().encode('not a block'));
    } finally {
      await lake.close();
    }
  }, 120_000);
  afterAll(cleanup);

  it('stats says so on stderr, and --strict fails in one line', async () => {
    const stats = await runDorsal(['stats', '--data', dir]);
    expect(stats.code, stats.stderr).toBe(0);
    expect(stats.stderr).toMatch(said);
    const strict = await runDorsal(['stats', '--data', dir, '--strict']);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(said);
    expect(strict.stderr.trim().split('\n').at(-1)).toMatch(
      /^dorsal: --strict: the run's counts did not read/,
    );
    expect(strict.stdout).toBe('');
  }, 60_000);

  it('trace says so on stderr', async () => {
    const trace = await runDorsal(['trace', '--data', dir, '-o', join(dir, 'trace.json')]);
    expect(trace.code, trace.stderr).toBe(0);
    expect(trace.stderr).toMatch(said);
  }, 60_000);

  it('report says so on stderr, and the report says its lost column is unknown', async () => {
    const file = join(dir, 'report.html');
    const report = await runDorsal(['report', '--data', dir, '-o', file]);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stderr).toMatch(said);
    expect(readFileSync(file, 'utf8')).toContain('data-counts-unreadable="1"');
  }, 60_000);
});
