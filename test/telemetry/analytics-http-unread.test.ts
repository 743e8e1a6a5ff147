import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { RemoteAnalytics } from '../../src/telemetry/analytics/remote.js';
import { analyticsQueryRoute } from '../../src/telemetry/analytics/route.js';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { until } from '../helpers/until.js';
import { DORSAL_BIN } from './cli-helpers.js';
import { tempDir } from './fixtures.js';
import { BIG, dechunk, query, serveQueries } from './query-server.js';

const MiB = 1024 * 1024;

/** A client that asks a query on a raw connection, takes the first bytes of its answer, then reads no more. */
interface Stalled {
  readonly socket: Socket;
  /** The first bytes of the answer: its status line and headers (and perhaps some of its body). */
  readonly head: Promise<string>;
  /** True once the server closed (or reset) the connection. */
  closed(): boolean;
}

function stalledQuery(port: number, sql: string): Stalled {
  const body = JSON.stringify({ sql });
  const socket = connect(port, '127.0.0.1');
  socket.write(
    `POST /analytics/query HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  let closed = false;
  socket.on('error', () => {});
  socket.once('close', () => {
    closed = true;
  });
  const head = new Promise<string>((resolve, reject) => {
    socket.once('data', (data: Buffer) => {
      // Reads no more: what the kernel's buffers do not hold stays at the server.
      socket.pause();
      resolve(data.toString('latin1'));
    });
    socket.once('close', () => reject(new Error('closed before any answer')));
  });
  head.catch(() => {});
  return { socket, head, closed: () => closed };
}

describe('the query route and clients that do not read their answers', () => {
  const { dir, cleanup } = tempDir('dorsal-analytics-unread-');
  const clients: Stalled[] = [];
  const stalled = (port: number): Stalled => {
    const client = stalledQuery(port, BIG);
    clients.push(client);
    return client;
  };
  let patient: Awaited<ReturnType<typeof serveQueries>>;

  beforeAll(async () => {
    // Writes never time out here: what the server holds is the clients' to end.
    patient = await serveQueries(
      dir,
      { maxConcurrentQueries: 2, maxWaitingQueries: 1 },
      { writeTimeoutMs: 600_000 },
    );
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.destroy();
    await until(() => patient.route.held().inFlight === 0, 'the queries of the last test freed');
    patient.responses.length = 0;
  });
  afterAll(async () => {
    for (const client of clients.splice(0)) client.socket.destroy();
    await patient?.close();
    cleanup();
  });

  it('holds a few chunks of each answer a client does not read, not the answer', async () => {
    const a = stalled(patient.server.port);
    const b = stalled(patient.server.port);
    for (const client of [a, b]) expect(await client.head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(patient.responses.length).toBe(2);
    // The kernel's socket buffers take a few MB of each answer; the server holds in its own
    // memory what is left of them, for as long as the clients do not read.
    const held = patient.responses.reduce((n, res) => n + res.writableLength, 0);
    expect(held).toBeLessThan(1 * MiB);
    expect(patient.route.held()).toEqual({ inFlight: 2, waiting: 0 });
  });

  it('answers queries beyond the bound in turn, and refuses those beyond the queue with 503 and Retry-After', async () => {
    const a = stalled(patient.server.port);
    const b = stalled(patient.server.port);
    await a.head;
    await b.head;
    // Two answers out, to clients that do not read: a third query waits its turn ...
    const third = query(patient.server.url, 'SELECT 42 AS answer');
    third.catch(() => {});
    await until(() => patient.route.held().waiting === 1, 'the third query waiting');
    // ... and a fourth finds the queue full.
    const fourth = await query(patient.server.url, 'SELECT 43 AS answer');
    expect(fourth.status).toBe(503);
    expect(fourth.headers.get('retry-after')).toBe('1');
    const refusal = (await fourth.json()) as { error: { code: string; message: string } };
    expect(refusal.error.code).toBe('DORSAL_BUSY');
    expect(refusal.error.message).toMatch(/2 queries at once, and 1 more waiting/);
    expect(patient.route.held()).toEqual({ inFlight: 2, waiting: 1 });
    // A client that goes away mid-answer frees its place: the third is answered.
    a.socket.destroy();
    const answered = await third;
    expect(answered.status).toBe(200);
    expect(((await answered.json()) as { rows: unknown[][] }).rows).toEqual([[42]]);
    await until(() => patient.route.held().inFlight === 1, 'the third query done');
    expect(patient.route.held().waiting).toBe(0);
  });

  it('frees the query of a client that goes away mid-answer', async () => {
    const a = stalled(patient.server.port);
    await a.head;
    expect(patient.route.held().inFlight).toBe(1);
    a.socket.destroy();
    await until(() => patient.route.held().inFlight === 0, 'the query freed once its client left');
  });

  it('frees the place of a query that waits its turn when its client goes away', async () => {
    const a = stalled(patient.server.port);
    const b = stalled(patient.server.port);
    await a.head;
    await b.head;
    const waiting = stalledQuery(patient.server.port, 'SELECT 1');
    clients.push(waiting);
    await until(() => patient.route.held().waiting === 1, 'a query waiting');
    waiting.socket.destroy();
    await until(() => patient.route.held().waiting === 0, 'its place freed');
    expect(patient.route.held().inFlight).toBe(2);
  });

  it('answers in turn the queries a client asks at once (dorsal report --url asks 13)', async () => {
    const { dir: own, cleanup: done } = tempDir('dorsal-analytics-turns-');
    const single = await serveQueries(own, { maxConcurrentQueries: 1 }, {});
    try {
      const remote = new RemoteAnalytics({ url: single.server.url });
      const answers = await Promise.all(
        Array.from({ length: 13 }, (_, i) => remote.query(`SELECT ${i} AS n, count(*) FROM range(100000)`)),
      );
      expect(answers.map((a) => a.rows)).toEqual(Array.from({ length: 13 }, (_, i) => [[i, '100000']]));
      expect(single.route.held()).toEqual({ inFlight: 0, waiting: 0 });
    } finally {
      await single.close();
      done();
    }
  });

  it('counts a query while it runs, before it has any answer', async () => {
    const { dir: own, cleanup: done } = tempDir('dorsal-analytics-running-');
    const single = await serveQueries(own, { maxConcurrentQueries: 1, maxWaitingQueries: 0 }, {});
    try {
      // Runs until its time limit (a cross join DuckDB cannot finish).
      const slow = query(single.server.url, 'SELECT count(*) FROM range(100000000000) a, range(10) b', {
        timeoutMs: 1000,
      });
      slow.catch(() => {});
      await until(() => single.route.held().inFlight === 1, 'the slow query running');
      const refused = await query(single.server.url, 'SELECT 1');
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('DORSAL_BUSY');
      const timedOut = await slow;
      expect(((await timedOut.json()) as { error: { code: string } }).error.code).toBe(
        'DORSAL_QUERY_TIMEOUT',
      );
      expect(single.route.held().inFlight).toBe(0);
      expect((await query(single.server.url, 'SELECT 1')).status).toBe(200);
    } finally {
      await single.close();
      done();
    }
  });
});

describe('the write timeout', () => {
  const { dir, cleanup } = tempDir('dorsal-analytics-write-timeout-');
  afterAll(cleanup);

  it('destroys the connection of a client that stops reading past it, and frees its query', async () => {
    const served = await serveQueries(dir, { maxConcurrentQueries: 2 }, { writeTimeoutMs: 300 });
    const client = stalledQuery(served.server.port, BIG);
    try {
      expect(await client.head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      const [answer] = served.responses;
      // The server gives up on it (a client that reads nothing cannot see that yet: the end of
      // the connection comes after what its buffers hold).
      await until(
        () => answer?.destroyed === true,
        'the server destroying the answer of a client that stopped reading',
        20_000,
      );
      await until(() => served.route.held().inFlight === 0, 'its query freed');
      const next = await new RemoteAnalytics({ url: served.server.url }).query('SELECT 7 AS n');
      expect(next.rows).toEqual([[7]]);
      // Read now, the answer is cut: the connection ends before its last chunk.
      let rest = '';
      client.socket.on('data', (data: Buffer) => {
        rest += data.toString('latin1');
      });
      client.socket.resume();
      await until(client.closed, 'the end of the connection, once read');
      expect(rest.endsWith('\r\n0\r\n\r\n')).toBe(false);
    } finally {
      client.socket.destroy();
      await served.close();
    }
  });

  it('lets a client that reads slowly but steadily take its whole answer, longer than the write timeout', async () => {
    const served = await serveQueries(dir, {}, { writeTimeoutMs: 2000 });
    const asked = JSON.stringify({ sql: "SELECT repeat('y', 10000) AS y FROM range(600)" });
    const socket = connect(served.server.port, '127.0.0.1');
    try {
      socket.write(
        `POST /analytics/query HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${asked.length}\r\n\r\n${asked}`,
      );
      const chunks: Buffer[] = [];
      // A read at a time, then a pause: longer in all than the write timeout, never stalled for it.
      socket.on('data', (data: Buffer) => {
        chunks.push(data);
        socket.pause();
        setTimeout(() => socket.resume(), 25);
      });
      await once(socket, 'end');
      const text = Buffer.concat(chunks).toString('utf8');
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      const head = text.slice(0, text.indexOf('\r\n\r\n')).toLowerCase();
      const body = text.slice(head.length + 4);
      const answer = JSON.parse(head.includes('transfer-encoding: chunked') ? dechunk(body) : body) as {
        rows: unknown[][];
        truncated: boolean;
      };
      expect([answer.rows.length, answer.truncated]).toEqual([600, false]);
      // Reads of at most 64 KiB, 25 ms apart: more than 80 of them take longer than the write timeout.
      expect(chunks.length).toBeGreaterThan(80);
    } finally {
      socket.destroy();
      await served.close();
    }
  });
});

describe('the query bounds as options', () => {
  const { dir, cleanup } = tempDir('dorsal-analytics-bounds-');
  afterAll(cleanup);

  it('refuses bad values with a ConfigError naming the option', async () => {
    const lake = { data: dir };
    const cacheDir = join(dir, 'analytics');
    for (const [options, message] of [
      [{ maxConcurrentQueries: 0 }, /maxConcurrentQueries must be an integer from 1/],
      [{ maxConcurrentQueries: 2.5 }, /maxConcurrentQueries must be an integer from 1/],
      [{ maxWaitingQueries: -1 }, /maxWaitingQueries must be an integer from 0/],
      [{ maxQueueWaitMs: 0 }, /maxQueueWaitMs must be an integer from 1/],
    ] as const) {
      expect(() => analyticsQueryRoute({ lake, cacheDir, ...options })).toThrow(ConfigError);
      expect(() => analyticsQueryRoute({ lake, cacheDir, ...options })).toThrow(message);
    }
    for (const writeTimeoutMs of [0, -5, 1.5, 2 ** 40]) {
      await expect(startIngestionServer({ port: 0, lake, writeTimeoutMs })).rejects.toThrow(
        /writeTimeoutMs must be an integer from 1 to 2147483647/,
      );
    }
    for (const answerTimeoutMs of [0, 1.5]) {
      await expect(startIngestionServer({ port: 0, lake, answerTimeoutMs })).rejects.toThrow(
        /answerTimeoutMs must be an integer from 1 to 2147483647/,
      );
    }
  });

  it('takes them on the command line, and refuses bad ones', async () => {
    for (const [option, value] of [
      ['--query-concurrency', '0'],
      ['--query-queue', '-1'],
      ['--write-timeout', '0'],
      ['--answer-timeout', '0'],
      ['--query-queue-wait', '0'],
    ]) {
      const child = spawn(
        process.execPath,
        [DORSAL_BIN, 'serve', '--port', '0', '--data', dir, option!, value!],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let err = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        err += chunk.toString();
      });
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code, option).not.toBe(0);
      expect(err, option).toContain(`option '${option} <`);
    }
  });
});

