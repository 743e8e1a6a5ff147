import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBenchRun } from '../../bench/analytics/data.js';
import { defineMessage, defineSpine, System, type SystemReport } from '../../src/index.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { QueryRefusedError, QueryTimeoutError } from '../../src/telemetry/analytics/guard.js';
import { lakeCacheDir } from '../../src/telemetry/analytics/lake-cache-dir.js';
import type { MessageTree, TreeNode } from '../../src/telemetry/analytics/questions.js';
import { LakeConfigError, LakeNotFoundError } from '../../src/telemetry/errors.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { partitionBlobPaths } from '../../src/telemetry/lake/types.js';
import { gatherReport } from '../../src/telemetry/views/report-data.js';
import { encodeProcessInfo, encodeStreamInfo, formatRfc3339Ns } from '../../src/telemetry/wire/index.js';
import { Fill, Order, spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { runDorsal } from './cli-helpers.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);
const TICKS = 3000;

/** A tick → two orders → a fill each, persisted into `data`, run until every fill is out. */
const runPipeline = (data: string, ticks: number, blockBytes = 16 * 1024): Promise<SystemReport> =>
  runPersistedPipeline({ data, blockMs: 50, blockBytes }, ticks);

const n = (value: unknown) => Number(value);

describe('analytics over a persisted run', () => {
  const { dir, cleanup } = tempDir('dorsal-analytics-');
  let report: SystemReport;
  let analytics: Analytics;
  let processId: string;

  beforeAll(async () => {
    report = await runPipeline(dir, TICKS);
    analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    processId = (await analytics.lake.processes())[0]!.processId;
  }, 120_000);
  afterAll(async () => {
    await analytics?.close();
    cleanup();
  });

  it('holds every message published, or counts it lost, per stream', async () => {
    const { rows, decodedBlocks } = await analytics.query(
      "SELECT m.stream, m.n, l.lost FROM (SELECT stream, count(*) AS n FROM messages GROUP BY 1) m JOIN losses l USING (stream) WHERE l.counted_by = 'persister' ORDER BY 1",
    );
    // The small blocks make many of them: the first query decoded them all.
    expect(decodedBlocks).toBeGreaterThan(3);
    const published = Object.fromEntries(report.streams.map((s) => [s.stream, s.published]));
    expect(published).toEqual({ ticks: TICKS, orders: 2 * TICKS, fills: 2 * TICKS });
    expect(rows.map(([stream, count, lost]) => [stream, n(count) + n(lost)])).toEqual([
      ['fills', 2 * TICKS],
      ['orders', 2 * TICKS],
      ['ticks', TICKS],
    ]);
  });

  it('answers the same from a cache under folders named like columns (key=value: no Hive partitioning of the path)', async () => {
    const questions = [
      'SELECT process_id, count(*), sum(price), min(seq), max(seq) FROM stream_ticks GROUP BY ALL',
      'SELECT process_id, stream, count(*), min(seq), max(seq) FROM messages GROUP BY ALL ORDER BY ALL',
      'SELECT process_id, count(*), sum(latency_ns) FROM timings GROUP BY ALL',
      'SELECT process_id, counted_by, sum(lost) FROM losses GROUP BY ALL ORDER BY ALL',
    ];
    const expected = await Promise.all(questions.map(async (q) => (await analytics.query(q)).rows));
    expect(expected[0]![0]![0]).toBe(processId);
    const odd = await Analytics.open({
      lake: { data: dir },
      cacheDir: join(dir, 'price=1', 'seq=7', 'process_id=abc', 'cache'),
    });
    try {
      for (const [i, q] of questions.entries()) expect((await odd.query(q)).rows, q).toEqual(expected[i]);
    } finally {
      await odd.close();
    }
  });

  it('holds one timing row per handler call, each in order: origin ≤ publish ≤ start ≤ end', async () => {
    const { rows } = await analytics.query(
      `SELECT actor, stream, count(*), count(*) FILTER (WHERE NOT (origin_t <= publish_t AND publish_t <= start_t AND start_t <= end_t)),
              count(*) FILTER (WHERE latency_ns <> end_t - origin_t OR processing_ns <> end_t - start_t)
       FROM timings GROUP BY ALL ORDER BY 1`,
    );
    const handled = (actor: string, stream: string) =>
      report.actors.find((a) => a.name === actor)!.streams.find((s) => s.stream === stream)!.handled;
    const lost = await analytics.query(
      "SELECT stream, lost FROM losses WHERE stream LIKE 'timings:%' AND consumer = 'persister' ORDER BY 1",
    );
    const lostOf = (actor: string) => n(lost.rows.find((r) => r[0] === `timings:${actor}`)?.[1] ?? 0);
    expect(rows.map((r) => [r[0], r[1], n(r[2]) + lostOf(String(r[0])), n(r[3]), n(r[4])])).toEqual([
      ['gateway', 'orders', handled('gateway', 'orders'), 0, 0],
      ['strategy', 'ticks', handled('strategy', 'ticks'), 0, 0],
    ]);
  });

  it('joins every message to its parent, and the trees have the pipeline’s fan-out', async () => {
    const orphans = await analytics.query(
      `SELECT count(*) FROM messages c WHERE c.parent_stream IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM messages p WHERE p.stream = c.parent_stream AND p.seq = c.parent_seq)`,
    );
    expect(n(orphans.rows[0]![0])).toBe(0);
    const ingress = await analytics.query(
      "SELECT count(*) FROM messages WHERE parent_stream IS NULL AND stream <> 'ticks'",
    );
    expect(n(ingress.rows[0]![0])).toBe(0);
    // A tick → two orders (sides 0 and 1, naming the tick) → a fill each: through the typed views.
    const fanOut = await analytics.query(
      `SELECT t.seq, count(DISTINCT o.seq), count(f.seq), bool_and(o.tick = t.n), list_sort(list(DISTINCT o.side))
       FROM stream_ticks t JOIN stream_orders o ON o.parent_stream = 'ticks' AND o.parent_seq = t.seq
       JOIN stream_fills f ON f.parent_stream = 'orders' AND f.parent_seq = o.seq
       GROUP BY t.seq, t.n HAVING NOT (count(DISTINCT o.seq) = 2 AND count(f.seq) = 2 AND bool_and(o.tick = t.n))`,
    );
    expect(fanOut.rows).toEqual([]);
    const trees = await analytics.query(
      "SELECT count(*) FROM stream_ticks t WHERE (SELECT count(*) FROM stream_orders o WHERE o.parent_seq = t.seq AND o.parent_stream = 'ticks') = 2",
    );
    expect(n(trees.rows[0]![0])).toBe(TICKS);
  });

  it('gives each message its envelope, its fields and its absolute time', async () => {
    const { rows, columns } = await analytics.query('SELECT * FROM stream_orders WHERE seq = 7');
    expect(columns.map((c) => c.name)).toEqual([
      'process_id',
      'stream',
      'seq',
      'origin_t',
      'publish_t',
      'actor',
      'parent_stream',
      'parent_seq',
      'publish_time',
      'tick',
      'side',
    ]);
    const [pid, stream, seq, origin, publish, actor, parentStream, parentSeq, publishTime, tick, side] =
      rows[0]!;
    expect([pid, stream, n(seq), actor, parentStream, n(parentSeq), tick, side]).toEqual([
      processId,
      'orders',
      7,
      'strategy',
      'ticks',
      3,
      3,
      1,
    ]);
    expect(n(origin)).toBeLessThanOrEqual(n(publish));
    const process = (await analytics.lake.process(processId))!;
    const wall = Date.parse(`${String(publishTime).replace(' ', 'T').slice(0, 23)}Z`);
    expect(Math.abs(wall - (Date.parse(process.startTime) + n(publish) / 1e6))).toBeLessThan(1);
    const json = await analytics.query(
      "SELECT fields->>'tick', fields->>'side' FROM messages WHERE stream = 'orders' AND seq = 7",
    );
    expect(json.rows).toEqual([['3', '1']]);
  });

  it('answers percentiles per actor × stream, in order, with the counts', async () => {
    const rows = await analytics.percentiles({ process: processId });
    expect(rows.map((r) => [r.actor, r.stream, r.count])).toEqual([
      ['gateway', 'orders', 2 * TICKS],
      ['strategy', 'ticks', TICKS],
    ]);
    for (const row of rows) {
      for (const p of [row.latency, row.processing]) {
        expect(p.p50).toBeLessThanOrEqual(p.p90);
        expect(p.p90).toBeLessThanOrEqual(p.p99);
        expect(p.p99).toBeLessThanOrEqual(p.p999);
        expect(p.p999).toBeLessThanOrEqual(p.max);
      }
      expect(row.processing.max).toBeLessThanOrEqual(row.latency.max);
    }
    const max = await analytics.query("SELECT max(latency_ns) FROM timings WHERE actor = 'gateway'");
    // In whole nanoseconds.
    expect(rows[0]!.latency.max).toBe(Math.round(n(max.rows[0]![0])));
    const byActor = await analytics.percentiles({ process: processId, by: ['actor'] });
    expect(byActor.map((r) => [r.actor, r.stream, r.count])).toEqual([
      ['gateway', undefined, 2 * TICKS],
      ['strategy', undefined, TICKS],
    ]);
    await expect(analytics.percentiles({ by: ['seq' as 'actor'] })).rejects.toThrow(QueryRefusedError);
  });

  it('gives the exact tree of a message, from any of its nodes', async () => {
    const check = (tree: MessageTree, tick: number) => {
      expect(tree.missingParent).toBe(false);
      expect(tree.nodes).toBe(5);
      expect([
        tree.root.stream,
        tree.root.seq,
        tree.root.fields,
        tree.root.hopNs,
        tree.root.publishNs,
      ]).toEqual(['ticks', tick, { n: tick, price: 100 + (tick % 7) }, 0, 0]);
      expect(tree.root.handled.map((h) => h.actor)).toEqual(['strategy']);
      const orders = tree.root.children;
      expect(orders.map((o) => [o.stream, o.actor, o.fields])).toEqual([
        ['orders', 'strategy', { tick, side: 0 }],
        ['orders', 'strategy', { tick, side: 1 }],
      ]);
      for (const order of orders) {
        expect(order.hopNs).toBe(order.publishNs);
        expect(order.handled.map((h) => h.actor)).toEqual(['gateway']);
        expect(order.children.map((f) => [f.stream, f.actor, f.children.length])).toEqual([
          ['fills', 'gateway', 0],
        ]);
        const fill = order.children[0]!;
        expect(fill.hopNs).toBeCloseTo(fill.publishNs - order.publishNs, 3);
      }
      const all = (node: TreeNode): TreeNode[] => [node, ...node.children.flatMap(all)];
      const latest = Math.max(
        ...all(tree.root).flatMap((x) => [x.publishNs, ...x.handled.map((h) => h.latencyNs)]),
      );
      expect(tree.latencyNs).toBe(latest);
    };
    check(await analytics.tree({ process: processId, stream: 'ticks', seq: 42 }), 42);
    // From a leaf: the same tree, found through its parents.
    const fromFill = await analytics.tree({ process: processId, stream: 'fills', seq: 85 });
    const order = fromFill.root.children.find((o) => o.children.some((f) => f.seq === 85));
    expect(order).toBeDefined();
    check(fromFill, fromFill.root.seq);
    await expect(analytics.tree({ process: processId, stream: 'ticks', seq: 10 * TICKS })).rejects.toThrow(
      /no message ticks #30000/,
    );
    await expect(analytics.tree({ process: processId, stream: 'ticks', seq: -1 })).rejects.toThrow(
      QueryRefusedError,
    );
    // No stream by that name (no view of its own; none can hold a NUL), in any case.
    for (const stream of ['nope', `it's "quoted"`, 'ti\0cks', 'TICKS']) {
      await expect(analytics.tree({ process: processId, stream, seq: 1 })).rejects.toThrow(
        `tree: no message ${stream} #1 in process ${processId}`,
      );
    }
  });

  it('finds the slowest trees, slowest first, each whole', async () => {
    const slowest = await analytics.slowestTrees({ process: processId, n: 20 });
    expect(slowest).toHaveLength(20);
    for (let i = 1; i < slowest.length; i++)
      expect(slowest[i]!.latencyNs).toBeLessThanOrEqual(slowest[i - 1]!.latencyNs);
    expect(slowest.every((t) => t.nodes === 5 && t.root.stream === 'ticks')).toBe(true);
    const worst = await analytics.query('SELECT max(latency_ns) FROM timings');
    expect(slowest[0]!.latencyNs).toBe(n(worst.rows[0]![0]));
  });

  it('reads a time window only', async () => {
    const bounds = await analytics.query(
      'SELECT min(publish_time)::VARCHAR, max(publish_time)::VARCHAR FROM stream_ticks',
    );
    const [first, last] = bounds.rows[0]!.map((t) => `${String(t).replace(' ', 'T')}Z`);
    const middle = new Date((Date.parse(first!) + Date.parse(last!)) / 2);
    const all = await analytics.query('SELECT count(*) FROM stream_ticks');
    const before = await analytics.query('SELECT count(*) FROM stream_ticks', { end: middle });
    const after = await analytics.query('SELECT count(*) FROM stream_ticks', { begin: middle });
    expect(n(before.rows[0]![0]) + n(after.rows[0]![0])).toBe(n(all.rows[0]![0]));
    await expect(analytics.query('SELECT 1', { begin: 'yesterday' })).rejects.toThrow(
      /begin must be an RFC 3339 time/,
    );
  });

  it('keeps a bounded number of looks at the lake, however many time windows it is asked', async () => {
    const start = Date.parse('2026-01-01T00:00:00Z');
    for (let i = 0; i < 80; i++) {
      const { rows } = await analytics.query('SELECT count(*) FROM stream_ticks', {
        begin: new Date(start + i * 1000),
      });
      expect(n(rows[0]![0])).toBe(TICKS);
    }
    // One look per window was kept for good, each holding every block row of the lake.
    expect(analytics.held().looks).toBeLessThanOrEqual(32);
    expect(analytics.held().sessions).toBeLessThanOrEqual(8);
  });

  it('keeps the parse of the query texts asked lately, a bounded number of them, and no refusal', async () => {
    const before = analytics.held().parses;
    const sql = 'SELECT count(*) AS kept_parse FROM stream_ticks';
    for (let i = 0; i < 3; i++) expect(n((await analytics.query(sql)).rows[0]![0])).toBe(TICKS);
    expect(analytics.held().parses).toBe(before + 1);
    // Refused again each time, saying why: never kept.
    for (let i = 0; i < 2; i++)
      await expect(analytics.query('DELETE FROM blocks /* kept? */')).rejects.toThrow(/only SELECT.*DELETE/);
    expect(analytics.held().parses).toBe(before + 1);
    for (let i = 0; i < 200; i++) expect(n((await analytics.query(`SELECT ${i}`)).rows[0]![0])).toBe(i);
    expect(analytics.held().parses).toBe(128);
  });

  it('refuses every statement that writes, and several statements, saying why', async () => {
    const refusals: [string, RegExp][] = [
      ['INSERT INTO blocks VALUES (1)', /only SELECT.*INSERT/],
      ["UPDATE processes SET exe = 'x'", /only SELECT.*UPDATE/],
      ['DELETE FROM blocks', /only SELECT.*DELETE/],
      ['CREATE TABLE t (a INT)', /only SELECT.*CREATE/],
      ["COPY blocks TO 'x.csv'", /only SELECT.*COPY/],
      ["ATTACH 'x.db'", /only SELECT.*ATTACH/],
      ['INSTALL httpfs', /only SELECT/],
      ['LOAD httpfs', /only SELECT.*LOAD/],
      ['SET threads = 1', /only SELECT.*SET/],
      ['PRAGMA version', /only SELECT.*PRAGMA/],
      ['EXPLAIN ANALYZE DELETE FROM blocks', /only SELECT.*EXPLAIN/],
      ['WITH x AS (SELECT 1) DELETE FROM blocks', /only SELECT.*WITH/],
      ['SELECT 1; SELECT 2', /one statement per query, got 2/],
      ['', /empty/],
      ['SELEC 1', /does not parse/],
    ];
    for (const [sql, reason] of refusals) {
      const error = await analytics.query(sql).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, sql).toBeInstanceOf(QueryRefusedError);
      expect((error as Error).message, sql).toMatch(reason);
    }
    await expect(analytics.query("SELECT * FROM read_csv('/etc/passwd')")).rejects.toThrow(
      /table function 'read_csv'/,
    );
    // A file named as a table (DuckDB's replacement scans), even in the directories the views read
    // (the cache another lake's server may share): refused before it runs.
    const partitions = join(dir, 'analytics').replaceAll("'", "''");
    for (const sql of [
      `SELECT count(*) FROM '${partitions}/**/*.parquet'`,
      `SELECT * FROM (SELECT 1) t, "${partitions}/x.csv"`,
      "SELECT * FROM 'https://example.com/x.json'",
    ]) {
      await expect(analytics.query(sql), sql).rejects.toThrow(/names a file, not a table/);
    }
    // A common table expression may be named with a dot; not with a path, which could name the
    // file outside the CTE's scope.
    expect((await analytics.query('WITH "a.b" AS (SELECT 7 AS v) SELECT v FROM "a.b"')).rows).toEqual([[7]]);
    const shadow = `SELECT * FROM (WITH "${partitions}/x.csv" AS (SELECT 1) SELECT 1), "${partitions}/x.csv"`;
    await expect(analytics.query(shadow)).rejects.toThrow(/names a file, not a table/);
    // Table functions that change the engine for every query: logging to a directory the engine
    // may not write aborted the process at the next query. Refused however deep in the query.
    for (const sql of [
      "SELECT * FROM enable_logging(storage = 'file', storage_path = '/proc/dorsal-nope')",
      'SELECT * FROM enable_profiling()',
      'SELECT * FROM (SELECT 1) t, LATERAL (SELECT * FROM checkpoint())',
      "SELECT * FROM query('SELECT 1')",
      'WITH x AS (SELECT * FROM duckdb_secrets()) SELECT * FROM x',
    ]) {
      const error = await analytics.query(sql).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, sql).toBeInstanceOf(QueryRefusedError);
      expect((error as Error).message, sql).toMatch(/the query calls the table function/);
    }
    expect((await analytics.query('SELECT 1')).rows).toEqual([[1]]);
    // Generators and the read-only catalogs are queries' to call.
    expect(
      Number((await analytics.query('SELECT count(*) FROM range(5) a, unnest([1, 2]) b')).rows[0]![0]),
    ).toBe(10);
    expect((await analytics.query('SELECT count(*) FROM duckdb_tables()')).rows).toHaveLength(1);
    await expect(analytics.query('SELECT * FROM no_such_table')).rejects.toThrow(QueryRefusedError);
    // EXPLAIN of a SELECT shows its plan; EXPLAIN ANALYZE would run it, and is refused above.
    const plan = await analytics.query('EXPLAIN SELECT count(*) FROM stream_ticks WHERE seq = 3');
    expect(JSON.stringify(plan.rows)).toMatch(/READ_PARQUET/);
    await expect(analytics.query('EXPLAIN DELETE FROM blocks')).rejects.toThrow(/only SELECT.*DELETE/);
  });

  it('refuses an empty query, or one of comments alone, as empty', async () => {
    for (const sql of ['', '  ;  ', '-- nothing', '/* a /* nested */ comment */', '-- one\n/* two */ ;']) {
      const error = await analytics.query(sql).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, sql).toBeInstanceOf(QueryRefusedError);
      expect((error as Error).message, sql).toMatch(/^the query is empty/);
    }
    // A comment before a statement is no empty query, nor an unterminated one.
    expect((await analytics.query('-- the answer\nSELECT 42')).rows).toEqual([[42]]);
    await expect(analytics.query('/* not ended')).rejects.toThrow(/does not parse/);
  });

  it("refuses what shows the server's paths and settings: catalogs, current_setting, internal tables", async () => {
    const refusals: [string, RegExp][] = [
      ["SELECT current_setting('temp_directory')", /current_setting\('temp_directory'\)/],
      ["SELECT current_setting('allowed_directories')", /current_setting/],
      ["SELECT current_setting(lower('SECRET_DIRECTORY'))", /current_setting\(…\)/],
      ['SELECT * FROM duckdb_settings()', /table function 'duckdb_settings'/],
      ['SELECT * FROM duckdb_extensions()', /table function 'duckdb_extensions'/],
      ['SELECT * FROM duckdb_databases()', /table function 'duckdb_databases'/],
      ['SELECT * FROM duckdb_temporary_files()', /table function 'duckdb_temporary_files'/],
      ['SELECT sql FROM duckdb_views()', /table function 'duckdb_views'/],
      ['SELECT * FROM pragma_database_size()', /table function 'pragma_database_size'/],
      ['SELECT * FROM pragma_platform()', /table function 'pragma_platform'/],
      ['SELECT file FROM _instrumented_files', /table '_instrumented_files', which is not one of/],
      ['SUMMARIZE _instrumented_files', /table '_instrumented_files'/],
      ['SELECT view_definition FROM information_schema.views', /table 'views'/],
      ['SELECT * FROM pg_settings', /table 'pg_settings'/],
      ['SELECT sql FROM sqlite_master', /table 'sqlite_master'/],
      ['SELECT sql FROM duckdb_views', /table 'duckdb_views'/],
      ["SELECT write_log('x')", /function 'write_log'/],
      // A CTE named as the hidden table lets no qualified reference through.
      ['WITH pg_settings AS (SELECT 1) SELECT * FROM pg_catalog.pg_settings', /table 'pg_settings'/],
      [
        'WITH _instrumented_files AS (SELECT 1) SELECT * FROM temp.main._instrumented_files',
        /table '_instrumented_files'/,
      ],
      ['WITH duckdb_views AS (SELECT 1) SELECT sql FROM main.duckdb_views', /table 'duckdb_views'/],
    ];
    for (const [sql, reason] of refusals) {
      const error = await analytics.query(sql).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, sql).toBeInstanceOf(QueryRefusedError);
      expect((error as Error).message, sql).toMatch(reason);
      expect((error as Error).message, sql).not.toContain(dir);
    }
    // What the analytics document stays a query's: every table, the name tables, the catalogs of
    // what a query can name, and the settings that name no directory.
    for (const table of [
      'processes',
      'streams',
      'blocks',
      'messages',
      'stream_ticks',
      'timings',
      'timing_records',
      'log_entries',
      'measures',
      'thread_spans',
      'losses',
      'run_counts',
      'actor_counts',
      'timing_reads',
      'unreadable_blocks',
      'replay_diffs',
      'replay_diff_streams',
      'replay_divergences',
      '_actors',
      '_stream_names',
    ]) {
      expect((await analytics.query(`SELECT count(*) FROM ${table}`)).rows, table).toHaveLength(1);
    }
    const settings = await analytics.query(
      "SELECT current_setting('memory_limit') IS NOT NULL, current_setting('threads') > 0, count(*) > 0 FROM duckdb_columns() WHERE table_name = 'messages'",
    );
    expect(settings.rows).toEqual([[true, true, true]]);
  });

  it('refuses CTEs that, inlined, would bind tens of thousands of tables (an exponential binding)', async () => {
    // Each level names the one before twice: 2^21 tables bound, minutes without the refusal (past
    // any time limit: DuckDB checks its interrupt too seldom in such a binding).
    let sql = 'WITH a0 AS NOT MATERIALIZED (SELECT 1 AS x)';
    for (let i = 1; i <= 20; i++) {
      sql += `, a${i} AS NOT MATERIALIZED (SELECT * FROM a${i - 1} UNION ALL SELECT * FROM a${i - 1})`;
    }
    sql += ' SELECT count(*) FROM a20';
    await expect(analytics.query(sql)).rejects.toThrow(/inlined, name more than 256 tables/);
    // A few levels are a query's.
    const few = sql.replace(/, a3 AS[\s\S]*$/, ' SELECT count(*) FROM a2');
    expect((await analytics.query(few)).rows.map((r) => r.map(Number))).toEqual([[4]]);
  }, 60_000);

  it('stops a query at its time limit and cuts rows at the row limit', async () => {
    await expect(
      analytics.query('SELECT count(*) FROM range(100000000000) a, range(10) b', { timeoutMs: 50 }),
    ).rejects.toThrow(QueryTimeoutError);
    const cut = await analytics.query('SELECT seq FROM stream_ticks ORDER BY seq', { maxRows: 10 });
    expect([cut.rows.length, cut.truncated]).toEqual([10, true]);
    const whole = await analytics.query('SELECT seq FROM stream_ticks ORDER BY seq LIMIT 10', {
      maxRows: 10,
    });
    expect(whole.truncated).toBe(false);
    // The engine still answers after a stopped query.
    expect((await analytics.query('SELECT 42')).rows).toEqual([[42]]);
  });

  it('cuts an answer at its byte limit, before the rows past it are made, and refuses a first row larger than it', async () => {
    const small = await Analytics.open({
      lake: { data: dir },
      cacheDir: join(dir, 'analytics'),
      maxBytes: 4096,
    });
    try {
      // 1000-character rows (1002 bytes as JSON): four fit in 4 KiB.
      const cut = await small.query("SELECT repeat('x', 1000) AS text FROM range(10000)");
      expect([cut.rows.length, cut.truncated]).toEqual([4, true]);
      expect(JSON.stringify(cut.rows).length).toBeLessThanOrEqual(4096 + 10);
      const whole = await small.query("SELECT repeat('x', 1000) AS text FROM range(3)");
      expect([whole.rows.length, whole.truncated]).toEqual([3, false]);
      await expect(small.query("SELECT repeat('x', 5000) AS text")).rejects.toThrow(
        /first row is larger than 4 KiB as JSON, the most an answer holds: select less of it/,
      );
      expect((await small.query('SELECT 42')).rows).toEqual([[42]]);
      // Counted as JSON writes them: a control character is six (\u0001), a quote two.
      await expect(small.query('SELECT repeat(chr(1), 1000) AS text')).rejects.toThrow(/first row is larger/);
      const escaped = await small.query(`SELECT repeat(chr(1) || '"', 300) AS text FROM range(10)`);
      expect(escaped.truncated).toBe(true);
      expect(JSON.stringify(escaped.rows).length).toBeLessThanOrEqual(4096 + 10);
    } finally {
      await small.close();
    }
  }, 60_000);

  it('makes only the rows it answers: a chunk of large rows past the limit is not made (a 128 MB heap suffices)', async () => {
    const run = await runDorsal(
      [
        'query',
        '--data',
        dir,
        '--max-rows',
        '1',
        '--format',
        'csv',
        "SELECT repeat('x', 200000) AS s FROM range(4096)",
      ],
      { NODE_OPTIONS: '--max-old-space-size=128' },
    );
    expect(run.stderr).not.toMatch(/heap/i);
    expect([run.code, run.stdout.split('\n')[1]?.trim().length]).toEqual([0, 200_000]);
  }, 60_000);

  it('holds the memory it is given, spilling into its cache dir, and refuses a size it cannot read', async () => {
    // What a killed analytics left: its process is gone (a child that exited), its files stay.
    const child = spawnSync(process.execPath, ['-e', 'process.pid'], { stdio: 'ignore' });
    expect(child.pid).toBeGreaterThan(0);
    const host = hostname().replace(/[^A-Za-z0-9.]/g, '_');
    const left = join(dir, 'analytics-limited', 'spill', `${host}-${child.pid}-0badf00d`);
    // Another machine's, on a shared disk: never this host's to judge.
    const elsewhere = join(dir, 'analytics-limited', 'spill', `not-${host}-${child.pid}-0badf00d`);
    mkdirSync(elsewhere, { recursive: true });
    mkdirSync(left, { recursive: true });
    writeFileSync(join(left, 'duckdb_temp_block-1.block'), 'x'.repeat(4096));
    const limited = await Analytics.open({
      lake: { data: dir },
      cacheDir: join(dir, 'analytics-limited'),
      memoryLimit: '256MB',
    });
    try {
      const { rows } = await limited.query("SELECT current_setting('memory_limit')");
      expect(String(rows[0]![0])).toMatch(/^244\.1 MiB$/);
      expect(existsSync(left)).toBe(false);
      expect(existsSync(elsewhere)).toBe(true);
      // A sort larger than the limit spills and completes.
      const sorted = await limited.query(
        'SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) AS h FROM range(6000000) t(i) ORDER BY h)',
      );
      expect(n(sorted.rows[0]![0])).toBe(6_000_000);
      // It spilled into its own directory (which no query may read: it names the host and the process).
      const spill = readdirSync(join(dir, 'analytics-limited', 'spill'));
      expect(spill.some((name) => name.startsWith(`${host}-${process.pid}-`))).toBe(true);
    } finally {
      await limited.close();
    }
    for (const memoryLimit of ['lots', '12', '-1GB', '', '0B', '1MB', '99999999999TB']) {
      await expect(
        Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics-bad'), memoryLimit }),
      ).rejects.toThrow(/'memoryLimit' must be a size from 64MiB to 1024TiB such as '1GB'/);
    }
  }, 120_000);

  it("makes partitions in a scratch directory of its own, removed at its close; a killed one's is removed at the next open", async () => {
    const child = spawnSync(process.execPath, ['-e', 'process.pid'], { stdio: 'ignore' });
    const host = hostname().replace(/[^A-Za-z0-9.]/g, '_');
    const cacheDir = join(dir, 'analytics-scratch');
    const scratch = join(cacheDir, 'scratch');
    // What a kill -9 mid-partition left, another machine's (a shared disk), and loose files of an
    // earlier version: one long over, one maybe still being written.
    const left = join(scratch, `${host}-${child.pid}-0badf00d`);
    const elsewhere = join(scratch, `not-${host}-${child.pid}-0badf00d`);
    for (const d of [left, elsewhere]) mkdirSync(d, { recursive: true });
    writeFileSync(join(left, `${randomUUID()}.parquet`), 'half a partition');
    const [old, recent] = [
      join(scratch, `${randomUUID()}.parquet`),
      join(scratch, `${randomUUID()}.parquet`),
    ];
    for (const file of [old, recent]) writeFileSync(file, 'half a partition');
    const twoHoursAgo = new Date(Date.now() - 7_200_000);
    utimesSync(old, twoHoursAgo, twoHoursAgo);
    // A lake of its own: the suite's already holds its partitions, and nothing would be made.
    const data = join(dir, 'scratch-lake');
    await writeBenchRun({ data }, 10, 0);
    const own = await Analytics.open({ lake: { data }, cacheDir });
    try {
      expect([left, old].filter(existsSync)).toEqual([]);
      expect([elsewhere, recent].filter(existsSync)).toEqual([elsewhere, recent]);
      // Its partitions made (nothing decoded by the earlier ones in this cache dir), in its own.
      const { decodedBlocks } = await own.query('SELECT count(*) FROM stream_ticks');
      expect(decodedBlocks).toBeGreaterThan(0);
      expect(readdirSync(scratch).filter((name) => name.startsWith(`${host}-${process.pid}-`))).toHaveLength(
        1,
      );
    } finally {
      await own.close();
    }
    expect(readdirSync(scratch).filter((name) => name.startsWith(`${host}-${process.pid}-`))).toEqual([]);
  }, 60_000);

  it('refuses an unknown process with a clear error', async () => {
    await expect(analytics.query('SELECT 1', { process: 'no-such-process' })).rejects.toThrow(
      LakeNotFoundError,
    );
  });
});

