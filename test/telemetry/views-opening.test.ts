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

it("the query API's first query waits for the analytics to open no longer than its time limit, and frees its slot", async () => {
  const { dir, cleanup } = tempDir('dorsal-query-opening-');
  const schema = uniqueSchema();
  // Another server migrating the lake's schema: opening the lake (and so the analytics) waits.
  const migrating = new pg.Client({ connectionString: POSTGRES_URL });
  await migrating.connect();
  await migrating.query('BEGIN');
  await migrating.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
    `dorsal-migrate:${new URL(schema.url).searchParams.get('schema')}`,
  ]);
  const slots = new QuerySlots(1, 0);
  const location = { db: schema.url, blobs: join(dir, 'blobs') };
  const server = await startIngestionServer({
    port: 0,
    lake: { data: join(dir, 'ingest') },
    routes: [analyticsQueryRoute({ lake: location, cacheDir: join(dir, 'cache'), slots, timeoutMs: 300 })],
  });
  let released = false;
  try {
    const first = await query(server.url, 'SELECT 1');
    expect(first.status).toBe(503);
    expect(((await first.json()) as { error: { code: string } }).error.code).toBe('DORSAL_QUERY_NOT_READY');
    expect(slots.inFlight).toBe(0);
    await migrating.query('COMMIT');
    released = true;
    // The opening went on: once the lake is there, the same query is answered.
    await expect
      .poll(async () => (await query(server.url, 'SELECT 1')).status, { timeout: 20_000, interval: 200 })
      .toBe(200);
  } finally {
    if (!released) await migrating.query('COMMIT');
    await migrating.end();
    await server.close();
    await schema.drop();
    cleanup();
  }
}, 60_000);

it("the query API's first query has what its time limit leaves once the analytics opened, not the whole limit again", async () => {
  const { dir, cleanup } = tempDir('dorsal-query-opening-left-');
  const schema = uniqueSchema();
  // Another server migrating the lake's schema for a while: the analytics open once it is done.
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
    routes: [analyticsQueryRoute({ lake: location, cacheDir: join(dir, 'cache'), timeoutMs: 5_000 })],
  });
  const released = new Promise<void>((resolve) =>
    setTimeout(() => void migrating.query('COMMIT').then(() => resolve()), 1_000),
  );
  try {
    // A query no time limit here lets end: what stops it says the limit it had.
    const answer = await query(server.url, 'SELECT sum(i::DOUBLE * i) FROM range(1000000000000) t(i)');
    const { error } = (await answer.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('DORSAL_QUERY_TIMEOUT');
    const had = Number(/time limit of (\d+) ms/.exec(error.message)?.[1]);
    // The opening waited for the lock: the query had the rest of the 5 s.
    expect(had).toBeGreaterThan(0);
    expect(had).toBeLessThan(5_000);
  } finally {
    await released;
    await migrating.end();
    await server.close();
    await schema.drop();
    cleanup();
  }
}, 60_000);
