import { writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { startIngestionServer } from '../../src/ingestion.js';
import { Lake } from '../../src/lake.js';
import { type DropEvent, type SinkStats, TelemetrySink } from '../../src/sink.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';

const FAST = { initialMs: 10, maxMs: 100 };

/**
 * A stand-in for the network between a sink and a real ingestion server: it passes every request
 * on, but holds the block requests until `release` is called (a slow link or a busy server), and
 * the drop reports until a block's answer is out (so that the answer reaches the sink before its
 * close ends the connections). `unavailable`: a released block gets 503 instead of going on.
 */
async function holdingProxy(
  target: string,
  answerBlocks: 'forward' | 'unavailable' = 'forward',
): Promise<{ url: string; release(): void; close(): Promise<void> }> {
  let open: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let answered: () => void = () => {};
  const blockAnswered = new Promise<void>((resolve) => {
    answered = resolve;
  });
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      if (req.url === '/ingestion/insert_block') {
        await gate;
        res.once('finish', answered);
        if (answerBlocks === 'unavailable') {
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'DORSAL_LAKE_UNAVAILABLE', message: 'held up' } }));
          return;
        }
      }
      if (req.url === '/ingestion/insert_drops') await blockAnswered;
      const upstream = request(
        new URL(req.url ?? '/', target),
        { method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    release: () => open(),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('a block whose request is answered after close gave it up', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  async function inLake(data: string, processId: string): Promise<{ blocks: string[]; drops: number }> {
    const lake = Lake.open({ data });
    try {
      return {
        blocks: (await lake.blocks({ processId })).map((b) => b.blockId),
        drops: (await lake.drops(processId)).reduce((sum, report) => sum + report.total, 0),
      };
    } finally {
      await lake.close();
    }
  }

  it('is counted sent, not also dropped: sent + dropped = pushed', async () => {
    const data = join(dir, 'late-answer');
    const server = await startIngestionServer({ port: 0, lake: { data } });
    const proxy = await holdingProxy(server.url);
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const drops: DropEvent[] = [];
      const sent: string[] = [];
      const sink = new TelemetrySink({
        target: proxy.url,
        process,
        backoff: FAST,
        // The block's request goes on as soon as close has given it up.
        onDrop: (event) => {
          drops.push(event);
          proxy.release();
        },
        onSent: (id) => sent.push(id),
      });
      sink.addStream(stream);
      const { block } = makeBlock(stream, 8, 1);
      expect(sink.push(block)).toBe(true);
      await sink.close({ timeoutMs: 100 });
      // The answer may come after close returned (it stops waiting for it): the stats say it then.
      await vi.waitFor(() => expect(sent).toEqual([block.blockId]), { timeout: 30_000, interval: 20 });
      const stats = sink.stats;
      expect(stats).toMatchObject({ pushed: 1, sent: 1, droppedTotal: 0, dropped: { shutdown: 0 } });
      expect(stats.sent + stats.droppedTotal).toBe(stats.pushed);
      // close reported the drop as it gave the block up; the block is in the lake all the same.
      expect(drops).toEqual([expect.objectContaining({ reason: 'shutdown', blockId: block.blockId })]);
      // The lake holds the block, and was told of no drop.
      expect(stats.reportedDrops).toBe(0);
      expect(await inLake(data, process.processId)).toEqual({ blocks: [block.blockId], drops: 0 });
    } finally {
      await proxy.close();
      await server.close();
    }
  }, 60_000);

  it('is reported dropped to the lake once its request fails', async () => {
    const data = join(dir, 'late-failure');
    const server = await startIngestionServer({ port: 0, lake: { data } });
    const proxy = await holdingProxy(server.url, 'unavailable');
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const sent: string[] = [];
      const sink = new TelemetrySink({
        target: proxy.url,
        process,
        backoff: FAST,
        onDrop: () => proxy.release(),
        onSent: (id) => sent.push(id),
      });
      sink.addStream(stream);
      sink.push(makeBlock(stream, 8, 1).block);
      const stats = await sink.close({ timeoutMs: 100 });
      expect(stats).toMatchObject({ pushed: 1, sent: 0, droppedTotal: 1, dropped: { shutdown: 1 } });
      expect(sent).toEqual([]);
      expect(stats.reportedDrops).toBe(1);
      expect(await inLake(data, process.processId)).toEqual({ blocks: [], drops: 1 });
    } finally {
      await proxy.close();
      await server.close();
    }
  }, 60_000);

  it('a second close, called while the first is under way, waits for it and returns the same stats', async () => {
    const data = join(dir, 'second-close');
    const server = await startIngestionServer({ port: 0, lake: { data } });
    const proxy = await holdingProxy(server.url);
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      let second: Promise<SinkStats> | undefined;
      const sink = new TelemetrySink({
        target: proxy.url,
        process,
        backoff: FAST,
        // Called by the first close as it gives the block up: the second one comes in then.
        onDrop: () => {
          second = sink.close();
          proxy.release();
        },
      });
      sink.addStream(stream);
      sink.push(makeBlock(stream, 8, 1).block);
      const first = await sink.close({ timeoutMs: 100 });
      expect(first).toMatchObject({ pushed: 1, sent: 1, droppedTotal: 0, inFlight: 0 });
      expect(second).toBeDefined();
      expect(await second).toEqual(first);
    } finally {
      await proxy.close();
      await server.close();
    }
  }, 60_000);

  it('is counted sent, not also dropped, when the spool could not be opened', async () => {
    const data = join(dir, 'no-spool');
    // A spool directory under a file: it cannot be made.
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const server = await startIngestionServer({ port: 0, lake: { data } });
    const proxy = await holdingProxy(server.url);
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const drops: DropEvent[] = [];
      const sink = new TelemetrySink({
        target: proxy.url,
        process,
        backoff: FAST,
        spool: { dir: join(file, 'spool') },
        onDrop: (event) => {
          drops.push(event);
          proxy.release();
        },
      });
      sink.addStream(stream);
      const { block } = makeBlock(stream, 8, 1);
      sink.push(block);
      const stats = await sink.close({ timeoutMs: 100 });
      expect(drops).toEqual([expect.objectContaining({ blockId: block.blockId })]);
      expect(stats).toMatchObject({ pushed: 1, sent: 1, droppedTotal: 0, reportedDrops: 0 });
      expect(await inLake(data, process.processId)).toEqual({ blocks: [block.blockId], drops: 0 });
    } finally {
      await proxy.close();
      await server.close();
    }
  }, 60_000);
});

