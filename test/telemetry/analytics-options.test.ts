import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Analytics, analyticsQueryRoute } from '../../src/analytics.js';
import { viewRoutes } from '../../src/telemetry/views/routes.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { tempDir } from './fixtures.js';

describe('Analytics.open options', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it.each([
    ['maxRows', 0],
    ['maxRows', 1.5],
    ['maxBytes', 100],
    ['maxBytes', 2 ** 40],
    ['timeoutMs', -1],
    ['timeoutMs', Number.NaN],
    ['etlThreads', -1],
    ['etlThreads', 1.5],
    ['freshnessMs', -5],
    ['unreadableRetryMs', Number.POSITIVE_INFINITY],
    ['goneProcessSweepMs', Number.NaN],
    ['goneProcessSweepMs', '60000'],
  ])('refuses %s = %s with a ConfigError naming it, before it opens anything', async (name, value) => {
    const data = join(dir, `lake-${name}-${String(value)}`);
    const cacheDir = join(dir, `cache-${name}-${String(value)}`);
    await expect(Analytics.open({ lake: { data }, cacheDir, [name]: value })).rejects.toMatchObject({
      code: 'DORSAL_CONFIG',
      message: expect.stringContaining(`'${name}'`),
    });
    expect(existsSync(data)).toBe(false);
    expect(existsSync(cacheDir)).toBe(false);
  });

  it('refuses them when a query route is made, before its first query', () => {
    expect(() =>
      analyticsQueryRoute({ lake: { data: join(dir, 'lake') }, cacheDir: join(dir, 'c'), timeoutMs: 0 }),
    ).toThrow("analytics option 'timeoutMs' must be an integer from 1 to 3600000, got 0");
  });

  it.each([
    ['pageTimeoutMs', Number.NaN],
    ['pageTimeoutMs', 0],
    ['timeoutMs', 2 ** 31],
  ])('refuses the views %s = %s when they are made, naming it', (name, value) => {
    expect(() => viewRoutes({ analytics: () => Promise.reject(new Error('unused')), [name]: value })).toThrow(
      `view option '${name}' must be an integer from 1 to 2147483647 (ms), got ${value}`,
    );
  });

  it('etlThreads 0 decodes in the thread that asks, into the same tables as a decoding thread', async () => {
    const data = join(dir, 'inline-lake');
    await runPersistedPipeline({ data }, 50);
    const answers: (readonly (readonly unknown[])[])[] = [];
    for (const etlThreads of [0, 1]) {
      const analytics = await Analytics.open({
        lake: { data },
        cacheDir: join(dir, `inline-${etlThreads}`),
        etlThreads,
      });
      try {
        answers.push(
          (
            await analytics.query(
              'SELECT stream, count(*)::INTEGER, sum(seq)::BIGINT::VARCHAR FROM messages GROUP BY 1 UNION ALL SELECT actor, count(*)::INTEGER, sum(end_t - start_t)::VARCHAR FROM timings GROUP BY 1 ORDER BY 1',
            )
          ).rows,
        );
      } finally {
        await analytics.close();
      }
    }
    expect(answers[0]!.length).toBeGreaterThan(3);
    expect(answers[0]).toEqual(answers[1]);
  }, 60_000);

  it('refuses a cache directory that is not a path', async () => {
    await expect(Analytics.open({ lake: { data: join(dir, 'lake') }, cacheDir: '' })).rejects.toThrow(
      "analytics option 'cacheDir' must be a directory's path",
    );
  });
});
