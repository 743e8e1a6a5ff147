import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { expect, it } from 'vitest';
import { writeBenchRun } from '../../bench/analytics/data.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { wholeToInt64 } from '../../src/telemetry/analytics/etl.js';
import writePartitionTask from '../../src/telemetry/analytics/etl-worker.js';
import { tempDir } from './fixtures.js';

/** The rows of each row group of a Parquet file. */
async function rowGroups(connection: DuckDBConnection, file: string): Promise<number[]> {
  const reader = await connection.runAndReadAll(
    `SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata('${file.replaceAll("'", "''")}') ORDER BY row_group_id`,
  );
  return reader.getRows().map((r) => Number(r[1]));
}

/**
 * Row groups of about 32,768 rows holding `rows` in all: DuckDB takes the size as a target, which
 * its writer's chunks overshoot a little (34,133 rows seen), never as far as its own 122,880.
 */
function expectGroupsOf(groups: readonly number[], rows: number): void {
  expect(groups.reduce((a, b) => a + b, 0)).toBe(rows);
  expect(groups.length).toBeGreaterThanOrEqual(Math.floor(rows / 40_000));
  for (const group of groups) expect(group).toBeLessThanOrEqual(40_000);
}

function parquetFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.parquet'))
    .map((f) => join(dir, f));
}

// A query for a few rows (a tree by origin_t, a message by seq) decodes whole every row group the
// Parquet statistics cannot rule out: partitions are written in groups of 32,768 rows, not 122,880.
it('writes partitions, decoded from blocks or merged from files, in row groups of 32,768 rows', async () => {
  const { dir, cleanup } = tempDir('dorsal-row-groups-');
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    // 40,000 ticks, 80,000 orders and fills, and their timing records: one partition per stream.
    const run = await writeBenchRun({ data: dir }, 40_000, 0);
    const cacheDir = join(dir, 'analytics');
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir });
    try {
      const counted = await analytics.query('SELECT count(*) FROM stream_orders', { process: run.processId });
      expect(Number(counted.rows[0]![0])).toBe(80_000);
      const ordersFiles = parquetFiles(cacheDir).filter((f) => f.includes('stream_orders'));
      expect(ordersFiles).toHaveLength(1);
      expectGroupsOf(await rowGroups(connection, ordersFiles[0]!), 80_000);
      // A point lookup answers the same across the groups.
      const last = await analytics.query('SELECT seq, tick FROM stream_orders WHERE seq = 79999', {
        process: run.processId,
      });
      expect(last.rows.map((r) => r.map(Number))).toEqual([[79_999, 39_999]]);
      // Sequences are stored as BIGINTs: a filter on one reaches the scan, where the groups'
      // statistics rule groups out (a stored DOUBLE, which the views cast, was filtered row by row).
      const plan = await analytics.query('EXPLAIN SELECT tick FROM stream_orders WHERE seq = 79999', {
        process: run.processId,
      });
      const text = plan.rows.map((r) => r.join(' ')).join('\n');
      expect(text).toMatch(/Filters:\s*seq\s*=\s*79999/);
      expect(text).not.toMatch(/CAST\(seq/);
      for (const [view, columns] of [
        ['stream_orders', 'seq, parent_seq'],
        ['timings', 'seq'],
      ] as const) {
        const file = parquetFiles(cacheDir).find((f) => f.includes(`${view}/`))!;
        const described = await connection.runAndReadAll(
          `DESCRIBE SELECT ${columns} FROM read_parquet('${file}', hive_partitioning = false)`,
        );
        expect(described.getRows().map((r) => String(r[1]))).toEqual(columns.split(', ').map(() => 'BIGINT'));
      }
    } finally {
      await analytics.close();
    }

    // Two files of 50,000 rows in DuckDB's own groups, merged into one: the first as an older
    // dorsal wrote sequences (DOUBLE), the second as this one does (BIGINT).
    const parts = [0, 1].map((i) => join(dir, `part-${i}.parquet`));
    for (const [i, part] of parts.entries()) {
      await connection.run(
        `COPY (SELECT (${i} * 50000 + i)::${i === 0 ? 'DOUBLE' : 'BIGINT'} AS seq, (i * 0.5)::DOUBLE AS v FROM range(50000) t(i)) TO '${part}' (FORMAT parquet)`,
      );
      await connection.run(
        `COPY (SELECT 'stream' AS stream_id, 'block-${i}' AS block_id) TO '${part}.coverage' (FORMAT parquet)`,
      );
    }
    expect(await rowGroups(connection, parts[0]!)).toEqual([50_000]);
    const merged = join(dir, 'merged.parquet');
    const result = await writePartitionTask({
      kind: 'merge',
      wholeColumns: ['seq'],
      dataFiles: parts,
      coverageFiles: parts.map((p) => `${p}.coverage`),
      dataPath: merged,
      coveragePath: `${merged}.coverage`,
    });
    expect(result.rows).toBe(100_000);
    expectGroupsOf(await rowGroups(connection, merged), 100_000);
    const mergedTypes = await connection.runAndReadAll(
      `SELECT typeof(seq), typeof(v), count(*), sum(seq) FROM read_parquet('${merged}') GROUP BY ALL`,
    );
    expect(mergedTypes.getRows().map((r) => r.map(String))).toEqual([
      ['BIGINT', 'DOUBLE', '100000', '4999950000'],
    ]);
  } finally {
    connection.closeSync();
    db.closeSync();
    cleanup();
  }
}, 120_000);

it('stores a sequence as the int64 it is, for every value a sequence holds; a damaged one as -1 or cut', () => {
  const values = [
    0,
    1,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 32 + 5,
    2 ** 53 - 1,
    2 ** 53,
    -1,
    -(2 ** 32),
    7.9,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
  ];
  // Records of 16 bytes, the sequence at offset 8.
  const records = new DataView(new ArrayBuffer(values.length * 16));
  for (const [i, value] of values.entries()) records.setFloat64(i * 16 + 8, value, true);
  const target = new Uint8Array(values.length * 8);
  wholeToInt64(records, 8, 16, target, values.length);
  const stored = [...new BigInt64Array(target.buffer)];
  expect(stored).toEqual([
    0n,
    1n,
    2n ** 31n,
    2n ** 32n - 1n,
    2n ** 32n,
    2n ** 32n + 5n,
    2n ** 53n - 1n,
    2n ** 53n,
    -1n,
    -(2n ** 32n),
    7n,
    -1n,
    -1n,
    -1n,
  ]);
});