describe('a block in flight at close that the spool cannot take', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('is counted sent, not also dropped (spoolFull), when its request then succeeds', async () => {
    const data = join(dir, 'spool-full');
    const server = await startIngestionServer({ port: 0, lake: { data } });
    const proxy = await holdingProxy(server.url);
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const drops: DropEvent[] = [];
      const sent: string[] = [];
      const sink = new TelemetrySink({
        target: proxy.url,
        process,
        backoff: FAST,
        // A spool that opens but holds no block: close gives the block in flight up as spoolFull.
        spool: { dir: join(dir, 'spool'), maxBytes: 1 },
        onDrop: (event) => {
          drops.push(event);
          proxy.release();
        },
        onSent: (id) => sent.push(id),
      });
      sink.addStream(stream);
      const { block } = makeBlock(stream, 8, 1);
      expect(sink.push(block)).toBe(true);
      await sink.close({ timeoutMs: 100 });
      await vi.waitFor(() => expect(sent).toEqual([block.blockId]), { timeout: 30_000, interval: 20 });
      expect(drops).toEqual([expect.objectContaining({ reason: 'spoolFull', blockId: block.blockId })]);
      const stats = sink.stats;
      expect(stats).toMatchObject({ pushed: 1, sent: 1, droppedTotal: 0, reportedDrops: 0 });
      expect(stats.dropped.spoolFull).toBe(0);
      const lake = Lake.open({ data });
      try {
        expect((await lake.blocks({ processId: process.processId })).map((b) => b.blockId)).toEqual([
          block.blockId,
        ]);
        expect((await lake.drops(process.processId)).reduce((sum, r) => sum + r.total, 0)).toBe(0);
      } finally {
        await lake.close();
      }
    } finally {
      await proxy.close();
      await server.close();
    }
  }, 60_000);
});
