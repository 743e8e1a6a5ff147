import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { QueryNotReadyError } from '../../src/telemetry/analytics/guard.js';
import { LazyAnalytics } from '../../src/telemetry/analytics/lazy.js';
import { QuerySlots } from '../../src/telemetry/analytics/query-slots.js';
import { RemoteAnalytics } from '../../src/telemetry/analytics/remote.js';
import { analyticsQueryRoute } from '../../src/telemetry/analytics/route.js';
import { type IngestionServer, startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import type { LakeLocation } from '../../src/telemetry/lake/open.js';
import { viewRoutes } from '../../src/telemetry/views/routes.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { finished, spawnDorsal } from './cli-helpers.js';
import { tempDir } from './fixtures.js';
import { untilFirstEvent } from './http-helpers.js';
import { BIG, query } from './query-server.js';
import { ReadGate, scaleOutLocation, startS3, uniqueSchema } from './services.js';

const TICKS = 600;
const TICKS_SQL = 'SELECT count(*) FROM stream_ticks';

/**
 * A lake on PostgreSQL + a stand-in S3 whose object reads can be held: decoding a process's blocks
 * then waits for as long as the test says, whatever the machine's speed.
 */
describe('a query whose blocks are still being decoded', () => {
  const gate = new ReadGate();
  const schema = uniqueSchema();
  const { dir, cleanup } = tempDir('dorsal-decode-limit-');
  let s3: Awaited<ReturnType<typeof startS3>>;
  let location: LakeLocation;
  let server: IngestionServer;
  let processId: string;
  /** A second run's process, which no query reads before the close test. */
  let unread: string;
  /** A third run's process, which no query reads before the retry test. */
  let fresh: string;
  /** A fourth run's process, which no query reads before the test of the looks' bounds. */
  let spare: string;
  /** A fifth run's process, which no query reads before the test of the views. */
  let viewed: string;
  /** A page has this long from when it got its slot, in ms. */
  const PAGE_TIMEOUT_MS = 2000;
  /** One query at a time and none waiting: a second query while a slot is held gets 503 at once. */
  const slots = new QuerySlots(1, 0);

  beforeAll(async () => {
    s3 = await startS3(gate);
    location = scaleOutLocation(schema.url, s3.endpoint, 'decode');
    // The query route and the views share their analytics and their slots, as `dorsal serve`'s do.
    const shared = new LazyAnalytics({ lake: location, cacheDir: join(dir, 'server-cache'), freshnessMs: 0 });
    server = await startIngestionServer({
      port: 0,
      lake: location,
      routes: [
        analyticsQueryRoute({ lake: location, cacheDir: join(dir, 'server-cache'), shared, slots }),
        ...viewRoutes({ analytics: () => shared.get(), slots, pageTimeoutMs: PAGE_TIMEOUT_MS }),
      ],
    });
    await runPersistedPipeline({ url: server.url, blockMs: 50, blockBytes: 2048 }, TICKS);
    processId = (await server.service.lake.processes())[0]!.processId;
    await runPersistedPipeline({ url: server.url, blockMs: 50, blockBytes: 2048 }, TICKS);
    unread = (await server.service.lake.processes()).find((p) => p.processId !== processId)!.processId;
    await runPersistedPipeline({ url: server.url, blockMs: 50, blockBytes: 2048 }, TICKS);
    fresh = (await server.service.lake.processes()).find(
      (p) => p.processId !== processId && p.processId !== unread,
    )!.processId;
    await runPersistedPipeline({ url: server.url, blockMs: 50, blockBytes: 2048 }, TICKS);
    spare = (await server.service.lake.processes()).find(
      (p) => ![processId, unread, fresh].includes(p.processId),
    )!.processId;
    await runPersistedPipeline({ url: server.url, blockMs: 50, blockBytes: 2048 }, TICKS);
    viewed = (await server.service.lake.processes()).find(
      (p) => ![processId, unread, fresh, spare].includes(p.processId),
    )!.processId;
  }, 120_000);

  afterAll(async () => {
    gate.release();
    await server?.close();
    await s3?.stop();
    await schema.drop();
    cleanup();
  });

  it('is refused at its time limit by a server, which frees its slot; the decoding goes on for the next query', async () => {
    // The lake's own tables first: the run's documents (its counts) are read once, before the hold.
    const warm = await query(server.url, 'SELECT count(*) FROM blocks', { process: processId });
    expect(warm.status).toBe(200);
    gate.hold();
    try {
      const first = await query(server.url, TICKS_SQL, { process: processId, timeoutMs: 300 });
      expect(first.status).toBe(503);
      expect(first.headers.get('retry-after')).not.toBeNull();
      const refusal = (await first.json()) as { error: { code: string; message: string } };
      expect(refusal.error.code).toBe('DORSAL_QUERY_NOT_READY');
      expect(refusal.error.message).toMatch(
        /time limit of 300 ms passed while the lake was read for it .* that goes on/,
      );
      // Its slot is free while the blocks are still held: a query that decodes nothing is answered.
      const meanwhile = await query(server.url, 'SELECT count(*) FROM blocks', { process: processId });
      expect(meanwhile.status).toBe(200);
      // So it is to RemoteAnalytics, as the error the server raised, once it asks no more.
      await expect(
        new RemoteAnalytics({ url: server.url, retryForMs: 0 }).query(TICKS_SQL, {
          process: processId,
          timeoutMs: 300,
        }),
      ).rejects.toBeInstanceOf(QueryNotReadyError);
    } finally {
      gate.release();
    }
    // The decoding the refused queries began went on: the next query decodes nothing itself.
    const next = await new RemoteAnalytics({ url: server.url }).query(TICKS_SQL, { process: processId });
    expect(Number(next.rows[0]![0])).toBe(TICKS);
    expect(next.decodedBlocks).toBe(0);
  }, 60_000);

  it('is asked again by RemoteAnalytics while the server says to, busy or still decoding', async () => {
    const told: string[] = [];
    gate.hold();
    try {
      // Its blocks held: refused as still decoding, asked again; the blocks come back meanwhile.
      const remote = new RemoteAnalytics({
        url: server.url,
        onRetry: (refusal, waitMs) => {
          told.push(`${refusal.code} ${waitMs >= 1000}`);
          gate.release();
        },
      });
      // The time limit's reach is the server's: not sent, not refused as an unknown field.
      const answer = await remote.query(TICKS_SQL, { process: fresh, timeoutMs: 300, timeLimit: 'sql' });
      expect(Number(answer.rows[0]![0])).toBe(TICKS);
      expect(told[0]).toBe('DORSAL_QUERY_NOT_READY true');
    } finally {
      gate.release();
    }
    // Its one slot held by a big answer no one reads: refused as busy, asked again once it is free.
    told.length = 0;
    const holding = await query(server.url, BIG);
    const remote = new RemoteAnalytics({
      url: server.url,
      onRetry: (refusal, waitMs) => {
        told.push(`${refusal.code} ${waitMs >= 1000}`);
        void holding.body?.cancel();
      },
    });
    expect((await remote.query('SELECT 42', {})).rows).toEqual([[42]]);
    expect(new Set(told)).toEqual(new Set(['DORSAL_BUSY true']));
    // Its signal ends a wait between tries.
    const again = await query(server.url, BIG);
    const controller = new AbortController();
    const quiet = new RemoteAnalytics({ url: server.url, onRetry: () => controller.abort() });
    await expect(quiet.query('SELECT 42', { signal: controller.signal })).rejects.toMatchObject({
      code: 'DORSAL_QUERY_CANCELLED',
    });
    await again.body?.cancel();
    expect(() => new RemoteAnalytics({ url: server.url, retryForMs: -1 })).toThrow(
      /option 'retryForMs' must be a number of ms from 0/,
    );
  }, 60_000);

  it('is asked again by dorsal query --url, which says why once', async () => {
    // A second server over the lake, with a short time limit: its own cache fetches every
    // partition the first one made, and those reads are held.
    const second = await startIngestionServer({
      port: 0,
      lake: location,
      routes: [analyticsQueryRoute({ lake: location, cacheDir: join(dir, 'second-cache'), timeoutMs: 300 })],
    });
    gate.hold();
    try {
      const child = spawnDorsal(['query', '--url', second.url, '--process', processId, '--json', TICKS_SQL]);
      // Its reads come back once it said it asks again.
      let said = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        said += chunk.toString();
        if (said.includes('asking again')) gate.release();
      });
      const { code, stdout, stderr } = await finished(child);
      expect(stderr).toBe(
        'dorsal: the server is still reading the lake for the query (decoding blocks no query read before): asking again\n',
      );
      expect(code).toBe(0);
      expect(stdout).toContain(String(TICKS));
    } finally {
      gate.release();
      await second.close();
    }
  }, 60_000);

  it('bounds the SQL alone by default in Analytics, the whole query when asked', async () => {
    const analytics = await Analytics.open({
      lake: location,
      cacheDir: join(dir, 'local-cache'),
      freshnessMs: 0,
    });
    try {
      gate.hold();
      // The whole query bounded: refused while its blocks are held.
      await expect(
        analytics.query(TICKS_SQL, { process: processId, timeoutMs: 300, timeLimit: 'whole' }),
      ).rejects.toMatchObject({ code: 'DORSAL_QUERY_NOT_READY' });
      // The SQL alone bounded (the default): it waits for its blocks, however long that takes.
      const waiting = analytics.query(TICKS_SQL, { process: processId, timeoutMs: 300 });
      let settled = false;
      void waiting.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(settled).toBe(false);
      gate.release();
      const answer = await waiting;
      expect(Number(answer.rows[0]![0])).toBe(TICKS);
    } finally {
      gate.release();
      await analytics.close();
    }
  }, 60_000);

  it('reads the lake once at a time per scope, and for a bounded number of scopes at once', async () => {
    const analytics = await Analytics.open({
      lake: location,
      cacheDir: join(dir, 'bounded-cache'),
      freshnessMs: 0,
    });
    gate.hold();
    try {
      const scope = { process: spare, timeoutMs: 300, timeLimit: 'whole' } as const;
      // Refused twice: the second waits for the look the first left going, begins none beside it.
      for (let i = 0; i < 2; i++)
        await expect(analytics.query(TICKS_SQL, scope)).rejects.toBeInstanceOf(QueryNotReadyError);
      expect(analytics.held()).toMatchObject({ looksUnderWay: 1, decoding: 1, waitingToDecode: 0 });
      // Ever new scopes (time windows) while the lake's reads are held.
      const at = (i: number) => new Date(Date.UTC(2000, 0, 1, 0, 0, i)).toISOString();
      const codes = async (sql: string, from: number, count: number) =>
        (
          await Promise.allSettled(
            Array.from({ length: count }, (_, i) =>
              analytics.query(sql, { ...scope, begin: at(from + i), timeoutMs: 2000 }),
            ),
          )
        ).map((a) => (a.status === 'rejected' ? (a.reason as { code: string }).code : 'ok'));
      // Each needs a pass of decoding of the process, after the one under way: 64 wait, one more is busy.
      const decoding = await codes(TICKS_SQL, 0, 65);
      expect(decoding.filter((c) => c === 'DORSAL_QUERY_NOT_READY')).toHaveLength(64);
      expect(decoding.filter((c) => c === 'DORSAL_BUSY')).toHaveLength(1);
      expect(analytics.held()).toMatchObject({ looksUnderWay: 65, decoding: 1, waitingToDecode: 64 });
      // Looks that decode nothing take no turn to decode, but count as under way: 72 at most.
      const listing = await codes('SELECT count(*) FROM blocks', 100, 8);
      expect(listing.filter((c) => c === 'DORSAL_QUERY_NOT_READY')).toHaveLength(7);
      expect(listing.filter((c) => c === 'DORSAL_BUSY')).toHaveLength(1);
      expect(analytics.held()).toMatchObject({ looksUnderWay: 72 });
      const closing = analytics.close();
      gate.release();
      await closing;
    } finally {
      gate.release();
      await analytics.close();
    }
  }, 60_000);

  it('stops at close the decoding a refused query left going, at its next block', async () => {
    const analytics = await Analytics.open({
      lake: location,
      cacheDir: join(dir, 'closed-cache'),
      freshnessMs: 0,
    });
    const blocks = (await analytics.lake.blocks({ processId: unread })).length;
    expect(blocks).toBeGreaterThan(20);
    gate.hold();
    try {
      await expect(
        analytics.query(TICKS_SQL, { process: unread, timeoutMs: 100, timeLimit: 'whole' }),
      ).rejects.toBeInstanceOf(QueryNotReadyError);
      const served = gate.served;
      const closing = analytics.close();
      gate.release();
      await closing;
      // The reads held when the close came (the run's documents, a block), not every block.
      expect(gate.served - served).toBeLessThan(blocks / 4);
      expect(await server.service.lake.metadata.listPartitions(unread)).toEqual([]);
    } finally {
      gate.release();
      await analytics.close();
    }
  }, 60_000);

  it("bounds a server's views as its queries: a page takes a slot and has a time limit, a live sample too", async () => {
    const page = (signal?: AbortSignal) =>
      fetch(`${server.url}/views/data?process=${viewed}`, signal === undefined ? {} : { signal });
    const codeOf = async (answer: Response) =>
      ((await answer.json()) as { error: { code: string } }).error.code;
    // A query of a process whose documents are read before the hold: it waits for no read.
    const decodesNothing = () => query(server.url, 'SELECT count(*) FROM blocks', { process: processId });
    expect((await decodesNothing()).status).toBe(200);
    gate.hold();
    try {
      // Its blocks held, a page is refused at its time limit, not left waiting: the reading goes on.
      const first = await page();
      expect(first.status).toBe(503);
      expect(first.headers.get('retry-after')).not.toBeNull();
      expect(await codeOf(first)).toBe('DORSAL_QUERY_NOT_READY');
      // Its slot was given back: a query that decodes nothing is answered.
      expect((await decodesNothing()).status).toBe(200);
      // With its time limit far off, a page whose client leaves gives its slot back all the same:
      // a second server on the lake, whose analytics have read nothing of it yet.
      const patientSlots = new QuerySlots(1, 0);
      const patientAnalytics = new LazyAnalytics({ lake: location, cacheDir: join(dir, 'patient-cache') });
      const patient = await startIngestionServer({
        port: 0,
        lake: location,
        routes: viewRoutes({
          analytics: () => patientAnalytics.get(),
          slots: patientSlots,
          pageTimeoutMs: 600_000,
        }),
      });
      try {
        const leaving = new AbortController();
        const left = fetch(`${patient.url}/views/data?process=${viewed}`, { signal: leaving.signal }).catch(
          (error: unknown) => error,
        );
        await expect.poll(() => patientSlots.inFlight, { timeout: 10_000, interval: 20 }).toBe(1);
        leaving.abort();
        await left;
        await expect.poll(() => patientSlots.inFlight, { timeout: 10_000, interval: 20 }).toBe(0);
      } finally {
        await patient.close();
        await patientAnalytics.close();
      }
      // A query holding the only slot (waiting for the held blocks): a page is busy, and so is a live sample.
      await expect.poll(() => slots.inFlight, { timeout: 10_000, interval: 20 }).toBe(0);
      const holding = query(server.url, TICKS_SQL, { process: viewed, timeoutMs: 20_000 });
      await expect.poll(() => slots.inFlight, { timeout: 10_000, interval: 20 }).toBe(1);
      expect(await codeOf(await page())).toBe('DORSAL_BUSY');
      // A person's page says so, and asks again by itself.
      const person = await fetch(`${server.url}/?process=${viewed}`);
      expect(person.status).toBe(503);
      expect(person.headers.get('content-type')).toMatch(/^text\/html/);
      expect(person.headers.get('refresh')).toBe('5');
      expect(person.headers.get('retry-after')).toBe('5');
      expect(await person.text()).toMatch(/Not yet: the server is running or answering 1 queries at once/);
      // The stream takes no slot: it is answered, and says why its sample failed.
      const live = await fetch(`${server.url}/live?process=${viewed}`);
      expect(live.status).toBe(200);
      const events = await untilFirstEvent(live);
      expect(events).toMatch(/event: problem\ndata: .*running or answering 1 queries at once/);
      gate.release();
      expect((await holding).status).toBe(200);
    } finally {
      gate.release();
    }
    // Its blocks read, the page comes (asked again while it is still refused: each look at the
    // lake, freshness 0, may outlast the short page limit on a loaded machine).
    let data: { process: { processId: string } } | undefined;
    await expect
      .poll(
        async () => {
          const answer = await page();
          if (!answer.ok) return `${answer.status} ${await answer.text()}`;
          data = (await answer.json()) as typeof data;
          return 200;
        },
        { timeout: 60_000, interval: 200 },
      )
      .toBe(200);
    expect(data!.process.processId).toBe(viewed);
  }, 90_000);

  it('refuses a scope limit it cannot use, naming it', async () => {
    const analytics = await Analytics.open({ lake: location, cacheDir: join(dir, 'checked-cache') });
    try {
      for (const [scope, named] of [
        [{ timeoutMs: Number.NaN }, /timeoutMs must be an integer from 1/],
        [{ timeoutMs: -5 }, /timeoutMs must be an integer from 1/],
        [{ timeoutMs: 2 ** 31 }, /timeoutMs must be an integer from 1/],
        [{ maxRows: 0 }, /maxRows must be a positive integer/],
        [{ timeLimit: 'all' }, /timeLimit must be 'sql' or 'whole', got "all"/],
      ] as const) {
        await expect(analytics.query('SELECT 1', scope as never)).rejects.toMatchObject({
          code: 'DORSAL_QUERY_REFUSED',
          message: expect.stringMatching(named),
        });
      }
    } finally {
      await analytics.close();
    }
  });
});
