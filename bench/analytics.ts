/**
 * The analytics section: SQL over a lake on DuckDB, the blocks decoded just in time.
 *
 * A run is written straight into an embedded lake in a temporary directory, in the persister's
 * format: 200k message trees (a tick → two orders → a fill each: 1 M messages, 600k timing
 * records) and 10 M more timing records (quick: a tenth).
 * - ETL: the first query decodes every block into Parquet partitions (one piscina thread);
 *   events/s, against DuckDB writing as many rows of as many columns from `range()` to Parquet
 *   in the same run (the writer's floor). Target ≥ 5 M events/s.
 * - Percentiles per actor × stream over the timing records, partitions cached: p50, p90, p99,
 *   p99.9, max of latency and processing time, exact; against the same query on SQLite over the
 *   same rows (window functions: SQLite has no percentile). Target ≤ 0.5 s.
 * - One tree out of the 1 M messages (p50 of 30 random ticks): target ≤ 50 ms; against a query
 *   for one message by stream and seq. The 100 slowest trees: target ≤ 2 s.
 *
 * Run alone: `npm run build && node dist/bench/run.js --only analytics`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import Database from 'better-sqlite3';
import { Analytics } from '../src/telemetry/analytics/analytics.js';
import { writeBenchRun } from './analytics/data.js';
import type { BenchRow, BenchSection } from './types.js';

const GROUP = 'analytics';
const row = (name: string, value: number, unit: string, extra: Partial<BenchRow> = {}): BenchRow => ({
  group: GROUP,
  name,
  value,
  unit,
  ...extra,
});

async function timed<T>(work: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await work();
  return { ms: performance.now() - start, value };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Exact percentiles per actor × stream on SQLite: nearest rank over window functions. */
const SQLITE_PERCENTILES = `
WITH r AS (
  SELECT actor, stream, latency, processing,
    row_number() OVER (PARTITION BY actor, stream ORDER BY latency) AS lr,
    row_number() OVER (PARTITION BY actor, stream ORDER BY processing) AS pr,
    count(*) OVER (PARTITION BY actor, stream) AS n
  FROM timings)
SELECT actor, stream, max(n) AS n,
  max(CASE WHEN lr = (n * 50 + 99) / 100 THEN latency END) AS l50,
  max(CASE WHEN lr = (n * 90 + 99) / 100 THEN latency END) AS l90,
  max(CASE WHEN lr = (n * 99 + 99) / 100 THEN latency END) AS l99,
  max(CASE WHEN lr = (n * 999 + 999) / 1000 THEN latency END) AS l999,
  max(latency) AS lmax,
  max(CASE WHEN pr = (n * 50 + 99) / 100 THEN processing END) AS p50,
  max(CASE WHEN pr = (n * 90 + 99) / 100 THEN processing END) AS p90,
  max(CASE WHEN pr = (n * 99 + 99) / 100 THEN processing END) AS p99,
  max(CASE WHEN pr = (n * 999 + 999) / 1000 THEN processing END) AS p999,
  max(processing) AS pmax
FROM r GROUP BY actor, stream ORDER BY actor, stream`;