describe('partitions, cached and rebuilt', () => {
  it('keeps partitions in the lake, reads them without decoding a block again, and rebuilds one that is missing or damaged', async () => {
    const { dir, cleanup } = tempDir('dorsal-partitions-');
    try {
      await runPipeline(dir, 500);
      const cacheDir = join(dir, 'analytics');
      const count = 'SELECT count(*) FROM messages';
      let analytics = await Analytics.open({ lake: { data: dir }, cacheDir });
      // The lake's own tables need no partition: nothing is decoded for them.
      const metadata = await analytics.query(
        'SELECT count(*) FROM processes p JOIN blocks b USING (process_id)',
      );
      expect(metadata.decodedBlocks).toBe(0);
      expect(n(metadata.rows[0]![0])).toBeGreaterThan(0);
      // Every field of the process record the lake holds (a diff sends it again as it is).
      const [process] = await analytics.lake.processes();
      const record = await analytics.query(
        "SELECT start_ticks, clock->>'name', (clock->>'ticksPerSecond')::DOUBLE FROM processes",
      );
      expect(record.rows).toEqual([
        [process!.startTicks, process!.clock.name, process!.clock.ticksPerSecond],
      ]);
      const first = await analytics.query(count);
      expect(first.decodedBlocks).toBeGreaterThan(0);
      const second = await analytics.query(count);
      expect(second.decodedBlocks).toBe(0);
      expect(second.rows).toEqual(first.rows);
      await analytics.close();

      // The partitions are in the lake: their rows in its database, their files in its blobs.
      const lake = Lake.open({ data: dir });
      const processId = (await lake.processes())[0]!.processId;
      const rows = await lake.metadata.listPartitions(processId);
      await lake.close();
      expect(rows.map((r) => r.view).sort()).toEqual([
        'stream_fills',
        'stream_orders',
        'stream_ticks',
        'timings',
        'timings',
      ]);
      expect(rows.reduce((sum, r) => sum + r.rowCount, 0)).toBe(2500 + 1500);
      for (const row of rows) expect(existsSync(join(dir, partitionBlobPaths(row).data))).toBe(true);

      // Another Analytics, with a cache of its own (another server): it fetches them, decodes nothing.
      analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'other-cache') });
      const elsewhere = await analytics.query(count);
      expect([elsewhere.decodedBlocks, elsewhere.rows]).toEqual([0, first.rows]);
      const files = (root: string, view: string) =>
        readdirSync(join(root, 'views', view), { recursive: true })
          .map(String)
          .filter((f) => f.endsWith('.parquet'))
          .map((f) => join(root, 'views', view, f));
      // A local copy deleted or cut short: fetched again from the lake, nothing decoded.
      await analytics.close();
      analytics = await Analytics.open({ lake: { data: dir }, cacheDir, freshnessMs: 0 });
      // The cache's copies are in the lake's own directory in it.
      const own = lakeCacheDir(cacheDir, analytics.lake.identity);
      rmSync(files(own, 'stream_orders')[0]!);
      const cut = files(own, 'timings')[0]!;
      truncateSync(cut, Math.floor(statSync(cut).size / 2));
      const fetched = await analytics.query(count);
      expect([fetched.decodedBlocks, fetched.rows]).toEqual([0, first.rows]);
      expect(n((await analytics.query('SELECT count(*) FROM timings')).rows[0]![0])).toBe(1500);
      // A partition's file gone from the lake too: its blocks are decoded again, the answer the same.
      rmSync(files(dir, 'stream_orders')[0]!);
      rmSync(files(own, 'stream_orders')[0]!);
      const rebuilt = await analytics.query(count);
      expect(rebuilt.decodedBlocks).toBeGreaterThan(0);
      expect(rebuilt.rows).toEqual(first.rows);
      // Damaged in the lake and in the cache: the same.
      for (const victim of [files(dir, 'timings')[0]!, files(own, 'timings')[0]!]) {
        truncateSync(victim, Math.floor(statSync(victim).size / 2));
      }
      const timings = await analytics.query('SELECT count(*) FROM timings');
      expect(timings.decodedBlocks).toBeGreaterThan(0);
      expect(n(timings.rows[0]![0])).toBe(1500);
      expect((await analytics.query(count)).decodedBlocks).toBe(0);
      const kept = await analytics.lake.metadata.listPartitions(processId);
      expect(kept).toHaveLength(5);
      await analytics.close();

      // A cache that is the lake's blob directory (or a link to it) is refused: there its copies
      // would be the lake's own partition files, and a sweep of stale copies would remove them.
      symlinkSync(dir, `${dir}-link`);
      // And one named through a link and `..` as the cache joins it (as text: `${dir}-away/..`
      // is `dir`'s parent, wherever the link `-away` leads).
      mkdirSync(`${dir}-elsewhere/deep`, { recursive: true });
      symlinkSync(`${dir}-elsewhere/deep`, `${dir}-away`);
      for (const cache of [dir, `${dir}-link`, `${dir}-away/../${basename(dir)}`]) {
        await expect(Analytics.open({ lake: { data: dir }, cacheDir: cache })).rejects.toThrow(
          LakeConfigError,
        );
      }
      for (const row of kept) expect(existsSync(join(dir, partitionBlobPaths(row).data))).toBe(true);
      // A cache of its own named through a link and `..` is used as one directory: every query
      // failed, DuckDB's allowed directory spelt as given and the files joined apart.
      const linked = await Analytics.open({
        lake: { data: dir },
        cacheDir: `${dir}-away/../${basename(dir)}-cache`,
      });
      try {
        expect(n((await linked.query('SELECT count(*) FROM timings')).rows[0]![0])).toBe(1500);
      } finally {
        await linked.close();
      }
    } finally {
      rmSync(`${dir}-link`, { force: true });
      rmSync(`${dir}-away`, { force: true });
      rmSync(`${dir}-elsewhere`, { recursive: true, force: true });
      rmSync(`${dir}-cache`, { recursive: true, force: true });
      cleanup();
    }
  }, 120_000);

  it('leaves out a block whose blob is missing or damaged, says which, and reads it once it is back', async () => {
    const { dir, cleanup } = tempDir('dorsal-unreadable-');
    try {
      await runPipeline(dir, 500, 2048);
      const analytics = await Analytics.open({
        lake: { data: dir },
        cacheDir: join(dir, 'analytics'),
        freshnessMs: 0,
        unreadableRetryMs: 0,
      });
      try {
        const streams = await analytics.lake.streams();
        const blocksOf = async (name: string) => {
          const stream = streams.find((s) => s.tags.includes('messages') && s.properties.name === name)!;
          return analytics.lake.blocks({ streamId: stream.streamId });
        };
        const [gone] = await blocksOf('ticks');
        const [, damaged] = await blocksOf('orders');
        expect(gone).toBeDefined();
        expect(damaged).toBeDefined();
        const goneBlob = join(dir, gone!.blobPath);
        const damagedBlob = join(dir, damaged!.blobPath);
        const whole = readFileSync(damagedBlob);
        renameSync(goneBlob, `${goneBlob}.away`);
        writeFileSync(damagedBlob, whole.subarray(0, whole.length >> 1));

        const count = async (sql: string) => {
          const result = await analytics.query(sql);
          return { count: n(result.rows[0]![0]), unreadable: result.unreadableBlocks };
        };
        const ticks = await count('SELECT count(*) FROM stream_ticks');
        expect(ticks.count).toBe(500 - gone!.objectCount);
        expect((await analytics.query('SELECT count(*) FROM stream_fills')).unreadable).toEqual({
          blocks: 2,
          records: gone!.objectCount + damaged!.objectCount,
        });
        expect(ticks.unreadable.map((b) => b.blockId).sort()).toEqual(
          [gone!.blockId, damaged!.blockId].sort(),
        );
        const said = new Map(ticks.unreadable.map((b) => [b.blockId, b]));
        expect(said.get(gone!.blockId)).toMatchObject({
          processId: gone!.processId,
          streamId: gone!.streamId,
          objectCount: gone!.objectCount,
          error: expect.stringMatching(new RegExp(`^block ${gone!.blockId}: no blob at `)),
        });
        expect(said.get(damaged!.blockId)!.error).toMatch(new RegExp(`^block ${damaged!.blockId} \\(blob `));
        expect((await count('SELECT count(*) FROM stream_orders')).count).toBe(1000 - damaged!.objectCount);
        const listed = await analytics.query(
          'SELECT block_id, object_count::INTEGER FROM unreadable_blocks ORDER BY block_id',
        );
        expect(listed.rows).toEqual(
          [gone!, damaged!]
            .map((b) => [b.blockId, b.objectCount])
            .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
        );
        // A report counts them, and says why.
        const report = await gatherReport(analytics, gone!.processId);
        expect(report.unreadable).toEqual({
          blocks: 2,
          records: gone!.objectCount + damaged!.objectCount,
          errors: [...said.values()].sort((a, b) => a.blockId.localeCompare(b.blockId)).map((b) => b.error),
        });
        // The lake's own tables read no block: nothing to say.
        expect((await count('SELECT count(*) FROM blocks')).unreadable).toEqual([]);
        // A command says so on stderr, once per block.
        const cli = await runDorsal(['query', '--data', dir, 'SELECT count(*) AS n FROM stream_ticks']);
        expect(cli.code).toBe(0);
        expect(cli.stderr).toContain(
          `dorsal: 2 blocks of the lake did not read, and ${gone!.objectCount + damaged!.objectCount} records are left out of what follows:`,
        );
        expect(cli.stderr).toContain(`block ${gone!.blockId}: no blob at `);
        // A script that takes no partial answer says --strict.
        const strict = await runDorsal([
          'query',
          '--data',
          dir,
          '--strict',
          'SELECT count(*) AS n FROM stream_ticks',
        ]);
        expect(strict.code).toBe(1);
        expect(strict.stdout).toBe('');
        expect(strict.stderr).toMatch(
          /^dorsal: --strict: 2 blocks of the lake did not read; nothing is answered without them/m,
        );

        // Back: read at the next look, and nothing is left out.
        renameSync(`${goneBlob}.away`, goneBlob);
        writeFileSync(damagedBlob, whole);
        expect(await count('SELECT count(*) FROM stream_ticks')).toEqual({ count: 500, unreadable: [] });
        expect((await count('SELECT count(*) FROM stream_orders')).count).toBe(1000);
      } finally {
        await analytics.close();
      }
    } finally {
      cleanup();
    }
  });

  it('sees a block deleted and another added between two looks, however many there are', async () => {
    const { dir, cleanup } = tempDir('dorsal-swapped-blocks-');
    const service = new IngestionService({ data: dir });
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await service.insertProcess(encodeProcessInfo(process));
      await service.insertStream(encodeStreamInfo(stream));
      for (const seed of [1, 2]) await service.ingestBlock(makeBlock(stream, 16, seed).block);
      const analytics = await Analytics.open({
        lake: service.lake,
        cacheDir: join(dir, 'analytics'),
        freshnessMs: 0,
      });
      try {
        const ids = async () =>
          (await analytics.query('SELECT block_id FROM blocks ORDER BY ALL')).rows.map((r) => String(r[0]));
        const before = await ids();
        expect(before).toHaveLength(2);
        // Retention takes one as another arrives: two blocks before, two after.
        const future = formatRfc3339Ns((BigInt(Date.now()) + 3_600_000n) * 1_000_000n);
        expect(await service.lake.metadata.deleteBlocksBefore(future, 1)).toHaveLength(1);
        const added = makeBlock(stream, 16, 3).block;
        await service.ingestBlock(added);
        const left = (await service.lake.blocks()).map((b) => b.blockId);
        expect(await ids()).toEqual([...left].sort());
        expect(await ids()).toContain(added.blockId);
      } finally {
        await analytics.close();
      }
    } finally {
      await service.close();
      cleanup();
    }
  });

  it("shows a live process's new blocks", async () => {
    const { dir, cleanup } = tempDir('dorsal-live-');
    const system = new System(spine, { persist: { data: dir, blockMs: 20 } });
    system.spawn(fixture('feed'), { args: { count: 0, perLoop: 1 } });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('gateway'));
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      await system.start();
      const ticks = async () => {
        const { rows, decodedBlocks } = await analytics
          .query('SELECT count(*) FROM stream_ticks')
          .catch(() => ({
            rows: [[0]],
            decodedBlocks: 0,
          }));
        return { count: n(rows[0]![0]), decodedBlocks };
      };
      let seen = { count: 0, decodedBlocks: 0 };
      await until(async () => {
        seen = await ticks();
        return seen.count > 0;
      }, 'the first ticks in the analytics');
      const before = seen.count;
      await until(async () => {
        seen = await ticks();
        return seen.count > before;
      }, 'more ticks in the analytics');
      expect(seen.decodedBlocks).toBeGreaterThan(0);
    } finally {
      await system.stop();
      await analytics.close();
      cleanup();
    }
  }, 120_000);

  it('merges the small partitions that a process looked at again and again leaves, and still holds every row once', async () => {
    const { dir, cleanup } = tempDir('dorsal-compact-');
    try {
      const report = await runPipeline(dir, TICKS, 4096);
      const analytics = await Analytics.open({
        lake: { data: dir },
        cacheDir: join(dir, 'analytics'),
        freshnessMs: 0,
      });
      try {
        const [process] = await analytics.lake.processes();
        const processId = process!.processId;
        const streams = await analytics.lake.streams({ processId });
        const ticksStream = streams.find((s) => s.properties.name === 'ticks')!;
        const tickBlocks = (await analytics.lake.blocks({ processId }))
          .filter((b) => b.streamId === ticksStream.streamId)
          .sort((a, b) => (a.endTime < b.endTime ? -1 : 1));
        expect(tickBlocks.length).toBeGreaterThan(40);
        // As a live process's view grows: each look finds a few more blocks, and makes partitions of them.
        for (const block of tickBlocks) {
          await analytics.query('SELECT count(*) FROM stream_ticks', {
            process: processId,
            end: block.endTime,
          });
        }
        const { rows } = await analytics.query('SELECT count(*) FROM stream_ticks', { process: processId });
        const lost = report.persist!.sources.find((s) => s.kind === 'messages' && s.name === 'ticks')!.lost;
        expect(n(rows[0]![0]) + lost).toBe(TICKS);
        const partitions = (await analytics.lake.metadata.listPartitions(processId)).filter(
          (p) => p.streamId === ticksStream.streamId,
        );
        // Merged: at most 7 small partitions per tier of size, and each block in exactly one.
        expect(partitions.length).toBeLessThanOrEqual(21);
        expect(partitions.length).toBeLessThan(tickBlocks.length / 2);
        const covered = partitions.flatMap((p) => p.blockIds).sort();
        expect(covered).toEqual(tickBlocks.map((b) => b.blockId).sort());
        // The merged-away partitions' files are gone from the blob store.
        const stored = readdirSync(join(dir, 'views', 'stream_ticks', `process_id=${processId}`));
        expect(stored.length).toBe(partitions.length);
      } finally {
        await analytics.close();
      }
    } finally {
      cleanup();
    }
  }, 120_000);

  it('reads a stream across processes whose layouts of it differ, by column name', async () => {
    const { dir, cleanup } = tempDir('dorsal-layouts-');
    try {
      // The same feed into a spine whose ticks have no price: a layout that changed between runs.
      const narrow = defineSpine({
        ticks: { message: defineMessage('Tick', { n: 'u32' }), capacity: 1 << 12 },
        orders: { message: Order, capacity: 1 << 13 },
        fills: { message: Fill, capacity: 1 << 13 },
      });
      for (const definition of [spine, narrow]) {
        const system = new System(definition, { persist: { data: dir, blockMs: 50 } });
        system.spawn(fixture('feed'), { args: { count: 50, perLoop: 10 } });
        await system.start();
        await until(() => system.spine.queue(0).stats().published === 50, 'the ticks');
        await system.stop();
      }
      const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
      try {
        const { rows } = await analytics.query(
          'SELECT count(DISTINCT process_id), count(*), count(price) FROM stream_ticks',
        );
        expect(rows[0]!.map(n)).toEqual([2, 100, 50]);
        // A scope of both processes sees both; of one, that one.
        const [wide, thin] = (await analytics.lake.processes()).map((p) => p.processId);
        const ticks = async (scope: { process?: string; processes?: string[] }) =>
          (
            await analytics.query('SELECT count(DISTINCT process_id), count(*) FROM stream_ticks', scope)
          ).rows[0]!.map(n);
        expect(await ticks({ processes: [thin!, wide!] })).toEqual([2, 100]);
        expect(await ticks({ processes: [thin!, thin!] })).toEqual([1, 50]);
        // One process however its id is spelled (the lake finds ids case-insensitively).
        expect(await ticks({ processes: [thin!, thin!.toUpperCase()] })).toEqual([1, 50]);
        for (const [scope, message] of [
          [{ process: wide!, processes: [thin!] }, /process or processes, not both/],
          [{ processes: [] }, /processes must be a list of 1 to 64 process ids/],
          [{ processes: [wide!, 7] }, /processes must be a list/],
        ] as const) {
          await expect(ticks(scope as never)).rejects.toThrow(QueryRefusedError);
          await expect(ticks(scope as never)).rejects.toThrow(message);
        }
        await expect(ticks({ processes: [wide!, 'no-such-process'] })).rejects.toThrow(LakeNotFoundError);
      } finally {
        await analytics.close();
      }
    } finally {
      cleanup();
    }
  }, 120_000);
});
