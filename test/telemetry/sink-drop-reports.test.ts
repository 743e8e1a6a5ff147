import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { DropReporter, type PendingReport } from '../../src/telemetry/sink/drop-reports.js';
import { TelemetrySink } from '../../src/telemetry/sink/sink.js';
import { encodeBlock, encodeDropReport, nowRfc3339Ns } from '../../src/telemetry/wire/index.js';
import { until } from '../helpers/until.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { freePort } from './http-helpers.js';

const FAST = { initialMs: 10, maxMs: 100 };
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('drop reports during an outage', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('a drop while a retry is pending sends nothing: the drops wait, as counts, for one next report', async () => {
    // The send is a stand-in for the lake: down, then up.
    const attempts: PendingReport[] = [];
    let up = false;
    const reporter = new DropReporter(
      randomUUID(),
      async (report) => {
        attempts.push(report);
        if (!up) throw new Error('ingestion is down');
        return true;
      },
      () => 3_600_000,
    );
    reporter.note('bufferFull');
    expect(await reporter.flush()).toBe(false);
    expect(attempts).toHaveLength(1);
    // An outage's worth of drops, each in a turn of its own, while the retry waits.
    for (let i = 0; i < 500; i++) {
      reporter.note('spoolFull');
      await nextTurn();
    }
    expect(attempts).toHaveLength(1);
    expect(reporter.outstanding).toBe(501);
    up = true;
    expect(await reporter.flush()).toBe(true);
    // The first report again, unchanged (its id makes it count once), then one of all the rest.
    const [first, again, rest] = attempts as [PendingReport, PendingReport, PendingReport];
    expect(attempts).toHaveLength(3);
    expect(again).toBe(first);
    expect([first.total, rest.total]).toEqual([1, 500]);
    expect(reporter.reported).toBe(501);
    expect(reporter.outstanding).toBe(0);
  });

  it('a sink whose server is down makes one report of the drops of the outage, not one per drop', async () => {
    const data = join(dir, 'outage');
    const port = await freePort();
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const size = encodeBlock(makeBlock(stream, 64).block).length;
    const sink = new TelemetrySink({
      target: `http://127.0.0.1:${port}`,
      process,
      maxBufferBytes: size,
      maxAttempts: 1,
      backoff: { initialMs: 200, maxMs: 400 },
    });
    sink.addStream(stream);
    sink.push(makeBlock(stream, 64, 1).block);
    // The buffer is full: the next block is dropped, and its report fails.
    expect(sink.push(makeBlock(stream, 64, 2).block)).toBe(false);
    await until(() => sink.stats.lastError?.startsWith('drop report:') === true, 'the first report failing');
    for (let i = 0; i < 50; i++) {
      expect(sink.push(makeBlock(stream, 64, 3 + i).block)).toBe(false);
      await nextTurn();
    }
    const server = await startIngestionServer({ port, lake: { data } });
    try {
      await until(
        () => sink.stats.sent === 1 && sink.stats.reportedDrops === 51,
        'the block and the drop counts delivered',
      );
      const stats = await sink.close({ timeoutMs: 5000 });
      expect(stats).toMatchObject({ sent: 1, droppedTotal: 51, reportedDrops: 51 });
      const lake = Lake.open({ data });
      try {
        const reports = await lake.drops(process.processId);
        expect(reports.map((r) => r.total)).toEqual([1, 50]);
      } finally {
        await lake.close();
      }
    } finally {
      await server.close();
    }
  });
});

describe('drop reports kept in the spool', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('reach the lake through the next sink, of another process, although no block was spooled', async () => {
    const data = join(dir, 'lake');
    const spoolDir = join(dir, 'spool');
    const port = await freePort();
    // A spooled block an earlier run left unreadable: the sink counts it as a rejected drop.
    mkdirSync(join(spoolDir, 'blocks'), { recursive: true });
    writeFileSync(join(spoolDir, 'blocks', `000000000000001-000000001-${randomUUID()}.cbor`), 'torn');
    const first = makeProcess();
    const sink = new TelemetrySink({
      target: `http://127.0.0.1:${port}`,
      process: first,
      spool: { dir: spoolDir },
      maxAttempts: 1,
      backoff: FAST,
    });
    await until(() => sink.stats.dropped.rejected === 1, 'the unreadable spool file counted');
    const stats = await sink.close({ timeoutMs: 100 });
    expect(stats).toMatchObject({ droppedTotal: 1, reportedDrops: 0, spoolBlocks: 0 });

    const server = await startIngestionServer({ port, lake: { data } });
    try {
      const next = new TelemetrySink({
        target: server.url,
        process: makeProcess(),
        spool: { dir: spoolDir },
      });
      const after = await next.close({ timeoutMs: 30_000 });
      // The count is the first sink's: it reached the lake under its process, not this sink's.
      expect(after).toMatchObject({ droppedTotal: 0, reportedDrops: 0 });
      expect(after.lastError).toBeUndefined();
      const lake = Lake.open({ data });
      try {
        expect((await lake.drops(first.processId)).map((r) => r.counts)).toEqual([{ rejected: 1 }]);
        expect(await lake.process(first.processId)).toBeDefined();
      } finally {
        await lake.close();
      }
      expect(readdirSync(join(spoolDir, 'meta')).filter((n) => n.startsWith('drops-'))).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('a sink deletes the temp files a run that died mid-write left in its spool', async () => {
    const spoolDir = join(dir, 'torn-writes');
    mkdirSync(join(spoolDir, 'blocks'), { recursive: true });
    mkdirSync(join(spoolDir, 'meta'), { recursive: true });
    const torn = [
      join(spoolDir, 'blocks', `000000000000001-000000001-${randomUUID()}.cbor.tmp`),
      join(spoolDir, 'meta', `drops-${randomUUID()}.cbor.tmp`),
    ];
    for (const path of torn) writeFileSync(path, 'half a write');
    const sink = new TelemetrySink({
      target: `http://127.0.0.1:${await freePort()}`,
      process: makeProcess(),
      spool: { dir: spoolDir },
    });
    const stats = await sink.close({ timeoutMs: 100 });
    expect(stats).toMatchObject({ droppedTotal: 0, spoolBlocks: 0 });
    expect(torn.filter((path) => existsSync(path))).toEqual([]);
  });

  it('leave the spool once the lake refuses them for good', async () => {
    const data = join(dir, 'refused');
    const spoolDir = join(dir, 'spool-refused');
    // A report whose process record is nowhere (as an earlier version kept them): it can never
    // be stored, and must not be tried by every sink on this spool forever.
    mkdirSync(join(spoolDir, 'meta'), { recursive: true });
    const reportId = randomUUID();
    const file = join(spoolDir, 'meta', `drops-${reportId}.cbor`);
    writeFileSync(
      file,
      encodeDropReport({ reportId, processId: randomUUID(), time: nowRfc3339Ns(), counts: { shutdown: 3 } }),
    );
    const server = await startIngestionServer({ port: 0, lake: { data } });
    try {
      const sink = new TelemetrySink({
        target: server.url,
        process: makeProcess(),
        spool: { dir: spoolDir },
      });
      const stats = await sink.close({ timeoutMs: 30_000 });
      expect(stats.lastError).toMatch(new RegExp(`drop report ${reportId} \\(3 drops\\) refused for good`));
      expect(existsSync(file)).toBe(false);
    } finally {
      await server.close();
    }
  });
});
