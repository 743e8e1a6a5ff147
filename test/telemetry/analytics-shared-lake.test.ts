import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { lakeCacheDir } from '../../src/telemetry/analytics/lake-cache-dir.js';
import { LakePartitionStore } from '../../src/telemetry/analytics/lake-partitions.js';
import type { PartitionRow } from '../../src/telemetry/analytics/partitions.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { partitionBlobPaths } from '../../src/telemetry/lake/types.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { tempDir } from './fixtures.js';

const TICKS = 200;

/**
 * The lake's partition store, which runs `beforeList` once, the first time it is asked for a
 * process's partitions: what another analytics does at that moment of a look at the lake.
 */
class StoreWithAMoment extends LakePartitionStore {
  constructor(
    lake: Lake,
    cacheDir: string,
    private beforeList: (() => Promise<void>) | undefined,
  ) {
    super(lake, cacheDir);
  }

  override async list(processId: string): Promise<PartitionRow[]> {
    const moment = this.beforeList;
    this.beforeList = undefined;
    await moment?.();
    return super.list(processId);
  }
}

describe('two analytics over one lake', () => {
  const { dir, cleanup } = tempDir('dorsal-shared-lake-');
  let processId: string;

  beforeAll(async () => {
    await runPersistedPipeline({ data: dir, blockMs: 50, blockBytes: 4096 }, TICKS);
    const lake = Lake.open({ data: dir });
    processId = (await lake.processes())[0]!.processId;
    await lake.close();
  }, 120_000);
  afterAll(cleanup);

  it('keep the partitions each other made of a block that arrived while one of them looked', async () => {
    const lake = Lake.open({ data: dir });
    const other = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'other'), freshnessMs: 0 });
    let arrived: string | undefined;
    // While this analytics looks at the lake, a block arrives and the other analytics, asked
    // first, makes a partition of it.
    const store = new StoreWithAMoment(lake, join(dir, 'one'), async () => {
      const ticks = (await lake.streams({ processId })).find((s) => s.properties.name === 'ticks')!;
      const last = (await lake.blocks({ processId }))
        .filter((b) => b.streamId === ticks.streamId)
        .sort((a, b) => (a.endTime < b.endTime ? -1 : 1))
        .at(-1)!;
      arrived = randomUUID();
      await lake.metadata.insertBlock({ ...last, blockId: arrived }, last.payloadSize, last.blobPath);
      await other.query('SELECT count(*) FROM stream_ticks', { process: processId });
    });
    const one = await Analytics.open({ lake, cacheDir: join(dir, 'one'), freshnessMs: 0, partitions: store });
    try {
      await one.query('SELECT count(*) FROM stream_ticks', { process: processId });
      expect(arrived).toBeDefined();
      const holding = (await lake.metadata.listPartitions(processId)).filter((p) =>
        p.blockIds.includes(arrived!),
      );
      // The other's partition of the new block is still there, and it decodes nothing again.
      expect(holding).toHaveLength(1);
      const again = await other.query('SELECT count(*) FROM stream_ticks', { process: processId });
      expect(again.decodedBlocks).toBe(0);
      // And both see the same rows, the new block's included.
      const [a, b] = await Promise.all(
        [one, other].map((analytics) =>
          analytics.query('SELECT count(*)::INTEGER, count(DISTINCT seq)::INTEGER FROM stream_ticks', {
            process: processId,
          }),
        ),
      );
      expect(a!.rows).toEqual(b!.rows);
    } finally {
      await one.close();
      await other.close();
      await lake.close();
    }
  }, 120_000);

  it('let go of their copies of the partitions the other deleted (merged away): a cache does not grow without bound', async () => {
    const lake = Lake.open({ data: dir });
    const cacheDir = join(dir, 'reader');
    const reader = await Analytics.open({ lake, cacheDir, freshnessMs: 0 });
    try {
      await reader.query('SELECT count(*) FROM stream_ticks', { process: processId });
      const held = await lake.metadata.listPartitions(processId);
      const copies = held.flatMap((row) =>
        Object.values(partitionBlobPaths(row)).map((p) => join(lakeCacheDir(cacheDir, lake.identity), p)),
      );
      expect(copies.length).toBeGreaterThan(0);
      expect(copies.every((file) => existsSync(file))).toBe(true);
      // Another analytics deletes them, as a merge does, and the reader looks again.
      const elsewhere = new LakePartitionStore(lake, join(dir, 'elsewhere'));
      for (const row of held) await elsewhere.delete(row);
      const again = await reader.query('SELECT count(*) FROM stream_ticks', { process: processId });
      expect(again.decodedBlocks).toBeGreaterThan(0);
      expect(copies.filter((file) => existsSync(file))).toEqual([]);
    } finally {
      await reader.close();
      await lake.close();
    }
  }, 120_000);
});
