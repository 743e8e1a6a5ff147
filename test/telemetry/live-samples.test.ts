import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { LocalPartitionStore } from '../../src/telemetry/analytics/local-partitions.js';
import type { QueryFunction } from '../../src/telemetry/analytics/query.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { sampleLive } from '../../src/telemetry/views/live.js';
import { runDorsal, startDorsalServe } from './cli-helpers.js';
import { damageHandlerTimes } from './damaged-times.js';
import { makeProcess, tempDir } from './fixtures.js';

const SYSTEM = 'examples/market/system.ts';

/** The live view's samples of a recorded run: its last second, read from its last seconds alone. */
describe('live samples of a recorded process', () => {
  const { dir, cleanup } = tempDir('dorsal-live-samples-');
  let processId: string;

  beforeAll(async () => {
    // Longer than the seconds a sample reads.
    const run = await runDorsal(['run', SYSTEM, '--seconds', '5', '--data', dir, '--json']);
    expect(run.code, run.stderr).toBe(0);
    processId = (JSON.parse(run.stdout) as { process: string }).process;
  }, 120_000);
  afterAll(cleanup);

  it("a sample's numbers are its second's, and every scan of records is bounded by a time the engine can prune on", async () => {
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      // The real analytics, each SQL it is asked noted.
      const asked: string[] = [];
      const query: QueryFunction = (sql, scope) => {
        asked.push(sql);
        return analytics.query(sql, scope);
      };
      const sample = await sampleLive(Object.create(analytics, { query: { value: query } }), processId);
      expect(sample.second).not.toBeNull();
      expect(sample.ended).toBe(true);
      // The same second's numbers, over every record.
      const scope = { process: processId };
      const rates = await analytics.query(
        `SELECT stream, count(*)::DOUBLE FROM messages WHERE epoch_ns(publish_time) // 1000000000 = ${sample.second} GROUP BY ALL ORDER BY ALL`,
        scope,
      );
      expect(sample.rates.map((r) => [r.stream, r.perSecond])).toEqual(rates.rows);
      const handled = await analytics.query(
        `SELECT actor, stream, count(*)::DOUBLE FROM timings WHERE epoch_ns(end_time) // 1000000000 = ${sample.second} GROUP BY ALL ORDER BY ALL`,
        scope,
      );
      expect(sample.latency.map((r) => [r.actor, r.stream, r.count])).toEqual(handled.rows);
      // The plan of the SQL that reads records: its scans of them filter on the records' times
      // (a filter pushed into the Parquet scan, written without spaces, unlike a join's
      // condition), from a few seconds before the end of this longer run: the engine skips the rest.
      const records = asked.filter((sql) => /\bmessages\b/.test(sql));
      expect(records).toHaveLength(1);
      const plan = String((await analytics.query(`EXPLAIN ${records[0]}`, scope)).rows[0]?.[1]);
      expect(plan).toMatch(/end_t>=[0-9]/);
      expect(plan).toContain('publish_t>');
    } finally {
      await analytics.close();
    }
  }, 60_000);

  it('/live of an ended process sends its last sample, says it ended, and ends the stream', async () => {
    const served = await startDorsalServe(['--port', '0', '--data', dir]);
    try {
      // A stream that never ends fails here, not by hanging the suite.
      const answer = await fetch(`${served.url}/live?process=${processId}`, {
        signal: AbortSignal.timeout(30_000),
      });
      expect(answer.status).toBe(200);
      const text = await answer.text();
      const events = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
      expect(events).toEqual(['sample', 'ended']);
    } finally {
      await served.stop();
    }
  }, 60_000);

  it('a process not in the lake: /live answers 404 (no problem a second for ever), / the picker saying so; the start of an id is taken', async () => {
    // Two processes whose ids start alike.
    const service = new IngestionService({ data: dir });
    for (const last of ['1', '2']) {
      await service.ingestProcess(makeProcess({ processId: `abcdef01-0000-4000-8000-00000000000${last}` }));
    }
    await service.close();
    const served = await startDorsalServe(['--port', '0', '--data', dir]);
    try {
      const unknown = 'ffffffff-ffff-4fff-8fff-ffffffffffff';
      const live = await fetch(`${served.url}/live?process=${unknown}`, {
        signal: AbortSignal.timeout(30_000),
      });
      expect(live.status).toBe(404);
      expect(((await live.json()) as { error: { code: string } }).error.code).toBe('DORSAL_LAKE_NOT_FOUND');
      const page = await fetch(`${served.url}/?process=${unknown}`, { signal: AbortSignal.timeout(30_000) });
      expect(page.status).toBe(404);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await page.text();
      expect(html).toContain(`No process ${unknown} in this lake.`);
      expect(html).toContain(processId);
      // The start of an id, as the CLI takes it.
      const byPrefix = await fetch(`${served.url}/?process=${processId.slice(0, 8)}`, {
        signal: AbortSignal.timeout(60_000),
      });
      expect(byPrefix.status).toBe(200);
      expect(await byPrefix.text()).toContain(`/live?process=${processId}`);
      // A whole id in capitals is the same id.
      const upper = await fetch(`${served.url}/?process=${processId.toUpperCase()}`, {
        signal: AbortSignal.timeout(60_000),
      });
      expect(upper.status).toBe(200);
      // The start of two processes' ids: the picker, saying so.
      const several = await fetch(`${served.url}/?process=abcdef01`, { signal: AbortSignal.timeout(60_000) });
      expect(several.status).toBe(404);
      expect(await several.text()).toContain(
        'abcdef01 starts the ids of several processes: give more of its id.',
      );
    } finally {
      await served.stop();
    }
  }, 90_000);
});

