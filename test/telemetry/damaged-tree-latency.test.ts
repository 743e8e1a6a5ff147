import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { LocalPartitionStore } from '../../src/telemetry/analytics/local-partitions.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { f64, patchRecords } from './damaged-times.js';
import { tempDir } from './fixtures.js';

describe('a slowest tree one of whose handler calls ends at no time', () => {
  it('measures its latency by the calls whose times are times (it took 1e19 ns as its latency)', async () => {
    const { dir, cleanup } = tempDir('dorsal-damaged-tree-');
    try {
      const report = await runPersistedPipeline({ data: dir }, 20);
      const processId = report.persist!.processId;
      // Read with partitions of its own, kept apart: the damage would not reach them.
      const open = (name: string) =>
        Analytics.open({
          lake: { data: dir },
          cacheDir: join(dir, name),
          partitions: new LocalPartitionStore(join(dir, name, 'partitions')),
        });
      const probe = await open('probe');
      let origin: number;
      let calls: (readonly [number, number, number])[];
      try {
        const [slowest] = (
          await probe.query(
            'SELECT origin_t FROM timing_records GROUP BY origin_t ORDER BY max(end_t - origin_t) DESC, origin_t LIMIT 1',
          )
        ).rows;
        origin = Number(slowest![0]);
        // Its calls, fastest first: the first is not what makes the tree the slowest.
        calls = (
          await probe.query(
            `SELECT start_t, end_t, end_t - origin_t FROM timing_records WHERE origin_t = ${origin} ORDER BY 3, 1`,
          )
        ).rows.map((r) => [Number(r[0]), Number(r[1]), Number(r[2])] as const);
      } finally {
        await probe.close();
      }
      expect(calls.length).toBeGreaterThan(1);
      const [start, end] = calls[0]!;
      const lake = Lake.open({ data: dir });
      try {
        const damaged = await patchRecords(lake, await lake.blocks(), (objects) => {
          const at = objects.indexOf(Buffer.concat([f64(start), f64(end)]));
          if (at < 0) return 0;
          f64(1e19).copy(objects, at + 8);
          return 1;
        });
        expect(damaged).toBe(1);
      } finally {
        await lake.close();
      }
      const analytics = await open('after');
      try {
        const [tree] = await analytics.slowestTrees({ process: processId, n: 1 });
        // Still the slowest by its other calls, and measured by them.
        expect(tree!.originT).toBe(origin);
        expect(tree!.latencyNs).toBe(Math.max(...calls.slice(1).map(([, , latency]) => latency)));
      } finally {
        await analytics.close();
      }
    } finally {
      cleanup();
    }
  }, 120_000);
});
