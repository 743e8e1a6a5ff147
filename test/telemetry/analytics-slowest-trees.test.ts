import { join } from 'node:path';
import { expect, it } from 'vitest';
import { writeBenchRun } from '../../bench/analytics/data.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { tempDir } from './fixtures.js';

it('the slowest trees are trees: timing records whose messages are not in the lake are passed over', async () => {
  const { dir, cleanup } = tempDir('dorsal-slowest-trees-');
  try {
    // 300 trees (a tick, two orders, two fills), and 3,000 timing records of other actors with
    // latencies up to 1 ms whose messages the lake does not hold (slower than any tree's).
    const run = await writeBenchRun({ data: dir }, 300, 3_000, undefined, { messageless: true });
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const scope = { process: run.processId };
      const orphans = await analytics.query(
        'SELECT count(DISTINCT origin_t) FROM timing_records WHERE origin_t NOT IN (SELECT origin_t FROM messages)',
        scope,
      );
      expect(Number(orphans.rows[0]![0])).toBe(3_000);
      // Every tree, when as many are asked for as there are, however slow the records without one.
      const all = await analytics.slowestTrees({ ...scope, n: 300 });
      expect(all).toHaveLength(300);
      expect(new Set(all.map((t) => t.originT)).size).toBe(300);
      expect(all.every((t) => t.nodes === 5 && t.root.stream === 'ticks')).toBe(true);
      const slowest = await analytics.slowestTrees({ ...scope, n: 25 });
      expect(slowest.map((t) => t.originT)).toEqual(all.slice(0, 25).map((t) => t.originT));
      for (let i = 1; i < slowest.length; i++)
        expect(slowest[i]!.latencyNs).toBeLessThanOrEqual(slowest[i - 1]!.latencyNs);
    } finally {
      await analytics.close();
    }
  } finally {
    cleanup();
  }
}, 60_000);
