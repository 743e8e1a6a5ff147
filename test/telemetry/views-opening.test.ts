import { join } from 'node:path';
import pg from 'pg';
import { expect, it } from 'vitest';
import { QuerySlots } from '../../src/telemetry/analytics/query-slots.js';
import type { AnalyticsQuestions } from '../../src/telemetry/analytics/questions.js';
import { analyticsQueryRoute } from '../../src/telemetry/analytics/route.js';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { viewRoutes } from '../../src/telemetry/views/routes.js';
import { tempDir } from './fixtures.js';
import { untilFirstEvent } from './http-helpers.js';
import { query } from './query-server.js';
import { POSTGRES_URL, uniqueSchema } from './services.js';

// Opening the shared analytics (DuckDB loading, the lake's metadata database connecting) takes no
// signal: a page, or a live sample, waits for it no longer than its time limit.
it('a page, or a live sample, whose analytics are still opening is refused at its time limit, and frees its slot', async () => {
  const { dir, cleanup } = tempDir('dorsal-views-opening-');
  // Analytics that open only when the test says so.
  let open!: (error: Error) => void;
  const opening = new Promise<AnalyticsQuestions>((_resolve, reject) => {
    open = reject;
  });
  const slots = new QuerySlots(1, 0);
  const server = await startIngestionServer({
    port: 0,
    lake: { data: dir },
    routes: viewRoutes({ analytics: () => opening, slots, pageTimeoutMs: 200, liveIntervalMs: 50 }),
  });
  try {
    for (const path of ['/views/data?process=p', '/views/data?process=p']) {
      const answer = await fetch(`${server.url}${path}`);
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).not.toBeNull();
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe(
        'DORSAL_QUERY_NOT_READY',
      );
      // The slot was given back at the refusal.
      expect(slots.inFlight).toBe(0);
    }
    const person = await fetch(`${server.url}/`);
    expect(person.status).toBe(503);
    expect(person.headers.get('refresh')).toBe('5');
    // The stream is answered, and says why its sample failed.
    const live = await fetch(`${server.url}/live?process=p`);
    expect(live.status).toBe(200);
    const events = await untilFirstEvent(live);
    expect(events).toMatch(/event: problem\ndata: .*time limit of 200 ms passed/);
    await expect.poll(() => slots.inFlight, { timeout: 10_000, interval: 20 }).toBe(0);
  } finally {
    open(new Error('never opened'));
    await server.close();
    cleanup();
  }
});

/**
 * A query route over a PostgreSQL lake whose schema another server is migrating: it holds the
 * migration lock until `release`, and opening the lake (so the analytics) waits for it.
 */
async function lakeBeingMigrated(prefix: string, route: { timeoutMs: number; slots?: QuerySlots }) {
  const { dir, cleanup } = tempDir(prefix);
  const schema = uniqueSchema();
  const migrating = new pg.Client({ connectionString: POSTGRES_URL });
  await migrating.connect();
  await migrating.query('BEGIN');
  await migrating.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
    `dorsal-migrate:${new URL(schema.url).searchParams.get('schema')}`,
  ]);
  const location = { db: schema.url, blobs: join(dir, 'blobs') };
  const server = await startIngestionServer({
    port: 0,
    lake: { data: join(dir, 'ingest') },
    routes: [analyticsQueryRoute({ lake: location, cacheDir: join(dir, 'cache'), ...route })],
  });
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await migrating.query('COMMIT');
  };
  const close = async () => {
    await release();
    await migrating.end();
    await server.close();
    await schema.drop();
    cleanup();
  };
  return { url: server.url, release, close };
}

it("the query API's first query waits for the analytics to open no longer than its time limit, and frees its slot", async () => {
  const slots = new QuerySlots(1, 0);
  const lake = await lakeBeingMigrated('dorsal-query-opening-', { slots, timeoutMs: 300 });
  try {
    const first = await query(lake.url, 'SELECT 1');
    expect(first.status).toBe(503);
    expect(((await first.json()) as { error: { code: string } }).error.code).toBe('DORSAL_QUERY_NOT_READY');
    expect(slots.inFlight).toBe(0);
    await lake.release();
    // The opening went on: once the lake is there, the same query is answered.
    await expect
      .poll(async () => (await query(lake.url, 'SELECT 1')).status, { timeout: 20_000, interval: 200 })
      .toBe(200);
  } finally {
    await lake.close();
  }
}, 60_000);

it("the query API's first query has what its time limit leaves once the analytics opened, not the whole limit again", async () => {
  const lake = await lakeBeingMigrated('dorsal-query-opening-left-', { timeoutMs: 5_000 });
  // The migration holds the lake for a second of the query's 5 s.
  const released = new Promise((r) => setTimeout(r, 1_000)).then(lake.release);
  try {
    // A query no time limit here lets end: what stops it says the limit it had.
    const answer = await query(lake.url, 'SELECT sum(i::DOUBLE * i) FROM range(1000000000000) t(i)');
    const { error } = (await answer.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('DORSAL_QUERY_TIMEOUT');
    const had = Number(/time limit of (\d+) ms/.exec(error.message)?.[1]);
    // The opening waited for the lock: the query had the rest of the 5 s.
    expect(had).toBeGreaterThan(0);
    expect(had).toBeLessThan(5_000);
  } finally {
    await released;
    await lake.close();
  }
}, 60_000);
