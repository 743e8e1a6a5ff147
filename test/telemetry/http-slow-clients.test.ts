import { randomBytes } from 'node:crypto';
import { type IncomingMessage, request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IngestionServer, startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import {
  compressPart,
  encodeBlock,
  encodeProcessInfo,
  encodeStreamInfo,
} from '../../src/telemetry/wire/index.js';
import { until } from '../helpers/until.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { get, parseRaw, post, rawConnection } from './http-helpers.js';

const STALL_MS = 400;
const PATIENT_STALL_MS = 1000;
const MiB = 1024 * 1024;

/** The head of a block POST declaring `length` bytes. */
const head = (length: number, path = '/ingestion/insert_block'): string =>
  `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/cbor\r\ncontent-length: ${length}\r\n\r\n`;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('ingestion over HTTP: slow and many clients', () => {
  const { dir, cleanup } = tempDir();
  let server: IngestionServer;
  /** A server with a longer stall timeout, for clients that must not time out on a busy machine. */
  let patient: IngestionServer;
  const process = makeProcess();
  const stream = makeStream(process.processId);
  /** The requests the patient server received. */
  const requests: IncomingMessage[] = [];

  beforeAll(async () => {
    server = await startIngestionServer({
      port: 0,
      lake: { data: dir },
      stallTimeoutMs: STALL_MS,
      bodyLimit: 4 * MiB,
      largeBodyBudgetBytes: 4 * MiB,
      maxConnections: 16,
    });
    patient = await startIngestionServer({
      port: 0,
      lake: { data: dir },
      stallTimeoutMs: PATIENT_STALL_MS,
      bodyLimit: 4 * MiB,
      largeBodyBudgetBytes: 4 * MiB,
    });
    patient.server.on('request', (req: IncomingMessage) => requests.push(req));
    expect((await post(server.url, 'process', encodeProcessInfo(process))).status).toBe(200);
    expect((await post(server.url, 'stream', encodeStreamInfo(stream))).status).toBe(200);
  });

  afterAll(async () => {
    await server.close();
    await patient.close();
    cleanup();
  });

  /** Waits until the patient server is reading a body and has received `bytes` of it. */
  const receiving = async (bytes: number): Promise<void> => {
    await until(
      () => requests.some((req) => req.listenerCount('data') > 0 && req.socket.bytesRead >= bytes),
      `a body of which ${bytes} bytes arrived`,
    );
    // What arrived is handed to the body reader in the turns that follow.
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  };

  /** An encoded block of 3.4 to 3.5 MiB: 2.4 MiB or more of the 4 MiB budget. */
  const largeBlock = (): Uint8Array => {
    const block = makeBlock(stream, 1).block;
    const objects = compressPart(randomBytes(3.4 * MiB));
    const bytes = encodeBlock({ ...block, payload: { ...block.payload, objects } });
    expect(bytes.length).toBeGreaterThan(3.4 * MiB);
    expect(bytes.length).toBeLessThan(3.5 * MiB);
    return bytes;
  };

  it('answers 408 in JSON to a body that declares 4 MiB and sends 16 bytes, and stays responsive', async () => {
    const conn = rawConnection(server.port, head(4 * MiB));
    conn.socket.write(Buffer.alloc(16));
    // While the body hangs, the server answers others.
    expect((await get(server.url, '/health')).status).toBe(200);
    const answer = parseRaw(await conn.answer);
    expect(answer.status).toBe(408);
    expect(answer.body.error?.code).toBe('DORSAL_REQUEST_TIMEOUT');
    expect(answer.body.error?.message).toContain(
      `request body stalled: 16 bytes in the last ${STALL_MS} ms, 16 in all`,
    );
  });

  it('answers 408 to a body that trickles a byte at a time', async () => {
    const conn = rawConnection(server.port, head(1000));
    while (!conn.closed()) {
      conn.socket.write(Buffer.alloc(1));
      await sleep(20);
    }
    const answer = parseRaw(await conn.answer);
    expect(answer.status).toBe(408);
    expect(answer.body.error?.message).toContain('a body must bring 16384 bytes or its end');
  });

  it('answers 408 in JSON to headers that stop half-way', async () => {
    const conn = rawConnection(server.port, 'POST /ingestion/insert_block HTTP/1.1\r\nhost: 127.0.0.1\r\n');
    const answer = parseRaw(await conn.answer);
    expect(answer.status).toBe(408);
    expect(answer.body.error?.code).toBe('DORSAL_REQUEST_TIMEOUT');
  });

  it('stores a block whose body comes slowly but steadily', async () => {
    const { block } = makeBlock(stream, 60_000);
    const bytes = encodeBlock(block);
    expect(bytes.length).toBeGreaterThan(600_000);
    const conn = rawConnection(patient.port, head(bytes.length));
    // 20 KiB every 50 ms or more: 30 writes, longer in all than the stall timeout, but never
    // stalled for a window.
    for (let at = 0; at < bytes.length; at += 20 * 1024) {
      conn.socket.write(bytes.subarray(at, at + 20 * 1024));
      await sleep(50);
    }
    await until(() => conn.socket.bytesRead > 0, 'the answer');
    conn.socket.end();
    expect(parseRaw(await conn.answer)).toEqual({ status: 200, body: { inserted: true } });
  });

  it('refuses a large body with 503 and Retry-After while the large-body budget is taken', async () => {
    const first = rawConnection(patient.port, head(4 * MiB));
    // 3.5 MiB at once (2.5 MiB of them from the budget), then kept alive: 17 KiB every 300 ms.
    first.socket.write(Buffer.alloc(3.5 * MiB));
    const feeding = setInterval(() => first.socket.write(Buffer.alloc(17 * 1024)), 300);
    try {
      await receiving(3.5 * MiB);
      const second = rawConnection(patient.port, head(3 * MiB));
      const text = await second.answer;
      expect(parseRaw(text).status).toBe(503);
      expect(parseRaw(text).body.error?.code).toBe('DORSAL_BUSY');
      expect(text).toMatch(/\r\nretry-after: 1\r\n/i);
      // Small bodies are not held back by large ones.
      expect((await post(patient.url, 'block', encodeBlock(makeBlock(stream, 10).block))).status).toBe(200);
    } finally {
      clearInterval(feeding);
    }
    // The first one ends (its body stalls now); the budget is free again.
    expect(parseRaw(await first.answer).status).toBe(408);
    const third = rawConnection(patient.port, head(3 * MiB));
    expect(parseRaw(await third.answer).status).toBe(408);
  });

  it('lets a client that declares a large body and sends little hold no more than it sent', async () => {
    const slow = rawConnection(patient.port, head(4 * MiB));
    slow.socket.write(Buffer.alloc(20 * 1024));
    const feeding = setInterval(() => slow.socket.write(Buffer.alloc(20 * 1024)), 300);
    try {
      await receiving(20 * 1024);
      // Had the slow client taken what it declared (3 MiB), this block would not fit.
      expect((await post(patient.url, 'block', largeBlock())).body).toEqual({ inserted: true });
    } finally {
      clearInterval(feeding);
      slow.socket.destroy();
    }
  });

  it('gives the budget back once a large body is stored', async () => {
    // Each takes 2.4 MiB of the 4 MiB budget: the second fits only if the first gave its share back.
    for (let i = 0; i < 3; i++) {
      expect((await post(patient.url, 'block', largeBlock())).body).toEqual({ inserted: true });
    }
  });

  it('refuses a process or stream record over 1 MiB with 413', async () => {
    const big = encodeProcessInfo({ ...makeProcess(), properties: { blob: 'x'.repeat(200_000) } });
    expect(big.length).toBeLessThan(MiB);
    expect((await post(server.url, 'process', big)).status).toBe(200);
    const conn = rawConnection(server.port, head(MiB + 1, '/ingestion/insert_stream'));
    const answer = parseRaw(await conn.answer);
    expect(answer.status).toBe(413);
    expect(answer.body.error?.message).toBe(`body of ${MiB + 1} bytes is over the limit of ${MiB} bytes`);
  });

  it('serves more than 10 requests at once without warning of a listener leak', async () => {
    // Each request in progress listens for the server stopping; Node warns of a leak past 10
    // listeners on one signal, which a busy server reaches in normal use.
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(`${warning.name}: ${warning.message}`);
    };
    globalThis.process.on('warning', onWarning);
    const before = requests.length;
    const conns = Array.from({ length: 12 }, () => rawConnection(patient.port, `${head(100)}ab`));
    try {
      await until(() => requests.length - before === 12, 'the 12 requests received');
      // A warning is emitted on a later tick.
      await sleep(50);
      expect(warnings).toEqual([]);
    } finally {
      globalThis.process.off('warning', onWarning);
      for (const c of conns) c.socket.destroy();
    }
  });

  it('caps the inserts under way, those of clients gone included: more get 503 and Retry-After before their body is read', async () => {
    const capped = await startIngestionServer({
      port: 0,
      lake: { data: dir },
      stallTimeoutMs: PATIENT_STALL_MS,
      maxInserts: 2,
    });
    const held = [0, 1].map(() => {
      const bytes = encodeBlock(makeBlock(stream, 4000).block);
      const conn = rawConnection(capped.port, head(bytes.length));
      // Half the body, then a little now and then: under way, never stalled.
      let at = Math.floor(bytes.length / 2);
      conn.socket.write(bytes.subarray(0, at));
      const feeding = setInterval(() => {
        if (at >= bytes.length - 1024) return;
        conn.socket.write(bytes.subarray(at, at + 1024));
        at += 1024;
      }, 100);
      return { conn, bytes, feeding, rest: () => bytes.subarray(at) };
    });
    try {
      // Once both are under way, a third insert is refused (a record too), and the server still answers.
      let refused: Awaited<ReturnType<typeof post>> | undefined;
      await until(async () => {
        const answer = await post(capped.url, 'block', encodeBlock(makeBlock(stream, 10).block));
        if (answer.status === 503) refused = answer;
        return refused !== undefined;
      }, 'a refusal');
      expect(refused!.body.error?.code).toBe('DORSAL_BUSY');
      expect(refused!.body.error?.message).toMatch(/as many requests as it takes at once \(2\)/);
      expect(refused!.headers.get('retry-after')).toBe('1');
      expect((await post(capped.url, 'stream', encodeStreamInfo(stream))).status).toBe(503);
      expect((await get(capped.url, '/health')).status).toBe(200);
      // The two end and are stored; then inserts go in again.
      for (const h of held) {
        clearInterval(h.feeding);
        h.conn.socket.write(h.rest());
        // Its side closed once answered: a client that half-closes first is not answered.
        await until(() => h.conn.socket.bytesRead > 0, 'the answer');
        h.conn.socket.end();
        const text = await h.conn.answer;
        expect(parseRaw(text), text).toEqual({ status: 200, body: { inserted: true } });
      }
      expect((await post(capped.url, 'block', encodeBlock(makeBlock(stream, 10).block))).status).toBe(200);
    } finally {
      for (const h of held) {
        clearInterval(h.feeding);
        h.conn.socket.destroy();
      }
      await capped.close();
    }
  });

  it('caps open connections, and serves again once they close', async () => {
    // Connections that start a request and stall: each is held until its headers time out, or
    // closed at once, unanswered, when 16 are open (the test's own keep-alive ones included).
    const conns = Array.from({ length: 24 }, () => rawConnection(server.port, 'GET /health HTTP/1.1\r\n'));
    const answers = await Promise.all(conns.map((c) => c.answer));
    const held = answers.filter((text) => text !== '');
    expect(held.length).toBeLessThanOrEqual(16);
    expect(held.length).toBeGreaterThan(0);
    for (const text of held) expect(parseRaw(text).status).toBe(408);
    expect((await get(server.url, '/health')).status).toBe(200);
  });

  it("takes a client that goes away mid-body for the client's doing, not an internal error", async () => {
    const internal: unknown[] = [];
    const logged = await startIngestionServer({
      port: 0,
      lake: { data: dir },
      onInternalError: (error) => internal.push(error),
    });
    let bodies = 0;
    logged.server.on('request', (req: IncomingMessage) => req.once('data', () => (bodies += 1)));
    try {
      for (const end of ['close', 'reset'] as const) {
        const conn = rawConnection(logged.port, head(100));
        conn.socket.write(Buffer.alloc(3));
        const before = bodies;
        await until(() => bodies > before, 'the body under way');
        if (end === 'reset') conn.socket.resetAndDestroy();
        else conn.socket.destroy();
        await conn.answer;
      }
      // The server goes on serving, and has logged nothing.
      expect((await get(logged.url, '/health')).status).toBe(200);
      expect(internal).toEqual([]);
    } finally {
      await logged.close();
    }
  });

  it('frees a connection it answered 408, though its client never closes its side', async () => {
    const capped = await startIngestionServer({
      port: 0,
      lake: { data: dir },
      stallTimeoutMs: STALL_MS,
      maxConnectionsPerAddress: 2,
    });
    // Clients that stop half-way through their headers, read the answer and never close.
    const stalled = Array.from({ length: 2 }, () => {
      const socket = connect({ port: capped.port, host: '127.0.0.1', allowHalfOpen: true });
      socket.on('error', () => {});
      socket.write('GET /health HTTP/1.1\r\n');
      return socket;
    });
    const open = () =>
      new Promise<number>((resolve, reject) =>
        capped.server.getConnections((error, n) => (error ? reject(error) : resolve(n))),
      );
    try {
      await until(() => stalled.every((s) => s.bytesRead > 0), 'the two 408s');
      // Its end of each is closed: the address may connect again (it held both slots for good).
      await until(async () => (await open()) === 0, 'the answered connections closed');
      expect((await get(capped.url, '/health')).status).toBe(200);
    } finally {
      for (const s of stalled) s.destroy();
      await capped.close();
    }
  });

  it('caps the connections of one address, so that another still gets through', async () => {
    const capped = await startIngestionServer({
      port: 0,
      lake: { data: dir },
      stallTimeoutMs: 10_000,
      maxConnections: 8,
      maxConnectionsPerAddress: 4,
    });
    let accepted = 0;
    capped.server.on('connection', () => {
      accepted += 1;
    });
    // One address opens 8 connections that hold their headers back: 4 are kept, 4 closed at once.
    const held = Array.from({ length: 8 }, () => rawConnection(capped.port, 'GET /health HTTP/1.1\r\n'));
    try {
      await until(() => accepted === 8, 'the 8 connections accepted');
      await until(() => held.filter((c) => c.closed()).length === 4, 'the 4 over the cap closed');
      // Another address (all of 127/8 is loopback) is served while those 4 are open.
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: capped.port, path: '/health', localAddress: '127.0.0.2', agent: false },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
      expect(held.filter((c) => c.closed())).toHaveLength(4);
    } finally {
      for (const c of held) c.socket.destroy();
      await capped.close();
    }
  });
});