export const analyticsBench: BenchSection = {
  group: GROUP,
  async run({ quick }) {
    const dir = mkdtempSync(join(tmpdir(), 'dorsal-bench-analytics-'));
    const sqlite = new Database(join(dir, 'timings.sqlite'));
    try {
      const trees = 200_000;
      const extraTimings = quick ? 1_000_000 : 10_000_000;
      sqlite.pragma('journal_mode = OFF');
      sqlite.pragma('synchronous = OFF');
      sqlite.exec('CREATE TABLE timings (actor INTEGER, stream INTEGER, latency REAL, processing REAL)');
      const insert = sqlite.prepare('INSERT INTO timings VALUES (?, ?, ?, ?)');
      sqlite.exec('BEGIN');
      const run = await writeBenchRun({ data: dir }, trees, extraTimings, (a, s, l, p) =>
        insert.run(a, s, l, p),
      );
      sqlite.exec('COMMIT');
      const records = run.messages + run.timings;
      const rows: BenchRow[] = [];

      // The Parquet writer's floor: as many rows and columns, from range(), in this run.
      const floorDb = await DuckDBInstance.create(':memory:');
      const floorConnection = await floorDb.connect();
      const floor = await timed(() =>
        floorConnection.run(
          `COPY (SELECT i::DOUBLE AS a, (i * 1.5)::DOUBLE AS b, (i * 2.5)::DOUBLE AS c, (i * 3.5)::DOUBLE AS d, (i * 4.5)::DOUBLE AS e, (i % 7)::USMALLINT AS f, (i % 5)::USMALLINT AS g, (i * 0.5)::DOUBLE AS h FROM range(${records}) t(i)) TO '${join(dir, 'floor.parquet')}' (FORMAT parquet)`,
        ),
      );
      floorConnection.closeSync();
      floorDb.closeSync();

      const analytics = await Analytics.open({
        lake: { data: dir },
        cacheDir: join(dir, 'analytics'),
        timeoutMs: 600_000,
      });
      try {
        const etl = await timed(() =>
          analytics.query('SELECT count(*) FROM timings', { process: run.processId }),
        );
        const etlRate = records / (etl.ms / 1000);
        const floorRate = records / (floor.ms / 1000);
        rows.push(
          row(
            `ETL: blocks -> Parquet partitions, ${(records / 1e6).toFixed(1)} M records, 1 thread`,
            etlRate / 1e6,
            'M events/s',
            {
              baseline: 'DuckDB writing range() rows to Parquet',
              ratio: etlRate / floorRate,
              target: '≥ 5 M events/s',
              met: etlRate >= 5e6,
              note: `${etl.value.decodedBlocks} blocks in ${etl.ms.toFixed(0)} ms`,
            },
          ),
          row('DuckDB writing range() rows to Parquet', floorRate / 1e6, 'M events/s'),
        );

        const duck: number[] = [];
        for (let i = 0; i < 3; i++)
          duck.push((await timed(() => analytics.percentiles({ process: run.processId }))).ms);
        const lite: number[] = [];
        for (let i = 0; i < (quick ? 3 : 1); i++)
          lite.push((await timed(() => sqlite.prepare(SQLITE_PERCENTILES).all())).ms);
        rows.push(
          row(
            `percentiles per actor × stream, ${(run.timings / 1e6).toFixed(1)} M timing rows, cached`,
            median(duck) / 1000,
            's',
            {
              baseline: 'the same on SQLite (window functions)',
              ratio: median(lite) / median(duck),
              target: '≤ 0.5 s',
              met: median(duck) <= 500,
              note: 'ratio: SQLite time ÷ DuckDB time',
            },
          ),
          row('the same on SQLite (window functions)', median(lite) / 1000, 's'),
        );

        let x = 12345;
        const pick = () => {
          x = (x * 1103515245 + 12345) % 2 ** 31;
          return x % trees;
        };
        await analytics.tree({ process: run.processId, stream: 'ticks', seq: pick() });
        const tree: number[] = [];
        const one: number[] = [];
        for (let i = 0; i < 30; i++) {
          const seq = pick();
          tree.push((await timed(() => analytics.tree({ process: run.processId, stream: 'ticks', seq }))).ms);
          one.push(
            (
              await timed(() =>
                analytics.query(`SELECT * FROM messages WHERE stream = 'ticks' AND seq = ${seq}`, {
                  process: run.processId,
                }),
              )
            ).ms,
          );
        }
        rows.push(
          row(
            `one message tree out of ${(run.messages / 1e6).toFixed(1)} M messages (p50 of 30)`,
            median(tree),
            'ms',
            {
              baseline: 'one message by stream and seq (p50 of 30)',
              ratio: median(tree) / median(one),
              target: '≤ 50 ms',
              met: median(tree) <= 50,
            },
          ),
          row('one message by stream and seq (p50 of 30)', median(one), 'ms'),
        );
        const slowest = await timed(() => analytics.slowestTrees({ process: run.processId, n: 100 }));
        rows.push(
          row('the 100 slowest trees', slowest.ms / 1000, 's', {
            target: '≤ 2 s',
            met: slowest.ms <= 2000,
            note: `${slowest.value.length} trees of ${slowest.value[0]?.nodes ?? 0} messages`,
          }),
        );
      } finally {
        await analytics.close();
      }
      return rows;
    } finally {
      sqlite.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
