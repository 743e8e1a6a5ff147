import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SystemReport } from '../../src/index.js';
import { QueryRefusedError, QueryTimeoutError } from '../../src/telemetry/analytics/guard.js';
import { RemoteAnalytics } from '../../src/telemetry/analytics/remote.js';
import { analyticsQueryRoute } from '../../src/telemetry/analytics/route.js';
import { LakeNotFoundError } from '../../src/telemetry/errors.js';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { createApiKey } from '../../src/telemetry/keys/api-keys.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { LakeLocation } from '../../src/telemetry/lake/open.js';
import { checkPersistedRun, runPersistedPipeline } from './analytics-checks.js';
import { startDorsalServe } from './cli-helpers.js';
import { tempDir } from './fixtures.js';
import { scaleOutLocation, startS3, uniqueSchema } from './services.js';

const TICKS = 1000;

async function post(url: string, body: string, type = 'application/json', method = 'POST') {
  const response = await fetch(`${url}/analytics/query`, {
    method,
    headers: { 'content-type': type },
    ...(method === 'POST' ? { body } : {}),
  });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

describe('analytics over HTTP, through dorsal serve', () => {
  const { dir, cleanup } = tempDir('dorsal-analytics-http-');
  let serve: Awaited<ReturnType<typeof startDorsalServe>>;
  let report: SystemReport;
  let processId: string;

  beforeAll(async () => {
    serve = await startDorsalServe(['--port', '0', '--data', dir, '--query-timeout', '60000']);
    report = await runPersistedPipeline({ url: serve.url, blockMs: 50 }, TICKS);
    const lake = Lake.open({ data: dir });
    processId = (await lake.processes())[0]!.processId;
    await lake.close();
  }, 120_000);
  afterAll(async () => {
    await serve?.stop();
    cleanup();
  });

  it('answers the same as embedded: every message and timing, parents, fan-out, trees, percentiles', async () => {
    await checkPersistedRun(new RemoteAnalytics({ url: serve.url }), processId, report, TICKS);
  });

  it('refuses writes and bad bodies with 400 saying why, other methods and types with 405 and 415', async () => {
    for (const sql of [
      'DELETE FROM blocks',
      "COPY blocks TO 'x'",
      "ATTACH ':memory:' AS y",
      'SET threads = 1',
      'SELECT 1; SELECT 2',
    ]) {
      const answer = await post(serve.url, JSON.stringify({ sql }));
      expect([answer.status, answer.type], sql).toEqual([400, 'application/json']);
      expect(JSON.parse(answer.text).error.code, sql).toBe('DORSAL_QUERY_REFUSED');
    }
    const refusal = JSON.parse((await post(serve.url, JSON.stringify({ sql: 'DROP TABLE blocks' }))).text);
    expect(refusal.error.message).toMatch(/read-only: only SELECT is answered, got DROP/);
    const bodies: [string, RegExp][] = [
      ['{', /not JSON/],
      ['[1]', /JSON object/],
      ['{"sql": 1}', /sql must be a string/],
      ['{"sql": "SELECT 1", "rows": 5}', /unknown field "rows"/],
      ['{"sql": "SELECT 1", "maxRows": -5}', /maxRows must be a positive integer/],
      ['{"sql": "SELECT 1", "begin": "noon"}', /begin must be an RFC 3339 time/],
      ['{"sql": "SELECT 1", "format": "xml"}', /format must be/],
      ['{"sql": "SELECT 1", "processes": "p"}', /processes must be a list of 1 to 64 process ids/],
      ['{"sql": "SELECT 1", "processes": ["a"], "process": "a"}', /process or processes, not both/],
    ];
    for (const [body, message] of bodies) {
      const answer = await post(serve.url, body);
      expect(answer.status, body).toBe(400);
      expect(JSON.parse(answer.text).error.message, body).toMatch(message);
    }
    expect((await post(serve.url, 'SELECT 1', 'text/plain')).status).toBe(415);
    expect((await post(serve.url, '', 'application/json', 'GET')).status).toBe(405);
    const remote = new RemoteAnalytics({ url: serve.url });
    await expect(remote.query('DELETE FROM blocks')).rejects.toThrow(QueryRefusedError);
    await expect(remote.query('SELECT 1', { process: 'nope' })).rejects.toThrow(LakeNotFoundError);
    // A scope of several processes passes through.
    const both = await remote.query('SELECT count(DISTINCT process_id) FROM messages', {
      processes: [processId, processId],
    });
    expect(Number(both.rows[0]![0])).toBe(1);
    await expect(remote.query('SELECT 1', { processes: [processId, 'nope'] })).rejects.toThrow(
      LakeNotFoundError,
    );
    await expect(
      remote.query('SELECT count(*) FROM range(100000000000) a, range(10) b', { timeoutMs: 50 }),
    ).rejects.toThrow(QueryTimeoutError);
  });

  it('stops at its time limit a query whose binding outlasts it, and answers the next query', async () => {
    // NOT MATERIALIZED CTEs are bound again at each reference: each level names the one before
    // twice, over six views (2^5 × 6 bound, under the guard's 256), which binds for longer than
    // the query's limit. The time limit covers the binding: refused as timed out, its connection
    // free again for the next query.
    const views = Array.from(
      { length: 3 },
      () => 'SELECT process_id FROM messages UNION ALL SELECT process_id FROM timings',
    );
    let sql = `WITH a0 AS NOT MATERIALIZED (${views.join(' UNION ALL ')})`;
    for (let i = 1; i <= 5; i++) {
      sql += `, a${i} AS NOT MATERIALIZED (SELECT * FROM a${i - 1} UNION ALL SELECT * FROM a${i - 1})`;
    }
    sql += ' SELECT count(*) FROM a5';
    const warm = await post(serve.url, JSON.stringify({ sql: 'SELECT count(*) FROM messages' }));
    expect(warm.status, warm.text).toBe(200);
    const stopped = await post(serve.url, JSON.stringify({ sql, timeoutMs: 100 }));
    expect([stopped.status, JSON.parse(stopped.text).error.code], stopped.text).toEqual([
      400,
      'DORSAL_QUERY_TIMEOUT',
    ]);
    const next = await post(serve.url, JSON.stringify({ sql: 'SELECT count(*) FROM messages' }));
    expect(next.status, next.text).toBe(200);
    expect(JSON.parse(next.text).rows).toEqual(JSON.parse(warm.text).rows);
  }, 15_000);

  it('answers in CSV, and cuts rows at the limit', async () => {
    const csv = await post(
      serve.url,
      JSON.stringify({ sql: "SELECT seq, 'a,b' AS t FROM stream_ticks ORDER BY seq LIMIT 3", format: 'csv' }),
    );
    expect([csv.status, csv.type]).toEqual([200, 'text/csv; charset=utf-8']);
    expect(csv.text).toBe('seq,t\r\n0,"a,b"\r\n1,"a,b"\r\n2,"a,b"\r\n');
    const cut = JSON.parse(
      (await post(serve.url, JSON.stringify({ sql: 'SELECT seq FROM stream_ticks', maxRows: 7 }))).text,
    );
    expect([cut.rows.length, cut.truncated]).toEqual([7, true]);
  });
});

describe('dorsal serve --role', () => {
  it('serves ingestion, analytics or both, and answers 404 for the routes of the other role', async () => {
    const { dir, cleanup } = tempDir('dorsal-roles-');
    const ingest = (url: string) =>
      fetch(`${url}/ingestion/insert_process`, {
        method: 'POST',
        headers: { 'content-type': 'application/cbor' },
        body: new Uint8Array([0xa0]),
      });
    try {
      for (const [role, ingestion, analytics] of [
        ['ingestion', 400, 404],
        ['analytics', 404, 200],
        ['all', 400, 200],
      ] as const) {
        const serve = await startDorsalServe(['--port', '0', '--data', dir, '--role', role]);
        try {
          expect((await ingest(serve.url)).status, role).toBe(ingestion);
          expect((await post(serve.url, JSON.stringify({ sql: 'SELECT 1' }))).status, role).toBe(analytics);
        } finally {
          await serve.stop();
        }
      }
    } finally {
      cleanup();
    }
  }, 120_000);
});

describe('analytics behind the API keys', () => {
  it('answers a query only with a valid key once the lake has one', async () => {
    const { dir, cleanup } = tempDir('dorsal-analytics-keys-');
    const lake = Lake.open({ data: dir });
    const key = await createApiKey(lake.metadata, 'reader');
    const server = await startIngestionServer({
      port: 0,
      lake,
      routes: [analyticsQueryRoute({ lake, cacheDir: join(dir, 'analytics') })],
    });
    try {
      const anonymous = await post(server.url, JSON.stringify({ sql: 'SELECT 1' }));
      expect(anonymous.status).toBe(401);
      await expect(
        new RemoteAnalytics({ url: server.url, key: 'dorsal_nope' }).query('SELECT 1'),
      ).rejects.toThrow(/key/i);
      expect((await new RemoteAnalytics({ url: server.url, key }).query('SELECT 42 AS answer')).rows).toEqual(
        [[42]],
      );
    } finally {
      await server.close();
      await lake.close();
      cleanup();
    }
  });
});

describe('analytics through a proxy', () => {
  it('reaches a server under a path prefix (http://host/dorsal/), with or without the last slash', async () => {
    const seen: string[] = [];
    const proxy = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      if (req.url !== '/dorsal/analytics/query') {
        res.statusCode = 404;
        res.end('{"error":{"code":"NOT_FOUND","message":"no such path"}}');
        return;
      }
      res.end(
        '{"columns":[{"name":"answer","type":"INTEGER"}],"rows":[[42]],"truncated":false,"decodedBlocks":0}',
      );
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    const origin = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      for (const url of [`${origin}/dorsal`, `${origin}/dorsal/`]) {
        expect((await new RemoteAnalytics({ url }).query('SELECT 42 AS answer')).rows, url).toEqual([[42]]);
      }
      expect(seen).toEqual(['/dorsal/analytics/query', '/dorsal/analytics/query']);
    } finally {
      proxy.close();
    }
  });
});

