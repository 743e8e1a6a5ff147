import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { LocalPartitionStore } from '../../src/telemetry/analytics/local-partitions.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { gatherReport } from '../../src/telemetry/views/report-data.js';
import { renderReport } from '../../src/telemetry/views/report-html.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { f64, patchRecords } from './damaged-times.js';
import { makeBlock, tempDir } from './fixtures.js';

const TICKS = 40;

/** Damages the publish time of the `n`-th tick recorded (an ingress message: its origin is its publish time). */
async function damageTickTime(dir: string, n: number, to: number): Promise<void> {
  // Its partitions kept out of the lake: the damage would not reach partitions already made.
  const probe = await Analytics.open({
    lake: { data: dir },
    cacheDir: join(dir, 'probe'),
    partitions: new LocalPartitionStore(join(dir, 'probe', 'partitions')),
  });
  const { rows } = await probe.query(
    `SELECT publish_t FROM messages WHERE stream = 'ticks' ORDER BY seq LIMIT 1 OFFSET ${n}`,
  );
  await probe.close();
  const at = Number(rows[0]![0]);
  const lake = Lake.open({ data: dir });
  try {
    // The ticks' own stream (a timing record of a tick's handling holds the same pair of times).
    const ticks = (await lake.streams()).find(
      (s) => s.tags.includes('messages') && s.properties.name === 'ticks',
    )!;
    const patched = await patchRecords(lake, await lake.blocks({ streamId: ticks.streamId }), (objects) => {
      const i = objects.indexOf(Buffer.concat([f64(at), f64(at)]));
      if (i < 0) return 0;
      f64(to).copy(objects, i + 8);
      return 1;
    });
    expect(patched).toBe(1);
  } finally {
    await lake.close();
  }
}

/**
 * The report's time axis, and every rate drawn on it, are the run's: one damaged publish time
 * (1e17 ns, three years on, still a time `timed` takes) put a run of 40 ticks over 3 years.
 */
describe("the report's time axis of a recording with a damaged publish time", () => {
  const { dir, cleanup } = tempDir('dorsal-report-axis-');
  let processId: string;

  beforeAll(async () => {
    const report = await runPersistedPipeline({ data: dir }, TICKS);
    processId = report.persist!.processId!;
    await damageTickTime(dir, 5, 1e17);
    // One near the start, before the run's first record: within the span only of a block of no
    // record, stamped 0 (a stream's block that holds none, as a persister may send).
    await damageTickTime(dir, 7, 100);
    const service = new IngestionService({ data: dir });
    try {
      const ticks = (await service.lake.streams()).find(
        (s) => s.processId === processId && s.properties.name === 'ticks',
      )!;
      const { block } = makeBlock(ticks, 0);
      expect(
        await service.ingestBlock({ ...block, beginTicks: 0, endTicks: 0, objectCount: 0 }),
      ).toMatchObject({ inserted: true });
    } finally {
      await service.close();
    }
  }, 120_000);
  afterAll(cleanup);

  it('spans the run, leaves the damaged message out of the figures over time, and says so', async () => {
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'views') });
    try {
      const data = await gatherReport(analytics, processId);
      expect(data.offAxis).toBe(2);
      expect(data.time.spanned).toBe(true);
      // The run lasted seconds at most, not three years.
      expect(data.time.endNs - data.time.beginNs).toBeLessThan(60e9);
      // Messages per second per bucket: back to counts, every tick but the damaged one.
      const ticks = data.throughput.find((s) => s.name === 'ticks')!;
      const counted = ticks.values.reduce((n, v) => n + (v * data.time.bucketNs) / 1e9, 0);
      expect(Math.round(counted)).toBe(TICKS - 2);
      const html = renderReport(data);
      expect(html).toContain('data-off-axis="2"');
      expect(html).toContain('2 messages of this run have a publish time outside the times of its blocks');
    } finally {
      await analytics.close();
    }
  }, 60_000);
});
