import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handlerSlice } from '../../src/cli/chrome-trace.js';
import { exportTrace } from '../../src/cli/trace-export.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { runDorsal } from './cli-helpers.js';
import { damageHandlerTimes } from './damaged-times.js';
import { tempDir } from './fixtures.js';

const TICKS = 40;
/** Handler calls whose start or end the damage makes no time (NaN, 1e19 ns). */
const DAMAGED = 6;

describe('dorsal trace of a damaged recording', () => {
  const { dir, cleanup } = tempDir('dorsal-trace-damaged-');
  let timings = 0;

  beforeAll(async () => {
    await runPersistedPipeline({ data: dir, blockBytes: 2048 }, TICKS);
    let damaged: number;
    ({ damaged, timings } = await damageHandlerTimes(dir, 'start', [
      ...Array(DAMAGED - 2).fill(Number.NaN),
      1e19,
    ]));
    // And one whose end is no time: no slice of 1e16 µs.
    const ends = await damageHandlerTimes(dir, 'end', [1e19], 30);
    expect(damaged + ends.damaged).toBe(DAMAGED);
  }, 120_000);
  afterAll(cleanup);

  it('writes every other event once, pages of any size alike, and says how many it could not place', async () => {
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const [process] = await analytics.lake.processes();
      const summary = {
        processId: process!.processId,
        exe: process!.exe,
        startTime: process!.startTime,
        properties: {},
      };
      for (const pageRows of [3, 50_000]) {
        const output = join(dir, `trace-${pageRows}.json`);
        const written = await exportTrace({
          analytics,
          process: summary,
          window: {},
          limit: 1_000_000,
          output,
          pageRows,
        });
        const events = (
          JSON.parse(readFileSync(output, 'utf8')) as { traceEvents: Record<string, unknown>[] }
        ).traceEvents;
        const slices = events.filter((e) => e.ph === 'X' && e.cat === 'handler');
        expect(slices.every((e) => Number.isFinite(e.ts))).toBe(true);
        const keys = slices.map((e) => `${e.tid}/${e.name}/${(e.args as { seq: number }).seq}`);
        expect(new Set(keys).size, `pages of ${pageRows}`).toBe(keys.length);
        expect(written.written.handler_calls, `pages of ${pageRows}`).toBe(timings - DAMAGED);
        // Every arrow starts in a slice the trace holds (not in a damaged call's, left out).
        const orphans = events.filter(
          (e) =>
            e.ph === 's' &&
            !slices.some(
              (x) =>
                x.tid === e.tid &&
                (x.ts as number) <= (e.ts as number) &&
                (e.ts as number) <= (x.ts as number) + (x.dur as number),
            ),
        );
        expect(orphans, `pages of ${pageRows}`).toEqual([]);
        expect(written.untimed).toBe(DAMAGED);
      }
    } finally {
      await analytics.close();
    }
  }, 60_000);

  it('says so in one line, and writes the trace', async () => {
    const output = join(dir, 'cli.json');
    const run = await runDorsal(['trace', '--data', dir, '-o', output]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr.trim()).toBe(
      `dorsal: left out ${DAMAGED} events whose time is no time (NaN, infinite, or more than a century from the start): the recording is damaged there`,
    );
    const trace = JSON.parse(readFileSync(output, 'utf8')) as { metadata: Record<string, unknown> };
    expect(trace.metadata['dorsal-untimed']).toBe(DAMAGED);
  }, 60_000);

  it('draws a call whose end is no number as a slice of no duration, not one without `dur`', () => {
    const call = { actor: 'a', stream: 's', seq: 1, originT: 1, publishT: 2, startT: 3, parent: null };
    for (const endT of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const slice = JSON.parse(JSON.stringify(handlerSlice({ ...call, endT }, { pid: 1, tid: 1 }))) as {
        dur: unknown;
      };
      expect(slice.dur).toBe(0);
    }
  });
});
