import { randomUUID } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { TelemetrySink } from '../../src/telemetry/sink/sink.js';
import { spooledBlockId } from '../../src/telemetry/sink/spool.js';
import { decodeDropReport, encodeBlock, type ProcessInfo } from '../../src/telemetry/wire/index.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { freePort } from './http-helpers.js';

const FAST = { initialMs: 1, maxMs: 2 };
const BLOCK_BYTES = encodeBlock(makeBlock(makeStream(makeProcess().processId), 64).block).length;

/** Bytes of every file in a spool directory: blocks, records and reports. */
function spoolBytes(dir: string): number {
  let total = 0;
  for (const sub of ['blocks', 'meta']) {
    for (const name of readdirSync(join(dir, sub))) total += statSync(join(dir, sub, name)).size;
  }
  return total;
}

function metaFiles(dir: string, prefix: string): string[] {
  return readdirSync(join(dir, 'meta')).filter((n) => n.startsWith(prefix));
}

/** One run of a program while ingestion is down: a sink, `streams` streams, a block on each. */
async function runDown(url: string, dir: string, maxBytes: number, process = makeProcess(), streams = 3) {
  const sink = new TelemetrySink({
    target: url,
    process,
    maxAttempts: 1,
    backoff: FAST,
    spool: { dir, maxBytes },
  });
  const made = Array.from({ length: streams }, () => makeStream(process.processId));
  for (const stream of made) sink.addStream(stream);
  for (const [i, stream] of made.entries()) sink.push(makeBlock(stream, 64, i + 1).block);
  const stats = await sink.close({ timeoutMs: 50 });
  return { process, streams: made, stats };
}

async function dropsInLake(data: string, processIds: readonly string[]): Promise<number> {
  const lake = Lake.open({ data });
  try {
    let total = 0;
    for (const id of processIds) for (const report of await lake.drops(id)) total += report.total;
    return total;
  } finally {
    await lake.close();
  }
}

