import { join } from 'node:path';
import { expect, it } from 'vitest';
import { writeBenchRun } from '../../bench/analytics/data.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import type { MessageTree } from '../../src/telemetry/analytics/questions.js';
import { tempDir } from './fixtures.js';

it('the slowest trees are trees: timing records whose messages are not in the lake are passed over', async () => {
  const { dir, cleanup } = tempDir('dorsal-slowest-trees-');
  try {
    // 300 trees (a tick, two orders, two fills), and 3,000 timing records of other actors whose
    // messages the lake does not hold, slower than any tree (10 µs to 1 ms).
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
      // The same ranking as the trees' own records give (a tree's origin: a whole multiple of
      // 5000 ns past 1 ms), asked without the messages.
      const ranked = await analytics.query(
        'SELECT origin_t FROM timing_records WHERE (origin_t - 1000000) % 5000 = 0 GROUP BY origin_t ORDER BY max(end_t - origin_t) DESC LIMIT 25',
        scope,
      );
      expect(new Set(slowest.map((t) => t.originT))).toEqual(new Set(ranked.rows.map((r) => Number(r[0]))));
    } finally {
      await analytics.close();
    }
  } finally {
    cleanup();
  }
}, 60_000);

it('the slowest trees: an origin whose tree lost messages in its middle gives its pieces in its rank, and one with no messages none', async () => {
  const { dir, cleanup } = tempDir('dorsal-slowest-split-');
  try {
    // Four trees; the slowest one's orders lost (its tick and its two fills make three trees),
    // and one timing record without messages, slower than any tree (its data are deterministic).
    const run = await writeBenchRun({ data: dir }, 4, 1, undefined, { messageless: true, lostOrdersOf: 3 });
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const scope = { process: run.processId };
      const ranked = await analytics.query(
        'SELECT origin_t FROM timing_records GROUP BY origin_t ORDER BY max(end_t - origin_t) DESC LIMIT 2',
        scope,
      );
      // The record without messages, then the split tree's origin (tree 3's).
      expect(ranked.rows.map((r) => Number(r[0]))).toEqual([1_000_050, 1_015_000]);
      // The record without messages makes no tree: ranked again, tree 3's origin comes first (its
      // lost orders' records are its slowest), its three pieces slowest first, then tree 2's.
      const shape = (trees: readonly MessageTree[]) =>
        trees.map((t) => [t.originT, t.root.stream, t.root.seq, t.nodes, t.missingParent]);
      expect(shape(await analytics.slowestTrees({ ...scope, n: 2 }))).toEqual([
        [1_015_000, 'fills', 7, 1, true],
        [1_015_000, 'fills', 6, 1, true],
      ]);
      expect(shape(await analytics.slowestTrees({ ...scope, n: 4 }))).toEqual([
        [1_010_000, 'ticks', 2, 5, false],
        [1_015_000, 'fills', 7, 1, true],
        [1_015_000, 'fills', 6, 1, true],
        [1_015_000, 'ticks', 3, 1, false],
      ]);
    } finally {
      await analytics.close();
    }
  } finally {
    cleanup();
  }
}, 60_000);
