import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { tempDir } from './fixtures.js';

const TICKS = 600;

it('answers from the small partitions when a block they hold can no longer be read to merge them', async () => {
  const { dir, cleanup } = tempDir('dorsal-merge-');
  try {
    await runPersistedPipeline({ data: dir, blockMs: 50, blockBytes: 2048 }, TICKS);
    const analytics = await Analytics.open({
      lake: { data: dir },
      cacheDir: join(dir, 'analytics'),
      freshnessMs: 0,
    });
    try {
      const [process] = await analytics.lake.processes();
      const processId = process!.processId;
      const ticks = (await analytics.lake.streams({ processId })).find((s) => s.properties.name === 'ticks')!;
      const blocks = (await analytics.lake.blocks({ processId }))
        .filter((b) => b.streamId === ticks.streamId)
        .sort((a, b) => (a.endTime < b.endTime ? -1 : 1));
      expect(blocks.length).toBeGreaterThan(8);
      const count = async (end: string) =>
        Number(
          (await analytics.query('SELECT count(*) FROM stream_ticks', { process: processId, end }))
            .rows[0]![0],
        );
      // Seven looks, each at one block more: seven partitions of one block each.
      for (const block of blocks.slice(0, 7)) await count(block.endTime);
      const small = (await analytics.lake.metadata.listPartitions(processId)).filter(
        (p) => p.streamId === ticks.streamId,
      );
      expect(small).toHaveLength(7);
      const expected = await count(blocks[7]!.beginTime);
      // The first block's blob is lost (damage, or a retention pass under way) after it was decoded.
      await analytics.lake.blobs.delete([blocks[0]!.blobPath]);
      // The eighth look would merge the eight: the first block cannot be read again, so they stay.
      const eighth = await count(blocks[7]!.endTime);
      expect(eighth).toBeGreaterThan(expected);
      const after = (await analytics.lake.metadata.listPartitions(processId)).filter(
        (p) => p.streamId === ticks.streamId,
      );
      expect(after.flatMap((p) => p.blockIds).sort()).toEqual(
        blocks
          .slice(0, 8)
          .map((b) => b.blockId)
          .sort(),
      );
      expect(after.filter((p) => p.blockIds.includes(blocks[0]!.blockId))).toHaveLength(1);
    } finally {
      await analytics.close();
    }
  } finally {
    cleanup();
  }
}, 120_000);