describe('analytics answers of bounded size', () => {
  it('cuts rows past the server’s byte limit (truncated), and refuses a first row larger than it, 400', async () => {
    const { dir, cleanup } = tempDir('dorsal-analytics-bytes-');
    const lake = Lake.open({ data: dir });
    const server = await startIngestionServer({
      port: 0,
      lake,
      insecure: true,
      routes: [analyticsQueryRoute({ lake, cacheDir: join(dir, 'analytics'), maxBytes: 64 * 1024 })],
    });
    try {
      const cut = await post(
        server.url,
        JSON.stringify({ sql: "SELECT repeat('x', 10000) FROM range(1000)" }),
      );
      expect(cut.status).toBe(200);
      const answer = JSON.parse(cut.text) as { rows: unknown[][]; truncated: boolean };
      expect([answer.rows.length, answer.truncated]).toEqual([6, true]);
      const big = await post(server.url, JSON.stringify({ sql: "SELECT repeat('x', 100000)" }));
      expect(big.status).toBe(400);
      expect(big.text).toMatch(/first row is larger than 64 KiB as JSON/);
    } finally {
      await server.close();
      await lake.close();
      cleanup();
    }
  });
});

describe('analytics against PostgreSQL + S3', () => {
  it('answers the same over a scale-out lake, each server with its own cache', async () => {
    const schema = uniqueSchema();
    const s3 = await startS3();
    const caches = [tempDir('dorsal-analytics-pg-'), tempDir('dorsal-analytics-pg-')];
    const location: LakeLocation = scaleOutLocation(schema.url, s3.endpoint, 'analytics');
    const servers = await Promise.all(
      caches.map((cache) =>
        startIngestionServer({
          port: 0,
          lake: location,
          routes: [analyticsQueryRoute({ lake: location, cacheDir: join(cache.dir, 'cache') })],
        }),
      ),
    );
    try {
      const report = await runPersistedPipeline({ url: servers[0]!.url, blockMs: 50 }, TICKS);
      const processId = (await servers[0]!.service.lake.processes())[0]!.processId;
      // Two stateless servers over one lake: each answers it whole; the partitions the first made
      // are in the bucket and in PostgreSQL, and the second reads them without decoding a block.
      await checkPersistedRun(new RemoteAnalytics({ url: servers[0]!.url }), processId, report, TICKS);
      const partitions = await servers[0]!.service.lake.metadata.listPartitions(processId);
      expect(partitions.length).toBeGreaterThanOrEqual(5);
      const first = await new RemoteAnalytics({ url: servers[0]!.url }).query(
        'SELECT count(*) FROM messages',
        {
          process: processId,
        },
      );
      const second = new RemoteAnalytics({ url: servers[1]!.url });
      const shared = await second.query('SELECT count(*) FROM messages', { process: processId });
      expect([shared.decodedBlocks, shared.rows]).toEqual([0, first.rows]);
      await checkPersistedRun(second, processId, report, TICKS);
    } finally {
      for (const server of servers) await server.close();
      await schema.drop();
      await s3.stop();
      for (const cache of caches) cache.cleanup();
    }
  }, 180_000);
});
