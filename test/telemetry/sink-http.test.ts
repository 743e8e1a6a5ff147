import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, type PersistReport, System } from '../../src/index.js';
import { type IngestionServer, startIngestionServer } from '../../src/ingestion.js';
import { Lake } from '../../src/lake.js';
import { HttpTransport, SinkSendError, type SinkTransport, TelemetrySink } from '../../src/sink.js';
import { compressPart, encodeBlock } from '../../src/wire.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { freePort } from './http-helpers.js';

const FAST = { initialMs: 10, maxMs: 50 };
const fixtureUrl = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

/** A TLS-terminating proxy in front of `upstream` (a stand-in for the reverse proxy the docs advise). */
async function startTlsProxy(upstream: string, key: string, cert: string) {
  const server = createTlsServer({ key, cert }, (req, res) => {
    const forward = request(
      new URL(req.url ?? '/', upstream),
      { method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('the sink over HTTP', () => {
  const { dir, cleanup } = tempDir();
  const data = join(dir, 'lake');
  let ingestion: IngestionServer;
  beforeAll(async () => {
    ingestion = await startIngestionServer({ port: 0, lake: { data } });
  });
  afterAll(async () => {
    await ingestion.close();
    cleanup();
  });

  const blocksOf = async (streamId: string) => {
    const lake = Lake.open({ data });
    try {
      return await lake.blocks({ streamId });
    } finally {
      await lake.close();
    }
  };

  it('sends through an https: URL (a TLS proxy in front of the server), trusting the CA it is given', async () => {
    const [keyPath, certPath] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(certPath, 'utf8');
    const proxy = await startTlsProxy(ingestion.url, readFileSync(keyPath, 'utf8'), cert);
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const sink = new TelemetrySink({
        target: new HttpTransport(proxy.url, { ca: cert }),
        process,
        backoff: FAST,
      });
      sink.addStream(stream);
      for (const seed of [1, 2, 3]) sink.push(makeBlock(stream, 10, seed).block);
      const stats = await sink.close({ timeoutMs: 20_000 });
      expect(stats).toMatchObject({ pushed: 3, sent: 3, droppedTotal: 0 });
      expect(await blocksOf(stream.streamId)).toHaveLength(3);
      // Without the CA, the certificate is not trusted: the send fails, saying why.
      const untrusting = new HttpTransport(proxy.url);
      await expect(untrusting.send('block', encodeBlock(makeBlock(stream, 10, 4).block))).rejects.toThrow(
        /certificate/,
      );
      await untrusting.close();
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it('refuses, when made, a URL of another scheme and a key a header cannot carry (a key file’s newline)', () => {
    expect(() => new HttpTransport('ftp://127.0.0.1:1')).toThrow(/must be http: or https:/);
    expect(() => new HttpTransport('not a url')).toThrow(ConfigError);
    expect(() => new HttpTransport('http://127.0.0.1:1', { key: 'secret\n' })).toThrow(
      /the API key holds a line break \(a key read from a file keeps its newline: trim it\)/,
    );
    expect(() => new HttpTransport('http://127.0.0.1:1', { key: 'sec\u0000ret' })).toThrow(/U\+0000/);
    expect(() => new System(spine, { persist: { url: 'http://127.0.0.1:1', key: 'secret\r\n' } })).toThrow(
      /persist option 'key': the API key holds a line break/,
    );
  });

  it('takes no 2xx but ingestion’s acknowledgement for a stored block: a web page at the URL is not the lake', async () => {
    let requests = 0;
    const page = createServer((_req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><body>It works!</body></html>');
    });
    page.listen(0, '127.0.0.1');
    await once(page, 'listening');
    const url = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const transport = new HttpTransport(url);
      const refusal = await transport.send('process', new Uint8Array([1])).then(
        () => undefined,
        (error: unknown) => error,
      );
      await transport.close();
      expect(refusal).toBeInstanceOf(SinkSendError);
      expect(refusal).toMatchObject({ retryable: true, status: 200 });
      expect(String((refusal as Error).message)).toContain(
        `answered 200 without ingestion's acknowledgement (is it a dorsal ingestion server?): "<html>`,
      );
      const sink = new TelemetrySink({ target: url, process, backoff: FAST, maxAttempts: 2 });
      sink.addStream(stream);
      sink.push(makeBlock(stream, 10, 1).block);
      const stats = await sink.close({ timeoutMs: 2000 });
      expect(stats).toMatchObject({ pushed: 1, sent: 0, droppedTotal: 1 });
      expect(stats.lastBlockError).toContain("without ingestion's acknowledgement");
      expect(requests).toBeGreaterThan(0);
    } finally {
      page.close();
    }
  }, 30_000);

  it('ends a request whose answer trickles in at its timeout: the whole request, not the socket’s idle time', async () => {
    const answers = new Set<ReturnType<typeof setInterval>>();
    const trickle = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        // A byte every 100 ms, never the end: the socket is never idle for the timeout.
        const timer = setInterval(() => res.write(' '), 100);
        answers.add(timer);
        res.on('close', () => clearInterval(timer));
      });
    });
    trickle.listen(0, '127.0.0.1');
    await once(trickle, 'listening');
    try {
      const transport = new HttpTransport(`http://127.0.0.1:${(trickle.address() as AddressInfo).port}`, {
        timeoutMs: 500,
      });
      const refusal = await transport.send('process', new Uint8Array([1])).then(
        () => undefined,
        (error: unknown) => error,
      );
      await transport.close();
      expect(refusal).toBeInstanceOf(SinkSendError);
      expect(refusal).toMatchObject({ retryable: true });
      expect(String((refusal as Error).message)).toMatch(/no whole answer within 500 ms/);
      expect(() => new HttpTransport('http://127.0.0.1:1', { timeoutMs: Number.NaN })).toThrow(
        /timeoutMs must be a number of ms from 1 to \d+, got NaN/,
      );
    } finally {
      for (const timer of answers) clearInterval(timer);
      trickle.closeAllConnections();
      trickle.close();
    }
  }, 30_000);

  it('drops a block a proxy refuses for its size (413 in HTML) as rejected, and sends the others: it held every block behind it', async () => {
    // A proxy in front of ingestion with a body limit of 100 kB: larger requests get its page.
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (body.length > 100_000) {
          res.writeHead(413, { 'content-type': 'text/html' });
          res.end('<html><body><h1>413 Request Entity Too Large</h1></body></html>');
          return;
        }
        const forward = request(
          new URL(req.url ?? '/', ingestion.url),
          { method: req.method, headers: req.headers },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        forward.on('error', () => res.destroy());
        forward.end(body);
      });
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const sink = new TelemetrySink({
        target: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
        process,
        backoff: FAST,
        maxAttempts: 2,
      });
      sink.addStream(stream);
      // Incompressible records: the block's body is as large as they are.
      const one = makeBlock(stream, 1).block;
      const large = { ...one, payload: { ...one.payload, objects: compressPart(randomBytes(200_000)) } };
      sink.push(large);
      for (let i = 0; i < 20; i++) sink.push(makeBlock(stream, 10, i + 2).block);
      const stats = await sink.close({ timeoutMs: 10_000 });
      expect(stats).toMatchObject({ pushed: 21, sent: 20, dropped: { rejected: 1 }, droppedTotal: 1 });
      expect(stats.lastBlockError).toMatch(/answered 413/);
      expect((await blocksOf(stream.streamId)).map((b) => b.blockId)).not.toContain(large.blockId);
    } finally {
      proxy.close();
    }
  }, 30_000);

  it('takes requestTimeoutMs for its requests: a server slower than it is tried again, one within it is not', async () => {
    // A stand-in server that takes every record and acknowledges it a second later.
    const slow = createServer((req, res) => {
      req.resume();
      req.on('end', () =>
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"inserted":true}');
        }, 1000),
      );
    });
    slow.listen(0, '127.0.0.1');
    await once(slow, 'listening');
    try {
      const target = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
      const send = async (requestTimeoutMs?: number) => {
        const process = makeProcess();
        const stream = makeStream(process.processId);
        const sink = new TelemetrySink({
          target,
          process,
          backoff: FAST,
          maxAttempts: 1,
          ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
        });
        sink.addStream(stream);
        sink.push(makeBlock(stream, 4, 1).block);
        return sink.close({ timeoutMs: 3000 });
      };
      const short = await send(300);
      expect(short.sent).toBe(0);
      expect(short.lastBlockError).toMatch(/no (whole )?answer within 300 ms/);
      expect(await send()).toMatchObject({ sent: 1, droppedTotal: 0 });
      // The persister's sink takes it too.
      const system = new System(spine, {
        persist: { url: target, requestTimeoutMs: 300, flushTimeoutMs: 1500 },
      });
      system.spawn(fixtureUrl('feed'), { args: { count: 10, perLoop: 10 } });
      await system.start();
      await until(() => system.spine.queue(0).stats().published === 10, 'every tick');
      const persist = (await system.stop()).persist as PersistReport;
      expect(persist.deliveryError).toMatch(/no (whole )?answer within 300 ms/);
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  }, 30_000);

  it('counts a drop report refused for good once, when the refusal comes after close gave it up', async () => {
    // A transport of the program's own (the sink takes one): it refuses every block, and the drop
    // report for good, but only after close has given the report up and counted it unreported.
    const transport: SinkTransport = {
      async send(kind) {
        if (kind === 'block') throw new SinkSendError('no', false, 400, 'DORSAL_WIRE_FORMAT');
        if (kind === 'drops') {
          await new Promise((resolve) => setTimeout(resolve, 1500));
          throw new SinkSendError('gone', false, 422, 'DORSAL_UNKNOWN_PROCESS');
        }
      },
      async close() {},
    };
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const sink = new TelemetrySink({ target: transport, process, backoff: FAST });
    sink.addStream(stream);
    for (let i = 0; i < 3; i++) sink.push(makeBlock(stream, 4, i + 1).block);
    await until(() => sink.stats.dropped.rejected === 3, 'the blocks refused');
    const stats = await sink.close({ timeoutMs: 500 });
    expect(stats.unreportedDrops).toBe(3);
    // The refusal lands after: the same three, not counted again.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(sink.stats.unreportedDrops).toBe(3);
  }, 30_000);

  it('says in the report why blocks were not delivered: the network’s error, not the drop reports’ bookkeeping', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const system = new System(spine, { persist: { url, flushTimeoutMs: 500 } });
    system.spawn(fixtureUrl('feed'), { args: { count: 50, perLoop: 10 } });
    await system.start();
    await until(() => system.spine.queue(0).stats().published === 50, 'every tick');
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    expect(persist.flushed).toBe(false);
    expect(persist.deliveryError).toMatch(/ECONNREFUSED/);
    // The drop counts that could not reach the lake are said after it.
    expect(persist.deliveryError).toMatch(/; then: \d+ dropped blocks were not reported to the lake/);
  }, 60_000);
});
