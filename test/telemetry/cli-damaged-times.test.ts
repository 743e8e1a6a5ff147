import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPersistedPipeline } from './analytics-checks.js';
import { runDorsal, startDorsalServe } from './cli-helpers.js';
import { damageHandlerTimes } from './damaged-times.js';
import { tempDir } from './fixtures.js';

const TICKS = 40;
/** The end times the damage makes no time: NaN, infinite, 1e19 ns (it failed the casts as NaN did). */
const DAMAGE = [Number.NaN, Number.POSITIVE_INFINITY, 1e19];

/**
 * A recorded run two of whose handler calls end at no number (NaN, ∞), as a client could send
 * them: the questions that aggregate times must answer all the same, the damaged records left
 * out and said to be.
 */
describe('the read side of a recording whose times are damaged', () => {
  const { dir, cleanup } = tempDir('dorsal-damaged-times-');
  let timings = 0;

  beforeAll(async () => {
    await runPersistedPipeline({ data: dir, blockBytes: 2048 }, TICKS);
    let damaged: number;
    ({ damaged, timings } = await damageHandlerTimes(dir, 'end', DAMAGE));
    expect(damaged).toBe(DAMAGE.length);
  }, 120_000);
  afterAll(cleanup);

  const untimedLine = `dorsal: left out ${DAMAGE.length} timing records whose time is no time (NaN, infinite, or more than a century from the start): the recording is damaged there`;

  it('stats answers without the damaged records, and says it left them out', async () => {
    const run = await runDorsal(['stats', '--data', dir, '--by', 'actor']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr.trim()).toBe(untimedLine);
    const json = await runDorsal(['stats', '--data', dir, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const answer = JSON.parse(json.stdout) as {
      rows: { count: number; latency: { max: number } }[];
      untimed: number;
    };
    expect(answer.untimed).toBe(DAMAGE.length);
    expect(answer.rows.reduce((n, r) => n + r.count, 0)).toBe(timings - DAMAGE.length);
    expect(answer.rows.every((r) => Number.isFinite(r.latency.max))).toBe(true);
  }, 60_000);

  it('tree --slowest ranks the trees by the times that are numbers: no damaged tree first', async () => {
    const run = await runDorsal(['tree', '--data', dir, '--slowest', '3', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const trees = JSON.parse(run.stdout) as { latencyNs: number | null }[];
    expect(trees).toHaveLength(3);
    // A NaN latency is written `null` in JSON.
    expect(trees.every((t) => typeof t.latencyNs === 'number' && t.latencyNs < 1e18)).toBe(true);
  }, 60_000);

  it('report writes the report, which says how many records it left out', async () => {
    const file = join(dir, 'report.html');
    const run = await runDorsal(['report', '--data', dir, '-o', file]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr.trim()).toBe(untimedLine);
    const html = readFileSync(file, 'utf8');
    expect(html).toContain(`data-untimed="${DAMAGE.length}"`);
  }, 60_000);

  it('the served page answers with the report, not an error', async () => {
    const served = await startDorsalServe(['--port', '0', '--data', dir]);
    try {
      const page = await fetch(`${served.url}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toContain('text/html');
      expect(await page.text()).toContain(`data-untimed="${DAMAGE.length}"`);
    } finally {
      await served.stop();
    }
  }, 60_000);
});