describe('a query whose client goes away', () => {
  const { dir, cleanup } = tempDir('dorsal-analytics-cancel-');
  afterAll(cleanup);

  // A cross join DuckDB cannot finish: it runs until stopped.
  const ENDLESS = 'SELECT count(*) FROM range(100000000000) a, range(10) b';

  it('is stopped, in Analytics, when its signal aborts', async () => {
    const analytics = await Analytics.open({
      lake: { data: join(dir, 'lake') },
      cacheDir: join(dir, 'cache'),
    });
    try {
      const controller = new AbortController();
      const running = analytics.query(ENDLESS, { timeoutMs: 600_000, signal: controller.signal });
      setTimeout(() => controller.abort(), 200);
      await expect(running).rejects.toMatchObject({ code: 'DORSAL_QUERY_CANCELLED' });
      // Aborted before it runs: not run at all.
      await expect(analytics.query('SELECT 1', { signal: AbortSignal.abort() })).rejects.toMatchObject({
        code: 'DORSAL_QUERY_CANCELLED',
      });
      expect((await analytics.query('SELECT 42 AS x')).rows).toEqual([[42]]);
    } finally {
      await analytics.close();
    }
  });

  it('is stopped by the server, which frees its slot at once, not at its time limit', async () => {
    const served = await serveQueries(
      dir,
      { maxConcurrentQueries: 1, maxWaitingQueries: 0, timeoutMs: 600_000 },
      {},
    );
    try {
      const socket = connect(served.server.port, '127.0.0.1');
      await once(socket, 'connect');
      const body = JSON.stringify({ sql: ENDLESS, timeoutMs: 600_000 });
      socket.write(
        `POST /analytics/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      await until(() => served.route.held().inFlight === 1, 'the endless query running');
      // Long enough for its SQL to be running in DuckDB (a query stopped before it runs proves less).
      await new Promise((resolve) => setTimeout(resolve, 500));
      socket.destroy();
      await until(() => served.route.held().inFlight === 0, 'its slot freed once its client left', 10_000);
      expect((await query(served.server.url, 'SELECT 1 AS one')).status).toBe(200);
    } finally {
      await served.close();
    }
  });

  it('is stopped when a RemoteAnalytics caller aborts it', async () => {
    const served = await serveQueries(dir, { maxConcurrentQueries: 1, timeoutMs: 600_000 }, {});
    try {
      const remote = new RemoteAnalytics({ url: served.server.url });
      const controller = new AbortController();
      const running = remote.query(ENDLESS, { timeoutMs: 600_000, signal: controller.signal });
      await until(() => served.route.held().inFlight === 1, 'the endless query running');
      await new Promise((resolve) => setTimeout(resolve, 500));
      controller.abort();
      await expect(running).rejects.toMatchObject({ code: 'DORSAL_QUERY_CANCELLED' });
      await until(() => served.route.held().inFlight === 0, 'its slot freed', 10_000);
    } finally {
      await served.close();
    }
  });
});
