import { writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { startIngestionServer } from '../../src/ingestion.js';
import { Lake } from '../../src/lake.js';
import { type DropEvent, type SinkOptions, type SinkStats, TelemetrySink } from '../../src/sink.js';
import type { ProcessInfo, StreamInfo } from '../../src/wire.js';
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

/** The blocks the lake at `data` holds of `processId`, and the drops it was told of. */
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

/**
 * Runs `test` with a sink sending one stream of a new process, through a holding proxy, to a
 * real ingestion server over a lake in `data`; `options` are the sink's (given the proxy, to
 * release it from a listener). The proxy and the server are closed after, whatever happens.
 */
async function withHeldSink(
  data: string,
  options: (proxy: { release(): void }) => Partial<SinkOptions>,
  test: (held: { sink: TelemetrySink; process: ProcessInfo; stream: StreamInfo }) => Promise<void>,
  answerBlocks: 'forward' | 'unavailable' = 'forward',
): Promise<void> {
  const server = await startIngestionServer({ port: 0, lake: { data } });
  const proxy = await holdingProxy(server.url, answerBlocks);
  try {
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const sink = new TelemetrySink({ target: proxy.url, process, backoff: FAST, ...options(proxy) });
    sink.addStream(stream);
    await test({ sink, process, stream });
  } finally {
    await proxy.close();
    await server.close();
  }
}

describe('a block whose request is answered after close gave it up', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('is counted sent, not also dropped: sent + dropped = pushed', async () => {
    const data = join(dir, 'late-answer');
    const drops: DropEvent[] = [];
    const sent: string[] = [];
    const options = (proxy: { release(): void }): Partial<SinkOptions> => ({
      // The block's request goes on as soon as close has given it up.
      onDrop: (event) => {
        drops.push(event);
        proxy.release();
      },
      onSent: (id) => sent.push(id),
    });
    await withHeldSink(data, options, async ({ sink, process, stream }) => {
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
    });
  }, 60_000);

  it('is reported dropped to the lake once its request fails', async () => {
    const data = join(dir, 'late-failure');
    const sent: string[] = [];
    const options = (proxy: { release(): void }): Partial<SinkOptions> => ({
      onDrop: () => proxy.release(),
      onSent: (id) => sent.push(id),
    });
    await withHeldSink(
      data,
      options,
      async ({ sink, process, stream }) => {
        sink.push(makeBlock(stream, 8, 1).block);
        const stats = await sink.close({ timeoutMs: 100 });
        expect(stats).toMatchObject({ pushed: 1, sent: 0, droppedTotal: 1, dropped: { shutdown: 1 } });
        expect(sent).toEqual([]);
        expect(stats.reportedDrops).toBe(1);
        expect(await inLake(data, process.processId)).toEqual({ blocks: [], drops: 1 });
      },
      'unavailable',
    );
  }, 60_000);

  it('a second close, called while the first is under way, waits for it and returns the same stats', async () => {
    let second: Promise<SinkStats> | undefined;
    let closing: TelemetrySink | undefined;
    const options = (proxy: { release(): void }): Partial<SinkOptions> => ({
      // Called by the first close as it gives the block up: the second one comes in then.
      onDrop: () => {
        second = closing!.close();
        proxy.release();
      },
    });
    await withHeldSink(join(dir, 'second-close'), options, async ({ sink, stream }) => {
      closing = sink;
      sink.push(makeBlock(stream, 8, 1).block);
      const first = await sink.close({ timeoutMs: 100 });
      expect(first).toMatchObject({ pushed: 1, sent: 1, droppedTotal: 0, inFlight: 0 });
      expect(second).toBeDefined();
      expect(await second).toEqual(first);
    });
  }, 60_000);

  it('is counted sent, not also dropped, when the spool could not be opened', async () => {
    const data = join(dir, 'no-spool');
    // A spool directory under a file: it cannot be made.
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const drops: DropEvent[] = [];
    const options = (proxy: { release(): void }): Partial<SinkOptions> => ({
      spool: { dir: join(file, 'spool') },
      onDrop: (event) => {
        drops.push(event);
        proxy.release();
      },
    });
    await withHeldSink(data, options, async ({ sink, process, stream }) => {
      const { block } = makeBlock(stream, 8, 1);
      sink.push(block);
      const stats = await sink.close({ timeoutMs: 100 });
      expect(drops).toEqual([expect.objectContaining({ blockId: block.blockId })]);
      expect(stats).toMatchObject({ pushed: 1, sent: 1, droppedTotal: 0, reportedDrops: 0 });
      expect(await inLake(data, process.processId)).toEqual({ blocks: [block.blockId], drops: 0 });
    });
  }, 60_000);
});

describe('a block in flight at close that the spool cannot take', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('is counted sent, not also dropped (spoolFull), when its request then succeeds', async () => {
    const data = join(dir, 'spool-full');
    const drops: DropEvent[] = [];
    const sent: string[] = [];
    const options = (proxy: { release(): void }): Partial<SinkOptions> => ({
      // A spool that opens but holds no block: close gives the block in flight up as spoolFull.
      spool: { dir: join(dir, 'spool'), maxBytes: 1 },
      onDrop: (event) => {
        drops.push(event);
        proxy.release();
      },
      onSent: (id) => sent.push(id),
    });
    await withHeldSink(data, options, async ({ sink, process, stream }) => {
      const { block } = makeBlock(stream, 8, 1);
      expect(sink.push(block)).toBe(true);
      await sink.close({ timeoutMs: 100 });
      await vi.waitFor(() => expect(sent).toEqual([block.blockId]), { timeout: 30_000, interval: 20 });
      expect(drops).toEqual([expect.objectContaining({ reason: 'spoolFull', blockId: block.blockId })]);
      const stats = sink.stats;
      expect(stats).toMatchObject({ pushed: 1, sent: 1, droppedTotal: 0, reportedDrops: 0 });
      expect(stats.dropped.spoolFull).toBe(0);
      expect(await inLake(data, process.processId)).toEqual({ blocks: [block.blockId], drops: 0 });
    });
  }, 60_000);
});