describe('live samples of a run shorter than a second', () => {
  const { dir, cleanup } = tempDir('dorsal-live-short-');
  afterAll(cleanup);

  it('show the second its records end in once it has ended, not the empty one before', async () => {
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      // A run whose handler ends all lie in one second of the clock (one that crosses a second's
      // edge has records in the second before its last: run again, a few times at most).
      let processId: string | undefined;
      for (let tries = 0; tries < 8 && processId === undefined; tries++) {
        const run = await runDorsal(['run', SYSTEM, '--seconds', '0.1', '--data', dir, '--json']);
        expect(run.code, run.stderr).toBe(0);
        const id = (JSON.parse(run.stdout) as { process: string }).process;
        const { rows } = await analytics.query(
          'SELECT count(DISTINCT epoch_ns(end_time) // 1000000000) FROM timings',
          { process: id },
        );
        if (Number(rows[0]![0]) === 1) processId = id;
      }
      expect(processId, 'a run within one second of the clock').toBeDefined();
      const sample = await sampleLive(analytics, processId!);
      expect(sample.ended).toBe(true);
      expect(sample.rates.length).toBeGreaterThan(0);
      expect(sample.latency.length).toBeGreaterThan(0);
    } finally {
      await analytics.close();
    }
  }, 120_000);
});

describe('live samples of a recording one of whose times lies far ahead (damaged)', () => {
  const { dir, cleanup } = tempDir('dorsal-live-damaged-');
  afterAll(cleanup);

  it('keep the second its blocks end in, not one with nothing in it', async () => {
    const run = await runDorsal(['run', SYSTEM, '--seconds', '2', '--data', dir, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const processId = (JSON.parse(run.stdout) as { process: string }).process;
    // 3.9e18 ns after the start: within what a time may be (`timed`), a century ahead of the rest.
    const { damaged } = await damageHandlerTimes(dir, 'end', [3.9e18]);
    expect(damaged).toBe(1);
    // As the persister would have stamped its block: ending at that time too.
    const db = new Database(join(dir, 'lake.sqlite'));
    db.prepare(
      'UPDATE blocks SET end_ticks = 3900000000000000000 WHERE block_id = (SELECT block_id FROM blocks ORDER BY end_ticks DESC LIMIT 1)',
    ).run();
    db.close();
    // Partitions made anew (those `dorsal run` made hold the records as they were).
    const analytics = await Analytics.open({
      lake: { data: dir },
      cacheDir: join(dir, 'fresh'),
      partitions: new LocalPartitionStore(join(dir, 'fresh', 'partitions')),
    });
    try {
      const sample = await sampleLive(analytics, processId);
      const [start] = (await analytics.query('SELECT start_ns FROM processes', { process: processId })).rows;
      // Within the run's few seconds, with the records of that second.
      expect(sample.second! - Number(BigInt(String(start![0])) / 1_000_000_000n)).toBeLessThan(60);
      expect(sample.latency.length).toBeGreaterThan(0);
    } finally {
      await analytics.close();
    }
  }, 120_000);
});