describe('the spool within maxBytes, records and drop reports included', () => {
  const { dir, cleanup } = tempDir('dorsal-spool-bounds-');
  afterAll(cleanup);

  it('a program restarting in a loop while ingestion is down fills no disk, and every drop is counted somewhere', async () => {
    const spool = join(dir, 'loop');
    const data = join(dir, 'loop-lake');
    const port = await freePort();
    const maxBytes = 4 * BLOCK_BYTES;
    const runs: ProcessInfo[] = [];
    let dropped = 0;
    let unreported = 0;
    for (let run = 0; run < 30; run++) {
      const { process, stats } = await runDown(`http://127.0.0.1:${port}`, spool, maxBytes);
      runs.push(process);
      dropped += stats.droppedTotal;
      unreported += stats.unreportedDrops;
      // Before, every run added its process record, its stream records and a drop report to
      // meta/, whatever maxBytes said: 30 runs, some 150 files.
      expect(spoolBytes(spool)).toBeLessThanOrEqual(maxBytes);
      expect(stats.spoolBytes).toBe(spoolBytes(spool));
      if (stats.unreportedDrops > 0)
        expect(stats.lastError).toMatch(/dropped blocks were not reported to the lake/);
    }
    expect(dropped).toBeGreaterThan(0);
    // The spool filled up: later runs could not keep their count, and said so.
    expect(unreported).toBeGreaterThan(0);

    // Ingestion back: what was kept reaches the lake, and each drop is in the lake or was said
    // unreported, once.
    const server = await startIngestionServer({ port, lake: { data } });
    try {
      const drain = new TelemetrySink({ target: server.url, process: makeProcess(), spool: { dir: spool } });
      expect(await drain.flush(30_000)).toBe(true);
      expect(await drain.close({ timeoutMs: 30_000 })).toMatchObject({ droppedTotal: 0, spoolBlocks: 0 });
    } finally {
      await server.close();
    }
    expect(metaFiles(spool, 'drops-')).toEqual([]);
    expect(
      (await dropsInLake(
        data,
        runs.map((p) => p.processId),
      )) + unreported,
    ).toBe(dropped);
  });

  it('keeps the count of the blocks a full spool dropped, in the room kept for reports, and the lake gets it', async () => {
    const spool = join(dir, 'full');
    const data = join(dir, 'full-lake');
    const port = await freePort();
    // Room for the reports: an eighth of it, past what blocks may fill.
    const { process, stats } = await runDown(
      `http://127.0.0.1:${port}`,
      spool,
      8 * BLOCK_BYTES,
      makeProcess(),
      20,
    );
    expect(stats.dropped.spoolFull).toBeGreaterThan(0);
    // Blocks filled what they may: the report of their drops still went in (it was counted in
    // the process alone, once the blocks had filled the spool to its last byte).
    expect(stats.unreportedDrops).toBe(0);
    // One it tried to send (kept as it is), one of the drops since.
    expect(metaFiles(spool, 'drops-').length).toBeGreaterThan(0);
    expect(spoolBytes(spool)).toBeLessThanOrEqual(8 * BLOCK_BYTES);
    const server = await startIngestionServer({ port, lake: { data } });
    try {
      const later = new TelemetrySink({ target: server.url, process: makeProcess(), spool: { dir: spool } });
      expect(await later.flush(30_000)).toBe(true);
      await later.close();
      expect(await dropsInLake(data, [process.processId])).toBe(stats.droppedTotal);
    } finally {
      await server.close();
    }
  });

  it('counts the blocks dropped while it closes, or after, as unreported: in the lake or in that count, every drop', async () => {
    const spool = join(dir, 'closing');
    const data = join(dir, 'closing-lake');
    const port = await freePort();
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const sink = new TelemetrySink({
      target: `http://127.0.0.1:${port}`,
      process,
      maxAttempts: 1,
      backoff: FAST,
      spool: { dir: spool, maxBytes: 1 << 20 },
    });
    sink.addStream(stream);
    // A producer that goes on pushing while the sink closes (a close on SIGTERM), and a while after.
    let producing = true;
    let seed = 1;
    const producer = (async () => {
      while (producing) {
        sink.push(makeBlock(stream, 4, seed++).block);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await sink.close({ timeoutMs: 200 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    producing = false;
    await producer;
    const after = sink.stats;
    expect(after.dropped.shutdown).toBeGreaterThan(0);
    expect(after.unreportedDrops).toBeGreaterThan(0);
    const server = await startIngestionServer({ port, lake: { data } });
    try {
      const later = new TelemetrySink({ target: server.url, process: makeProcess(), spool: { dir: spool } });
      expect(await later.flush(30_000)).toBe(true);
      await later.close();
      // Those pushed after close made its last reports were in none: 1,119 of 3,363 in a review's run.
      expect((await dropsInLake(data, [process.processId])) + after.unreportedDrops).toBe(after.droppedTotal);
    } finally {
      await server.close();
    }
  });

  it('counts as unreported the drops of a report the lake refuses for good (it was deleted, said only in lastError)', async () => {
    const spool = join(dir, 'refused');
    const data = join(dir, 'refused-lake');
    const port = await freePort();
    const { process } = await runDown(`http://127.0.0.1:${port}`, spool, 1 << 20, makeProcess(), 1);
    // The process record of the spooled block gone (a hand's doing): the lake takes neither the
    // block nor, then, the report of its drop.
    for (const name of metaFiles(spool, `process-${process.processId}`)) rmSync(join(spool, 'meta', name));
    const server = await startIngestionServer({ port, lake: { data } });
    try {
      const later = new TelemetrySink({ target: server.url, process: makeProcess(), spool: { dir: spool } });
      await later.flush(30_000);
      const stats = await later.close({ timeoutMs: 5000 });
      expect(stats.dropped.rejected).toBe(1);
      expect(stats.unreportedDrops).toBe(1);
      expect(await dropsInLake(data, [process.processId])).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('tells the block id of a spooled file by its name, as this version and the one before named them', () => {
    const [p, s, b] = [randomUUID(), randomUUID(), randomUUID()];
    expect(spooledBlockId(`000000000000001-000000001-${p}-${s}-${b}.cbor`)).toBe(b);
    expect(spooledBlockId(`000000000000001-000000001-${b}.cbor`)).toBe(b);
    expect(spooledBlockId('torn.cbor')).toBe('torn');
  });

  it("writes a block's process and stream records only with the block: a run none of whose blocks fits leaves none", async () => {
    const spool = join(dir, 'no-room');
    const url = `http://127.0.0.1:${await freePort()}`;
    const maxBytes = 2 * BLOCK_BYTES;
    const first = await runDown(url, spool, maxBytes);
    expect(first.stats.spoolBlocks).toBeGreaterThan(0);
    const second = await runDown(url, spool, maxBytes);
    expect(second.stats).toMatchObject({ spooled: 0, droppedTotal: 3 });
    // Only the streams of the blocks that were spooled have their record there.
    const streams = metaFiles(spool, 'stream-');
    expect(streams.length).toBe(first.stats.spoolBlocks);
    for (const stream of second.streams) expect(streams).not.toContain(`stream-${stream.streamId}.cbor`);
    // Its process record is there only for its drop report (kept, or counted unreported).
    const kept = metaFiles(spool, 'drops-').some(
      (name) =>
        decodeDropReport(readFileSync(join(spool, 'meta', name))).processId === second.process.processId,
    );
    expect(metaFiles(spool, 'process-').includes(`process-${second.process.processId}.cbor`)).toBe(kept);
    expect(kept ? 0 : 3).toBe(second.stats.unreportedDrops);
  });

  it('deletes at open the records no spooled block and no kept report needs, while other blocks wait', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const [kept, gone] = [join(dir, 'sweep-kept'), join(dir, 'sweep-gone')];
    const first = await runDown(url, kept, 16 * BLOCK_BYTES);
    expect(first.stats.spoolBlocks).toBe(3);
    // The records of a run whose blocks were sent already (as a sink that sent them leaves them).
    const other = await runDown(url, gone, 16 * BLOCK_BYTES);
    expect(other.stats.spoolBlocks).toBe(3);
    const strays = [...metaFiles(gone, 'process-'), ...metaFiles(gone, 'stream-')];
    expect(strays.length).toBe(4);
    for (const name of strays) copyFileSync(join(gone, 'meta', name), join(kept, 'meta', name));

    const next = await runDown(url, kept, 16 * BLOCK_BYTES, makeProcess(), 0);
    expect(next.stats.spoolBlocks).toBe(3);
    const records = [...metaFiles(kept, 'process-'), ...metaFiles(kept, 'stream-')].sort();
    expect(records).toEqual(
      [
        `process-${first.process.processId}.cbor`,
        ...first.streams.map((s) => `stream-${s.streamId}.cbor`),
      ].sort(),
    );
  });

  it('keeps the drop counts of one process in one report across runs, and the lake counts each drop once', async () => {
    const spool = join(dir, 'merged');
    const data = join(dir, 'merged-lake');
    const port = await freePort();
    // One process through every run (a program that keeps its process id), a spool with room for
    // one block with its records, and the reports: the first run spools one block and drops two,
    // each later one drops three.
    const process = makeProcess();
    const maxBytes = BLOCK_BYTES + 1500;
    let dropped = 0;
    for (let run = 0; run < 10; run++) {
      const { stats } = await runDown(`http://127.0.0.1:${port}`, spool, maxBytes, process);
      dropped += stats.droppedTotal;
      expect(stats.unreportedDrops).toBe(0);
      // Before, one file per run. Now the one this process sent (it may be in the lake: kept as
      // it is) and one of the counts no sink has sent yet, added up.
      expect(metaFiles(spool, 'drops-').length).toBeLessThanOrEqual(2);
    }
    expect(dropped).toBe(29);
    const server = await startIngestionServer({ port, lake: { data } });
    try {
      const drain = new TelemetrySink({ target: server.url, process: makeProcess(), spool: { dir: spool } });
      expect(await drain.flush(30_000)).toBe(true);
      expect(await drain.close({ timeoutMs: 30_000 })).toMatchObject({ droppedTotal: 0, unreportedDrops: 0 });
    } finally {
      await server.close();
    }
    expect(metaFiles(spool, 'drops-')).toEqual([]);
    expect(await dropsInLake(data, [process.processId])).toBe(dropped);
  });
});
