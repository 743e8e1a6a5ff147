import { once } from 'node:events';
import { mkdirSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { type IngestionServer, IngestionService, startIngestionServer } from '../../src/ingestion.js';
import { Lake } from '../../src/lake.js';
import { type DropEvent, SinkSendError, type SinkTransport, TelemetrySink } from '../../src/sink.js';
import { type Block, decodeBlock, encodeBlock } from '../../src/wire.js';
import { runCompiledChild } from '../helpers/child.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { freePort } from './http-helpers.js';

const FAST = { initialMs: 10, maxMs: 100 };

describe('telemetry sink', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  /** The drops the lake was told of for a process, all reasons together. */
  async function droppedInLake(data: string, processId: string): Promise<number> {
    const lake = Lake.open({ data });
    try {
      return (await lake.drops(processId)).reduce((sum, report) => sum + report.total, 0);
    } finally {
      await lake.close();
    }
  }

  async function storedIds(data: string, processId: string): Promise<string[]> {
    const lake = Lake.open({ data });
    try {
      return (await lake.blocks({ processId })).map((b) => b.blockId).sort();
    } finally {
      await lake.close();
    }
  }

  it('keeps its process alive while flush and close are awaited with the server down (it ended in their middle, code 0)', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const { out, code } = await runCompiledChild(['test/fixtures/sink-server-down.ts', url], 60_000);
    expect(code).toBe(0);
    expect(
      out
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line)),
    ).toEqual([{ flushed: false }, { closed: true, sent: 0, dropped: 1 }]);
  }, 60_000);

  it('sends process, stream and blocks in process (no HTTP hop)', async () => {
    const data = join(dir, 'embedded');
    const service = new IngestionService({ data });
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const sent: string[] = [];
    const sink = new TelemetrySink({ target: service, process, onSent: (id) => sent.push(id) });
    sink.addStream(stream);
    const blocks = [1, 2, 3, 4, 5].map((seed) => makeBlock(stream, 10, seed).block);
    for (const block of blocks) expect(sink.push(block)).toBe(true);
    const stats = await sink.close({ timeoutMs: 30_000 });
    expect(stats).toMatchObject({ pushed: 5, sent: 5, droppedTotal: 0, buffered: 0, bufferedBytes: 0 });
    expect(await storedIds(data, process.processId)).toEqual(blocks.map((b) => b.blockId).sort());
    // Each block acknowledged is said once.
    expect(sent.sort()).toEqual(blocks.map((b) => b.blockId).sort());
    await service.close();
  });

  it('loses nothing when the server goes down and comes back on the same port', async () => {
    const data = join(dir, 'down-up');
    const port = await freePort();
    let server: IngestionServer | undefined = await startIngestionServer({ port, lake: { data } });
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const drops: DropEvent[] = [];
    const sink = new TelemetrySink({
      target: server.url,
      process,
      backoff: FAST,
      maxAttempts: 2,
      spool: { dir: join(dir, 'spool-down-up') },
      onDrop: (event) => drops.push(event),
    });
    sink.addStream(stream);
    const blocks: Block[] = [];
    const push = (n: number): void => {
      for (let i = 0; i < n; i++) {
        const { block } = makeBlock(stream, 32, blocks.length + 1);
        blocks.push(block);
        sink.push(block);
      }
    };
    push(10);
    expect(await sink.flush(30_000)).toBe(true);
    expect(sink.stats.sent).toBe(10);

    await server.close();
    server = undefined;
    push(20);
    await vi.waitFor(() => expect(sink.stats.serverDown).toBe(true), { timeout: 30_000, interval: 20 });
    push(10);
    await vi.waitFor(() => expect(sink.stats.spooled).toBeGreaterThan(0), { timeout: 30_000, interval: 20 });

    server = await startIngestionServer({ port, lake: { data } });
    try {
      await vi.waitFor(() => expect(sink.stats.sent).toBe(40), { timeout: 30_000, interval: 50 });
      const stats = await sink.close({ timeoutMs: 30_000 });
      expect(stats).toMatchObject({
        pushed: 40,
        sent: 40,
        droppedTotal: 0,
        spoolBlocks: 0,
        serverDown: false,
      });
      expect(stats.retries).toBeGreaterThan(0);
      expect(drops).toEqual([]);
      expect(await storedIds(data, process.processId)).toEqual(blocks.map((b) => b.blockId).sort());
    } finally {
      await server.close();
    }
  });

  it('counts every drop when the spool is full, and a later sink sends what was spooled', async () => {
    const data = join(dir, 'full-spool');
    const spoolDir = join(dir, 'spool-full');
    const port = await freePort();
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const drops: DropEvent[] = [];
    const blocks = Array.from({ length: 20 }, (_, i) => makeBlock(stream, 256, i + 1).block);
    const blockSize = encodeBlock(blocks[0] as Block).length;
    const sink = new TelemetrySink({
      target: `http://127.0.0.1:${port}`,
      process,
      backoff: FAST,
      maxAttempts: 2,
      maxBufferBytes: 3 * blockSize,
      spool: { dir: spoolDir, maxBytes: 4 * blockSize },
      onDrop: (event) => drops.push(event),
    });
    sink.addStream(stream);
    for (const block of blocks) sink.push(block);
    const stats = await sink.close({ timeoutMs: 500 });
    expect(stats.pushed).toBe(20);
    expect(stats.sent).toBe(0);
    expect(stats.dropped.spoolFull).toBeGreaterThan(0);
    expect(stats.spoolBlocks).toBeGreaterThan(0);
    expect(stats.spoolBlocks + stats.droppedTotal).toBe(20);
    expect(drops).toHaveLength(stats.droppedTotal);
    expect(
      drops.every(
        (d) => d.reason === 'spoolFull' && d.error?.includes(`spool of ${4 * blockSize} bytes is full`),
      ),
    ).toBe(true);

    const server = await startIngestionServer({ port, lake: { data } });
    try {
      const later = new TelemetrySink({
        target: server.url,
        process: makeProcess(),
        spool: { dir: spoolDir },
      });
      expect(await later.flush(30_000)).toBe(true);
      const after = await later.close();
      // Its own drops: none (the first sink's count is not this one's).
      expect(after).toMatchObject({
        sent: stats.spoolBlocks,
        spoolBlocks: 0,
        droppedTotal: 0,
        reportedDrops: 0,
      });
      const dropped = new Set(drops.map((d) => d.blockId));
      const expected = blocks.map((b) => b.blockId).filter((id) => !dropped.has(id));
      expect(await storedIds(data, process.processId)).toEqual(expected.sort());
      // The first sink could not report its drops: it kept the count in the spool, and the later
      // sink delivered it.
      expect(stats.reportedDrops).toBe(0);
      expect(await droppedInLake(data, process.processId)).toBe(stats.droppedTotal);
    } finally {
      await server.close();
    }
  });

  it('keeps its blocks (spooled) at a URL whose server is not ingestion (a page’s 404, a redirect): the URL fixed, a later sink sends them', async () => {
    const data = join(dir, 'not-ingestion');
    const spoolDir = join(dir, 'spool-not-ingestion');
    const statuses = [404, 400, 301];
    let requests = 0;
    const page = createServer((_req, res) => {
      const status = statuses[requests++ % statuses.length]!;
      res.writeHead(status, {
        'content-type': 'text/html',
        ...(status === 301 ? { location: 'https://x/' } : {}),
      });
      res.end('<h1>Not here</h1>');
    });
    page.listen(0, '127.0.0.1');
    await once(page, 'listening');
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const blocks = Array.from({ length: 5 }, (_, i) => makeBlock(stream, 64, i + 1).block);
    try {
      const sink = new TelemetrySink({
        target: `http://127.0.0.1:${(page.address() as AddressInfo).port}`,
        process,
        backoff: FAST,
        maxAttempts: 3,
        spool: { dir: spoolDir },
      });
      sink.addStream(stream);
      for (const block of blocks) sink.push(block);
      const stats = await sink.close({ timeoutMs: 1000 });
      // Refused for good, they were dropped (rejected) and so was the report of their drops.
      expect(stats).toMatchObject({ pushed: 5, sent: 0, spoolBlocks: 5, droppedTotal: 0 });
      expect(stats.lastError).toMatch(
        /answered (404|400|301) without an ingestion error \(is it a dorsal ingestion server\?\): "<h1>Not here/,
      );
      expect(requests).toBeGreaterThan(0);
    } finally {
      page.close();
    }
    const server = await startIngestionServer({ port: 0, lake: { data } });
    try {
      const later = new TelemetrySink({
        target: server.url,
        process: makeProcess(),
        spool: { dir: spoolDir },
      });
      expect(await later.flush(30_000)).toBe(true);
      expect(await later.close()).toMatchObject({ sent: 5, droppedTotal: 0 });
      expect(await storedIds(data, process.processId)).toEqual(blocks.map((b) => b.blockId).sort());
    } finally {
      await server.close();
    }
  });

  it('refuses a deadline that is not a number (flush(NaN) froze the process), and ids that are not UUIDs (a block id named a file outside the spool)', async () => {
    const spoolDir = join(dir, 'spool-bad-input');
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const sink = new TelemetrySink({
      target: `http://127.0.0.1:${await freePort()}`,
      process,
      backoff: FAST,
      spool: { dir: spoolDir },
    });
    sink.addStream(stream);
    sink.push(makeBlock(stream, 16, 1).block);
    await expect(sink.flush(Number.NaN)).rejects.toThrow(
      /sink\.flush: the timeout must be a number of ms, got NaN/,
    );
    await expect(sink.close({ timeoutMs: Number.NaN })).rejects.toThrow(
      /sink\.close: the timeout must be a number of ms, got NaN/,
    );
    const escaping = { ...makeBlock(stream, 16, 2).block, blockId: 'x/../../../escaped' };
    expect(() => sink.push(escaping)).toThrow(
      /a block's blockId must be a UUID, got "x\/\.\.\/\.\.\/\.\.\/escaped"/,
    );
    expect(() => sink.push({ ...makeBlock(stream, 16, 3).block, processId: '../p' })).toThrow(
      /a block's processId must be a UUID/,
    );
    expect(() => sink.addStream({ ...makeStream(process.processId), streamId: '../s' })).toThrow(
      /the stream record is one no lake would take .*streamId/,
    );
    // The refusals counted nothing, and the sink still closes (its block spooled).
    expect(await sink.close({ timeoutMs: 300 })).toMatchObject({
      pushed: 1,
      spoolBlocks: 1,
      droppedTotal: 0,
    });
    expect(readdirSync(dir).filter((name) => name.includes('escaped'))).toEqual([]);
  });

  it("counts a spooled block an earlier run's, when the sink that sends it finds it refused", async () => {
    const data = join(dir, 'spooled-refused');
    const spoolDir = join(dir, 'spool-refused');
    const port = await freePort();
    const earlier = makeProcess();
    const stream = makeStream(earlier.processId);
    const first = new TelemetrySink({
      target: `http://127.0.0.1:${port}`,
      process: earlier,
      backoff: FAST,
      maxAttempts: 1,
      spool: { dir: spoolDir },
    });
    first.addStream(stream);
    for (let i = 0; i < 5; i++) first.push(makeBlock(stream, 64, i + 1).block);
    expect(await first.close({ timeoutMs: 500 })).toMatchObject({ spoolBlocks: 5, droppedTotal: 0 });
    // A server that refuses those blocks for good (each holds more than it takes).
    const server = await startIngestionServer({ port, lake: { data }, maxBlockBytes: 100 });
    try {
      const later = makeProcess();
      const sink = new TelemetrySink({ target: server.url, process: later, spool: { dir: spoolDir } });
      await vi.waitFor(() => expect(sink.stats.droppedTotal).toBe(5), { timeout: 30_000, interval: 20 });
      await sink.close({ timeoutMs: 10_000 });
      // The earlier run lost them: its count in the lake, none in the later one's.
      expect(await droppedInLake(data, earlier.processId)).toBe(5);
      expect(await droppedInLake(data, later.processId)).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('drops a block refused with 4xx without retrying it, and counts it', async () => {
    const data = join(dir, 'rejected');
    const server = await startIngestionServer({ port: 0, lake: { data } });
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const drops: DropEvent[] = [];
      const sent: string[] = [];
      const sink = new TelemetrySink({
        target: server.url,
        process,
        backoff: FAST,
        onDrop: (e) => drops.push(e),
        onSent: (id) => sent.push(id),
      });
      sink.addStream(stream);
      const good = makeBlock(stream, 8, 1).block;
      const bad = makeBlock(stream, 8, 2).block;
      const truncated = { ...bad, payload: { ...bad.payload, objects: bad.payload.objects.subarray(0, 10) } };
      sink.push(good);
      sink.push(truncated);
      const stats = await sink.close({ timeoutMs: 30_000 });
      expect(stats).toMatchObject({ sent: 1, retries: 0, dropped: { rejected: 1 } });
      expect(drops).toEqual([
        expect.objectContaining({
          reason: 'rejected',
          blockId: bad.blockId,
          error: expect.stringContaining('ingestion answered 400'),
        }),
      ]);
      expect(await storedIds(data, process.processId)).toEqual([good.blockId]);
      expect(sent).toEqual([good.blockId]);
      expect(stats.reportedDrops).toBe(1);
      expect(await droppedInLake(data, process.processId)).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('sends the process and stream again to a server that lost them', async () => {
    const port = await freePort();
    let server = await startIngestionServer({ port, lake: { data: join(dir, 'first') } });
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const sink = new TelemetrySink({ target: server.url, process, backoff: FAST });
    sink.addStream(stream);
    sink.push(makeBlock(stream, 8, 1).block);
    expect(await sink.flush(30_000)).toBe(true);
    await server.close();
    server = await startIngestionServer({ port, lake: { data: join(dir, 'second') } });
    try {
      const block = makeBlock(stream, 8, 2).block;
      sink.push(block);
      const stats = await sink.close({ timeoutMs: 30_000 });
      expect(stats).toMatchObject({ sent: 2, droppedTotal: 0 });
      expect(await storedIds(join(dir, 'second'), process.processId)).toEqual([block.blockId]);
    } finally {
      await server.close();
    }
  });

  it('without a spool, drops what does not fit in memory and counts it', async () => {
    const port = await freePort();
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const sink = new TelemetrySink({
      target: `http://127.0.0.1:${port}`,
      process,
      backoff: FAST,
      maxBufferBytes: 5000,
    });
    sink.addStream(stream);
    const results = Array.from({ length: 10 }, (_, i) => sink.push(makeBlock(stream, 256, i + 1).block));
    expect(results.filter((r) => !r).length).toBeGreaterThan(0);
    const stats = await sink.close({ timeoutMs: 200 });
    expect(stats.sent).toBe(0);
    expect(stats.dropped.bufferFull).toBe(results.filter((r) => !r).length);
    expect(stats.dropped.shutdown).toBe(results.filter((r) => r).length);
    expect(stats.droppedTotal).toBe(10);
    expect(stats.bufferedBytes).toBe(0);
  });

  it('sets aside what waits: blocks in flight that come back unavailable queue behind those pushed after', async () => {
    // A stand-in server: each block request answered after 300 ms, the first three with 503.
    let blockRequests = 0;
    const peer = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const block = req.url === '/ingestion/insert_block';
        const down = block && ++blockRequests <= 3;
        setTimeout(
          () => {
            res.writeHead(down ? 503 : 200, { 'content-type': 'application/json', connection: 'close' });
            res.end(
              JSON.stringify(down ? { error: { code: 'DORSAL_BUSY', message: 'busy' } } : { inserted: true }),
            );
          },
          block ? 300 : 0,
        );
      });
    });
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const { port } = peer.address() as AddressInfo;
      const sent: string[] = [];
      const sink = new TelemetrySink({
        target: `http://127.0.0.1:${port}`,
        process,
        backoff: FAST,
        maxInFlight: 3,
        onSent: (id) => sent.push(id),
      });
      sink.addStream(stream);
      for (let i = 0; i < 10; i++) sink.push(makeBlock(stream, 8, i + 1).block);
      await vi.waitFor(() => expect(sink.stats.inFlight).toBe(3), { timeout: 10_000, interval: 5 });
      // The seven waiting are dropped now (no spool); the three in flight will come back 503.
      sink.setAsideQueued();
      expect(sink.stats.dropped.shutdown).toBe(7);
      const last = makeBlock(stream, 8, 11).block;
      sink.push(last);
      await sink.close({ timeoutMs: 30_000 });
      // Sent before the three that came back: it was pushed after the set-aside.
      expect(sent[0]).toBe(last.blockId);
      expect(sent).toHaveLength(4);
    } finally {
      await new Promise((resolve) => peer.close(resolve));
    }
  });

  it('retries a request the server timed out (408) instead of dropping its block', async () => {
    // A stand-in server: the first two block requests time out, as dorsal answers a stalled body.
    let blockRequests = 0;
    const peer = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const timedOut = req.url === '/ingestion/insert_block' && ++blockRequests <= 2;
        res.writeHead(timedOut ? 408 : 200, { 'content-type': 'application/json', connection: 'close' });
        res.end(
          JSON.stringify(
            timedOut
              ? { error: { code: 'DORSAL_REQUEST_TIMEOUT', message: 'request body stalled' } }
              : { inserted: true },
          ),
        );
      });
    });
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const { port } = peer.address() as AddressInfo;
      const sink = new TelemetrySink({ target: `http://127.0.0.1:${port}`, process, backoff: FAST });
      sink.addStream(stream);
      sink.push(makeBlock(stream, 8, 1).block);
      const stats = await sink.close({ timeoutMs: 30_000 });
      expect(stats).toMatchObject({ sent: 1, droppedTotal: 0, retries: 2 });
      expect(blockRequests).toBe(3);
    } finally {
      await new Promise((resolve) => peer.close(resolve));
    }
  });

  it('set aside after a long outage: the next block is tried at once, not after the backoff the outage grew', async () => {
    // A transport (a stand-in for the network) that is down until `up`, counting block probes.
    let up = false;
    let probes = 0;
    const sent: string[] = [];
    const transport: SinkTransport = {
      async send(kind, bytes) {
        if (kind !== 'block') return;
        if (!up) {
          probes++;
          throw new SinkSendError('down', true);
        }
        sent.push(decodeBlock(bytes).blockId);
      },
      async close() {},
    };
    const process = makeProcess();
    const stream = makeStream(process.processId);
    // One attempt per block: each failure is a probe of a down server, the backoff doubling from
    // 10 ms. After the seventh, the probe waits 0.64 s to 1.28 s.
    const sink = new TelemetrySink({
      target: transport,
      process,
      maxAttempts: 1,
      backoff: { initialMs: 10, maxMs: 60_000 },
    });
    sink.addStream(stream);
    sink.push(makeBlock(stream, 8, 1).block);
    await vi.waitFor(() => expect(probes).toBe(7), { timeout: 10_000, interval: 1 });
    // The server is back; the caller sets the rest aside and pushes its last block, with 0.3 s left.
    up = true;
    sink.setAsideQueued();
    const last = makeBlock(stream, 8, 2).block;
    sink.push(last);
    await sink.close({ timeoutMs: 300 });
    expect(sent).toContain(last.blockId);
  });

  it('set aside while the server stays down: the backoff grows again from its first step, it does not probe flat out', async () => {
    let probes = 0;
    const transport: SinkTransport = {
      async send(kind) {
        if (kind !== 'block') return;
        probes++;
        throw new SinkSendError('down', true);
      },
      async close() {},
    };
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const sink = new TelemetrySink({
      target: transport,
      process,
      maxAttempts: 1,
      backoff: { initialMs: 10, maxMs: 60_000 },
    });
    sink.addStream(stream);
    sink.push(makeBlock(stream, 8, 1).block);
    await vi.waitFor(() => expect(probes).toBe(3), { timeout: 10_000, interval: 1 });
    sink.setAsideQueued();
    for (let seed = 2; seed < 7; seed++) sink.push(makeBlock(stream, 8, seed).block);
    const before = probes;
    // A second of a server still down: a backoff doubling from 10 ms probes it about eight times
    // (a slower machine fewer); held at its first step, it probed about a hundred times.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(probes - before).toBeLessThan(20);
    expect(probes - before).toBeGreaterThan(0);
    await sink.close({ timeoutMs: 0 });
  });

  it('in-process into a lake that is none: the lake’s own words in its last error, not an internal error', async () => {
    const data = join(dir, 'foreign');
    mkdirSync(data);
    const db = new Database(join(data, 'lake.sqlite'));
    db.exec('CREATE TABLE customers (id INTEGER)');
    db.close();
    const service = new IngestionService({ data });
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const sink = new TelemetrySink({ target: service, process, maxAttempts: 1, backoff: FAST });
    sink.addStream(stream);
    sink.push(makeBlock(stream, 8, 1).block);
    const stats = await sink.close({ timeoutMs: 1000 });
    await service.close();
    expect(stats.sent).toBe(0);
    expect(stats.lastBlockError).toMatch(/lake\.sqlite is not a dorsal lake: it holds tables \(customers\)/);
  });

  it('keeps as the last block error only a block’s final failure, not an attempt a retry mended', async () => {
    let attempts = 0;
    const transport: SinkTransport = {
      async send(kind) {
        if (kind === 'block' && attempts++ === 0) throw new SinkSendError('connect ECONNRESET', true);
      },
      async close() {},
    };
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const sink = new TelemetrySink({ target: transport, process, backoff: FAST });
    sink.addStream(stream);
    sink.push(makeBlock(stream, 8, 1).block);
    const stats = await sink.close({ timeoutMs: 5000 });
    expect(stats).toMatchObject({ sent: 1, retries: 1, lastError: 'connect ECONNRESET' });
    expect(stats.lastBlockError).toBeUndefined();
  });

  it('sends, counts and removes no spooled block once its close is over: it stays for the next sink', async () => {
    const spool = { dir: join(dir, 'closed-spool') };
    const process = makeProcess();
    const stream = makeStream(process.processId);
    // A transport (a stand-in for the network) that is down, then holds block sends until `open`.
    let up = false;
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const held: Promise<void>[] = [];
    const stored: string[] = [];
    const transport: SinkTransport = {
      async send(kind, bytes) {
        if (!up) throw new SinkSendError('down', true);
        if (kind === 'block') {
          const send = gate.then(() => {
            stored.push(decodeBlock(bytes).blockId);
          });
          held.push(send);
          await send;
        }
      },
      async close() {},
    };
    const spooling = new TelemetrySink({ target: transport, process, spool, maxAttempts: 1, backoff: FAST });
    spooling.addStream(stream);
    const blocks = [1, 2, 3, 4].map((seed) => makeBlock(stream, 8, seed).block);
    for (const block of blocks) spooling.push(block);
    expect(await spooling.close({ timeoutMs: 2000 })).toMatchObject({ spooled: 4, droppedTotal: 0 });

    up = true;
    let closed = false;
    const late: string[] = [];
    const sending = new TelemetrySink({
      target: transport,
      process,
      spool,
      backoff: FAST,
      onSent: (id) => {
        if (closed) late.push(id);
      },
    });
    await vi.waitFor(() => expect(held.length).toBeGreaterThan(0), { timeout: 10_000, interval: 5 });
    const stats = await sending.close({ timeoutMs: 200 });
    closed = true;
    open();
    await Promise.all(held);
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(stats.sent).toBe(0);
    expect(late).toEqual([]);
    expect(sending.stats.sent).toBe(0);

    // The next sink on the directory sends every block (those stored already again: harmless).
    const next = new TelemetrySink({ target: transport, process, spool, backoff: FAST });
    expect(await next.close({ timeoutMs: 10_000 })).toMatchObject({
      sent: 4,
      spoolBlocks: 0,
      droppedTotal: 0,
    });
    expect(new Set(stored)).toEqual(new Set(blocks.map((b) => b.blockId)));
    // The records those blocks needed are kept until a sink opens the emptied spool.
    const records = () => readdirSync(join(spool.dir, 'meta')).filter((n) => /^(process|stream)-/.test(n));
    expect(records().length).toBeGreaterThan(0);
    await new TelemetrySink({ target: transport, process: makeProcess(), spool }).close({ timeoutMs: 1000 });
    expect(records()).toEqual([]);
  });
});
