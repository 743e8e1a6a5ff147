import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { expect, it, vi } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { EtlPool } from '../../src/telemetry/analytics/etl-pool.js';
import { lakeCacheDir } from '../../src/telemetry/analytics/lake-cache-dir.js';
import type { MergeFailure } from '../../src/telemetry/analytics/partitions.js';
import { type PartitionRow, partitionBlobPaths } from '../../src/telemetry/lake/types.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { tempDir } from './fixtures.js';
import { LONG_AGO, sqliteAge } from './lake-age.js';

const TICKS = 600;

/** The columns a partition's data and coverage files hold themselves (none taken from their paths). */
async function fileColumns(cacheDir: string, row: PartitionRow): Promise<string[][]> {
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    const paths = partitionBlobPaths(row);
    const columns: string[][] = [];
    for (const file of [paths.data, paths.coverage]) {
      const path = join(cacheDir, file).replaceAll("'", "''");
      const reader = await connection.runAndReadAll(
        `DESCRIBE SELECT * FROM read_parquet('${path}', hive_partitioning = false)`,
      );
      columns.push(reader.getRows().map((r) => String(r[0])));
    }
    return columns;
  } finally {
    connection.closeSync();
    db.closeSync();
  }
}

it('merges small partitions from their own files: a block whose blob was lost since keeps its rows', async () => {
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
      // The fourth block was inserted long ago: the merged partition goes with it at retention.
      await sqliteAge(dir)('blocks', [blocks[3]!.blockId]);
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
      const smallColumns = await fileColumns(
        lakeCacheDir(join(dir, 'analytics'), analytics.lake.identity),
        small[0]!,
      );
      expect(smallColumns[0]).not.toContain('process_id');
      const expected = await count(blocks[7]!.beginTime);
      // The first block's blob is lost (damage, or a retention pass under way) after it was decoded.
      await analytics.lake.blobs.delete([blocks[0]!.blobPath]);
      // The eighth look merges the eight, from their files: the first block is not read again.
      const eighth = await analytics.query('SELECT count(*), count(DISTINCT seq) FROM stream_ticks', {
        process: processId,
        end: blocks[7]!.endTime,
      });
      const rows = eighth.rows[0]!.map(Number);
      expect(rows[0]).toBeGreaterThan(expected);
      expect(rows[1]).toBe(rows[0]);
      expect(eighth.unreadableBlocks).toEqual([]);
      const after = (await analytics.lake.metadata.listPartitions(processId)).filter(
        (p) => p.streamId === ticks.streamId,
      );
      // One partition of the eight blocks, in their order, holding every row the small ones held.
      expect(after.map((p) => p.blockIds)).toEqual([blocks.slice(0, 8).map((b) => b.blockId)]);
      // When the earliest of its blocks was inserted: the earliest of the merged partitions'.
      expect(small.find((p) => p.blockIds.includes(blocks[3]!.blockId))?.firstBlockInsertTime).toBe(LONG_AGO);
      expect(after[0]!.firstBlockInsertTime).toBe(LONG_AGO);
      // The same columns as the files merged: none added from the files' paths (process_id=…).
      expect(
        await fileColumns(lakeCacheDir(join(dir, 'analytics'), analytics.lake.identity), after[0]!),
      ).toEqual(smallColumns);
      expect(after[0]!.rowCount).toBe(small.reduce((n, p) => n + p.rowCount, 0) + blocks[7]!.objectCount);
      // Its rows are the blocks' rows in order: by sequence, as they were published.
      const seqs = await analytics.query('SELECT seq FROM stream_ticks', {
        process: processId,
        end: blocks[7]!.endTime,
      });
      const read = seqs.rows.map((r) => Number(r[0]));
      expect(read).toEqual([...read].sort((a, b) => a - b));
    } finally {
      await analytics.close();
    }
  } finally {
    cleanup();
  }
}, 120_000);

it('a merge that fails with its files there is not tried again before unreadableRetryMs (tried at every look with 0), and the small partitions answer meanwhile', async () => {
  const { dir, cleanup } = tempDir('dorsal-merge-fails-');
  const run = EtlPool.prototype.run;
  let merges = 0;
  const spy = vi.spyOn(EtlPool.prototype, 'run').mockImplementation(function (this: EtlPool, task) {
    if (task.kind !== 'merge') return run.call(this, task);
    merges++;
    return Promise.reject(new Error('no room left for the merged file'));
  });
  try {
    await runPersistedPipeline({ data: dir, blockMs: 50, blockBytes: 2048 }, TICKS);
    for (const retryMs of [60_000, 0]) {
      merges = 0;
      const failures: MergeFailure[] = [];
      const analytics = await Analytics.open({
        lake: { data: dir },
        cacheDir: join(dir, `analytics-${retryMs}`),
        freshnessMs: 0,
        unreadableRetryMs: retryMs,
        // A listener that throws: the queries answer all the same.
        onMergeFailed: (failure) => {
          failures.push(failure);
          throw new Error('a listener that fails');
        },
      });
      try {
        const [process] = await analytics.lake.processes();
        const processId = process!.processId;
        const ticks = (await analytics.lake.streams({ processId })).find(
          (s) => s.properties.name === 'ticks',
        )!;
        const blocks = (await analytics.lake.blocks({ processId }))
          .filter((b) => b.streamId === ticks.streamId)
          .sort((a, b) => (a.endTime < b.endTime ? -1 : 1));
        expect(blocks.length).toBeGreaterThan(11);
        const count = async (end: string) =>
          Number(
            (await analytics.query('SELECT count(*) FROM stream_ticks', { process: processId, end }))
              .rows[0]![0],
          );
        // Eleven looks, each at one block more: the eighth merges, and fails, and the three after
        // do not try again. With 0, every look tries (the lake holds the first's eleven partitions).
        for (const block of blocks.slice(0, 11)) await count(block.endTime);
        expect(merges, `retry ${retryMs}`).toBe(retryMs === 0 ? 11 : 1);
        // Each failure told once, with why and what; one left alone meanwhile is not told again.
        expect(failures).toHaveLength(merges);
        for (const failure of failures) {
          expect(failure).toMatchObject({ processId, streamId: ticks.streamId, stream: 'ticks' });
          expect(failure.error).toBe('no room left for the merged file');
          expect(failure.partitionIds.length).toBeGreaterThanOrEqual(2);
        }
        // Kept while it is left alone: the partitions of the merge that failed.
        expect(analytics.held().failedMerges).toBe(retryMs === 0 ? 0 : failures[0]!.partitionIds.length);
        // Every row of the eleven blocks, from the small partitions: as many as one look at them all.
        const once = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, `once-${retryMs}`) });
        try {
          const whole = await once.query('SELECT count(*) FROM stream_ticks', {
            process: processId,
            end: blocks[10]!.endTime,
          });
          expect(await count(blocks[10]!.endTime)).toBe(Number(whole.rows[0]![0]));
        } finally {
          await once.close();
        }
      } finally {
        await analytics.close();
      }
    }
  } finally {
    spy.mockRestore();
    cleanup();
  }
}, 120_000);
