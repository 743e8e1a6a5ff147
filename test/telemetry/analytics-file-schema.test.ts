import { readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBenchRun } from '../../bench/analytics/data.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import {
  fileSchemaOf,
  PARTITION_FORMAT,
  sourceTableOf,
} from '../../src/telemetry/analytics/source-tables.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { PartitionRow } from '../../src/telemetry/lake/types.js';
import { tempDir } from './fixtures.js';

/**
 * Partitions say what their files hold (`file_schema`, micromegas' `file_schema_hash`): one written
 * by an older dorsal, whose columns this one does not name, is made again from its blocks; one of
 * a dorsal before partitions said is read as it is; one of a newer dorsal is left alone. On a real
 * embedded lake (SQLite and blob files), with the partition's Parquet file rewritten by DuckDB as
 * an older dorsal would have written it.
 */
describe("a partition's file schema", () => {
  let dir: string;
  let cleanup: () => void;
  let processId: string;
  const TICKS = 500;

  beforeAll(async () => {
    ({ dir, cleanup } = tempDir('dorsal-file-schema-'));
    // 500 ticks, 1,000 orders and fills: one partition per stream once queried.
    processId = (await writeBenchRun({ data: dir }, TICKS, 0)).processId;
  });
  afterAll(() => cleanup());

  /** The sum of the orders' ticks, through a new analytics (a cache of its own: files come from the lake). */
  async function ordersTickSum(): Promise<{ sum: number }> {
    const cacheDir = join(dir, `cache-${Math.random()}`);
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir });
    try {
      const answer = await analytics.query('SELECT sum(tick)::DOUBLE, count(*)::DOUBLE FROM stream_orders', {
        process: processId,
      });
      expect(Number(answer.rows[0]![1])).toBe(2 * TICKS);
      return { sum: Number(answer.rows[0]![0]) };
    } finally {
      await analytics.close();
      rmSync(cacheDir, { recursive: true, force: true });
    }
  }

  async function partitions(): Promise<PartitionRow[]> {
    const lake = Lake.open({ data: dir });
    try {
      return await lake.metadata.listPartitions(processId);
    } finally {
      await lake.close();
    }
  }

  async function ordersPartition(): Promise<PartitionRow> {
    const rows = (await partitions()).filter((p) => p.view === 'stream_orders');
    expect(rows).toHaveLength(1);
    return rows[0]!;
  }

  /** The path of a partition's data file in the lake's blob directory. */
  function blobOf(row: PartitionRow): string {
    const found = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(
      (f) => f.endsWith(`${row.partitionId}.parquet`) && f.includes(`${row.view}/`) && !f.includes('cache-'),
    );
    expect(found).toHaveLength(1);
    return join(dir, found[0]!);
  }

  /**
   * Makes the orders' partition one an older dorsal wrote: its column `tick` named `tick_v0`, and
   * its row saying `fileSchema` (its size too, so that it reads as whole).
   */
  async function rewriteAsOlder(row: PartitionRow, fileSchema: string | null): Promise<void> {
    const blob = blobOf(row);
    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    try {
      await connection.run(
        `COPY (SELECT * RENAME (tick AS tick_v0) FROM read_parquet('${blob}', hive_partitioning = false)) TO '${blob}.new' (FORMAT parquet)`,
      );
    } finally {
      connection.closeSync();
      db.closeSync();
    }
    renameSync(`${blob}.new`, blob);
    setRow(row.partitionId, fileSchema, statSync(blob).size);
  }

  function setRow(partitionId: string, fileSchema: string | null, dataBytes?: number): void {
    const db = new Database(join(dir, 'lake.sqlite'));
    try {
      db.prepare('UPDATE partitions SET file_schema = ? WHERE partition_id = ?').run(fileSchema, partitionId);
      if (dataBytes !== undefined)
        db.prepare('UPDATE partitions SET data_bytes = ? WHERE partition_id = ?').run(dataBytes, partitionId);
    } finally {
      db.close();
    }
  }

  it('is recorded with each partition: the format, and a digest of its table and columns', async () => {
    const { sum } = await ordersTickSum();
    // Two orders per tick.
    expect(sum).toBe(2 * ((TICKS * (TICKS - 1)) / 2));
    const lake = Lake.open({ data: dir });
    try {
      const streams = await lake.streams({ processId });
      for (const row of await lake.metadata.listPartitions(processId)) {
        const table = sourceTableOf(streams.find((s) => s.streamId === row.streamId)!)!;
        expect(row.fileSchema).toBe(fileSchemaOf(table));
        expect(row.fileSchema).toMatch(new RegExp(`^${PARTITION_FORMAT}:[0-9a-f]{16}$`));
      }
      // Another table's columns, another schema.
      const [ticks, orders] = ['ticks', 'orders'].map(
        (name) => sourceTableOf(streams.find((s) => s.properties.name === name)!)!,
      );
      expect(fileSchemaOf(ticks!)).not.toBe(fileSchemaOf(orders!));
      expect(fileSchemaOf({ ...orders!, columns: orders!.columns.slice(0, -1) })).not.toBe(
        fileSchemaOf(orders!),
      );
    } finally {
      await lake.close();
    }
  });

  it('of an older dorsal, whose columns this one does not name: made again from its blocks, and the query answers', async () => {
    const { sum: expected } = await ordersTickSum();
    const older = await ordersPartition();
    await rewriteAsOlder(older, `${PARTITION_FORMAT}:0000000000000000`);
    expect((await ordersTickSum()).sum).toBe(expected);
    const now = await ordersPartition();
    expect(now.partitionId).not.toBe(older.partitionId);
    expect(now.fileSchema).toMatch(new RegExp(`^${PARTITION_FORMAT}:[0-9a-f]{16}$`));
    expect(now.fileSchema).not.toBe(`${PARTITION_FORMAT}:0000000000000000`);
    // A lower format, the same columns: made again too.
    setRow(now.partitionId, `${PARTITION_FORMAT - 1}:${now.fileSchema!.split(':')[1]}`);
    expect((await ordersTickSum()).sum).toBe(expected);
    expect((await ordersPartition()).partitionId).not.toBe(now.partitionId);
  });

  it('of a dorsal before partitions said (null): read as it is, not made again', async () => {
    const { sum: expected } = await ordersTickSum();
    const before = await ordersPartition();
    setRow(before.partitionId, null);
    expect((await ordersTickSum()).sum).toBe(expected);
    const after = await ordersPartition();
    expect(after.partitionId).toBe(before.partitionId);
    expect(after.fileSchema).toBeNull();
  });

  it('of a newer dorsal: left to it, neither read nor deleted; this one reads a partition of its own', async () => {
    const { sum: expected } = await ordersTickSum();
    const newer = await ordersPartition();
    // Columns this dorsal does not name: were it read, the query would fail.
    await rewriteAsOlder(newer, `${PARTITION_FORMAT + 1}:0123456789abcdef`);
    expect((await ordersTickSum()).sum).toBe(expected);
    const rows = (await partitions()).filter((p) => p.view === 'stream_orders');
    expect(rows.map((r) => r.partitionId)).toContain(newer.partitionId);
    expect(rows).toHaveLength(2);
    const own = rows.find((r) => r.partitionId !== newer.partitionId)!;
    expect(own.blockIds).toEqual(newer.blockIds);
    expect(own.fileSchema).toMatch(new RegExp(`^${PARTITION_FORMAT}:[0-9a-f]{16}$`));
    // Gone, as the newer dorsal would have it: the tests after this one start from one partition.
    const db = new Database(join(dir, 'lake.sqlite'));
    try {
      db.prepare('DELETE FROM partitions WHERE partition_id = ?').run(newer.partitionId);
    } finally {
      db.close();
    }
  });

  it('of an older dorsal whose block no longer reads: kept, unread, until its block reads again', async () => {
    const { sum: expected } = await ordersTickSum();
    const current = await ordersPartition();
    await rewriteAsOlder(current, `${PARTITION_FORMAT}:0000000000000000`);
    const lake = Lake.open({ data: dir });
    const blocks = (await lake.blocks({ processId })).filter((b) => current.blockIds.includes(b.blockId));
    await lake.close();
    // Its blocks' blobs gone (a lost disk): the partition is all that holds their rows.
    const moved = blocks.map((b) => {
      const blob = join(dir, b.blobPath);
      renameSync(blob, `${blob}.away`);
      return blob;
    });
    const cacheDir = join(dir, 'cache-lost');
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir });
    try {
      const ticks = await analytics.query('SELECT count(*)::DOUBLE FROM stream_ticks', {
        process: processId,
      });
      expect(Number(ticks.rows[0]![0])).toBe(TICKS);
      expect(ticks.unreadable.blocks).toBe(blocks.length);
    } finally {
      await analytics.close();
      rmSync(cacheDir, { recursive: true, force: true });
    }
    expect((await partitions()).map((p) => p.partitionId)).toContain(current.partitionId);
    // Back: made again from them, and let go of.
    for (const blob of moved) renameSync(`${blob}.away`, blob);
    expect((await ordersTickSum()).sum).toBe(expected);
    expect((await partitions()).map((p) => p.partitionId)).not.toContain(current.partitionId);
    expect((await ordersPartition()).fileSchema).toMatch(new RegExp(`^${PARTITION_FORMAT}:[0-9a-f]{16}$`));
  });
});
