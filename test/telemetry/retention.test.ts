import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { LakeNotFoundError, UnknownProcessError } from '../../src/telemetry/errors.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { applyRetention } from '../../src/telemetry/lake/retention.js';
import { type BlockRow, uniqueBlobPath } from '../../src/telemetry/lake/types.js';
import { type Block, nowRfc3339Ns, type StreamInfo } from '../../src/telemetry/wire/index.js';
import { until } from '../helpers/until.js';
import { runDorsal, spawnDorsal, startDorsalServe } from './cli-helpers.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { type Age, postgresAge, sqliteAge } from './lake-age.js';
import { scaleOutLocation, startS3, uniqueSchema } from './services.js';

/** Blocks of a stream, stored. */
async function store(service: IngestionService, stream: StreamInfo, n: number): Promise<Block[]> {
  const blocks = Array.from({ length: n }, (_, i) => makeBlock(stream, 8, i + 1).block);
  for (const block of blocks) await service.ingestBlock(block);
  return blocks;
}

/** A lake at `data` with one process, one stream and `n` blocks of it, stored and closed. */
async function storedLake(data: string, n: number) {
  const service = new IngestionService({ data });
  const proc = makeProcess();
  const stream = makeStream(proc.processId);
  await service.ingestProcess(proc);
  await service.ingestStream(stream);
  const blocks = await store(service, stream, n);
  await service.close();
  return { proc, stream, blocks };
}

/**
 * A lake with an old process (all old), a mixed one (a stream with old and new blocks, an old
 * empty stream, an old stream of old blocks) and a new one, and an old and a new drop report.
 */
async function seed(service: IngestionService, age: Age) {
  const [oldProc, mixed, fresh] = [makeProcess(), makeProcess(), makeProcess()];
  const oldStream = makeStream(oldProc.processId);
  const [live, empty, spent] = [
    makeStream(mixed.processId),
    makeStream(mixed.processId),
    makeStream(mixed.processId),
  ];
  const freshStream = makeStream(fresh.processId);
  for (const p of [oldProc, mixed, fresh]) await service.ingestProcess(p);
  for (const s of [oldStream, live, empty, spent, freshStream]) await service.ingestStream(s);
  const old = [
    ...(await store(service, oldStream, 6)),
    ...(await store(service, live, 4)),
    ...(await store(service, spent, 2)),
  ];
  const kept = [...(await store(service, freshStream, 2))];
  for (let i = 0; i < 3; i++) {
    const block = { ...makeBlock(live, 8, 100 + i).block };
    await service.ingestBlock(block);
    kept.push(block);
  }
  const reports = [oldProc, fresh].map((p) => ({
    reportId: randomUUID(),
    processId: p.processId,
    time: nowRfc3339Ns(),
    counts: { spoolFull: 2 },
  }));
  for (const report of reports) await service.lake.metadata.insertDropReport(report);
  await age('processes', [oldProc.processId, mixed.processId]);
  await age('streams', [oldStream.streamId, empty.streamId, spent.streamId, live.streamId]);
  await age(
    'blocks',
    old.map((b) => b.blockId),
  );
  await age('sink_drops', [reports[0]?.reportId as string]);
  const oldBlobs: string[] = [];
  for (const block of old) oldBlobs.push(((await service.lake.block(block.blockId)) as BlockRow).blobPath);
  return { oldProc, mixed, fresh, oldStream, live, empty, spent, old, oldBlobs, kept };
}

type Seeded = Awaited<ReturnType<typeof seed>>;

/** What must be left after a pass with a cutoff between the old and the new rows. */
async function expectOnlyNewLeft(lake: Lake, s: Seeded): Promise<void> {
  expect((await lake.processes()).map((p) => p.processId).sort()).toEqual(
    [s.mixed.processId, s.fresh.processId].sort(),
  );
  expect(await lake.stream(s.live.streamId)).toBeDefined();
  for (const gone of [s.oldStream, s.empty, s.spent])
    expect(await lake.stream(gone.streamId)).toBeUndefined();
  expect((await lake.blocks()).map((b) => b.blockId).sort()).toEqual(s.kept.map((b) => b.blockId).sort());
  for (const block of s.kept) expect((await lake.readBlock(block.blockId)).block.blockId).toBe(block.blockId);
  expect(s.oldBlobs).toHaveLength(s.old.length);
  for (const path of s.oldBlobs) await expect(lake.blobs.get(path)).rejects.toThrow(LakeNotFoundError);
  expect((await lake.drops()).map((d) => d.processId)).toEqual([s.fresh.processId]);
  expect(await lake.metadata.listGarbage(10)).toEqual([]);
}

describe('retention', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('`dorsal retention --days N` deletes old blocks, blobs, streams, processes and drop reports (SQLite + directory)', async () => {
    const data = join(dir, 'sqlite');
    const service = new IngestionService({ data });
    const seeded = await seed(service, sqliteAge(data));
    await service.close();
    const run = await runDorsal([
      'retention',
      '--days',
      '7',
      '--data',
      data,
      '--batch',
      '5',
      '--pause-ms',
      '0',
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^retention: deleted 12 blocks, 12 blobs, 3 streams, 1 process, 1 drop report, 0 partitions inserted before \S+Z\n$/,
    );
    const lake = Lake.open({ data });
    try {
      await expectOnlyNewLeft(lake, seeded);
      // The directories left empty are gone too.
      expect(existsSync(join(data, 'blobs', seeded.oldProc.processId))).toBe(false);
      expect(existsSync(join(data, 'blobs', seeded.mixed.processId, seeded.spent.streamId))).toBe(false);
      expect(existsSync(join(data, 'blobs', seeded.mixed.processId, seeded.live.streamId))).toBe(true);
      // A second pass finds nothing to do, and ingestion into a removed directory makes it again.
      expect(await applyRetention(lake, { days: 7, pauseMs: 0 })).toMatchObject({ blocks: 0, blobs: 0 });
    } finally {
      await lake.close();
    }
    const again = new IngestionService({ data });
    await again.ingestProcess(seeded.oldProc);
    await again.ingestStream(seeded.oldStream);
    const { block } = makeBlock(seeded.oldStream, 8, 77);
    expect(await again.ingestBlock(block)).toEqual({ inserted: true });
    await again.close();
  }, 60_000);

  it('a drop report of a process retention deleted since ingestion knew it: refused as an unknown process, not kept for a process that is gone', async () => {
    const data = join(dir, 'gone-process');
    const { proc } = await storedLake(data, 1);
    const service = new IngestionService({ data });
    try {
      // Known to this service (as a sink's earlier requests made it), then deleted with its run.
      await service.ingestProcess(proc);
      const age = sqliteAge(data);
      await age('processes', [proc.processId]);
      const lake = Lake.open({ data });
      try {
        await applyRetention(lake, { days: 0, pauseMs: 0 });
        expect(await lake.metadata.findProcess(proc.processId)).toBeUndefined();
      } finally {
        await lake.close();
      }
      const report = {
        reportId: randomUUID(),
        processId: proc.processId,
        time: nowRfc3339Ns(),
        counts: { shutdown: 2 },
      };
      await expect(service.ingestDrops(report)).rejects.toThrow(UnknownProcessError);
      expect(await service.lake.metadata.listDropReports(proc.processId)).toEqual([]);
      // Sent again after its process (as a sink does on that answer): kept.
      await service.ingestProcess(proc);
      expect(await service.ingestDrops(report)).toEqual({ inserted: true });
    } finally {
      await service.close();
    }
  }, 60_000);

  it('`dorsal retention --days N` keeps everything for a period longer than the epoch, and refuses a negative one', async () => {
    const data = join(dir, 'epoch');
    const {
      proc,
      stream,
      blocks: [block],
    } = await storedLake(data, 1);
    const age = sqliteAge(data);
    await age('processes', [proc.processId]);
    await age('streams', [stream.streamId]);
    await age('blocks', [block?.blockId as string]);
    const long = await runDorsal(['retention', '--days', '1e9', '--data', data, '--pause-ms', '0']);
    expect(long).toMatchObject({ code: 0, stderr: '' });
    expect(long.stdout).toBe(
      'retention: deleted 0 blocks, 0 blobs, 0 streams, 0 processes, 0 drop reports, 0 partitions inserted before 1970-01-01T00:00:00.000000000Z\n',
    );
    const lake = Lake.open({ data });
    try {
      expect((await lake.readBlock(block?.blockId as string)).block.streamId).toBe(stream.streamId);
    } finally {
      await lake.close();
    }
    // The lake from DORSAL_DATA, as the commands that read and run take it.
    const fromEnv = await runDorsal(['retention', '--days', '1e9', '--pause-ms', '0'], { DORSAL_DATA: data });
    expect(fromEnv).toMatchObject({ code: 0, stderr: '' });
    expect(fromEnv.stdout).toMatch(/^retention: deleted 0 blocks, /);
    const negative = await runDorsal(['retention', '--days', '-1', '--data', data]);
    expect(negative.code).toBe(1);
    expect(negative.stderr.trim().split('\n')).toEqual([
      "error: option '--days <n>' argument '-1' is invalid. expected a number of at least 0",
    ]);
  }, 60_000);

  it("`dorsal retention` refuses a blob store that holds none of the lake's blobs, and deletes nothing", async () => {
    const data = join(dir, 'wrong-blobs');
    const {
      stream,
      blocks: [block],
    } = await storedLake(data, 1);
    // The lake's database with another directory's blobs (a --blobs mistyped, or --db without
    // --data): its rows would go, and its blobs stay for good, named by nothing.
    const elsewhere = join(dir, 'elsewhere');
    const run = await runDorsal([
      'retention',
      '--days',
      '0',
      '--db',
      join(data, 'lake.sqlite'),
      '--blobs',
      elsewhere,
      '--pause-ms',
      '0',
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /holds no payload of the lake's blocks .*: is it this lake's .*Nothing was deleted/,
    );
    const lake = Lake.open({ data });
    try {
      expect((await lake.readBlock(block?.blockId as string)).block.streamId).toBe(stream.streamId);
    } finally {
      await lake.close();
    }
  }, 60_000);

  it("`dorsal retention` refuses another lake's blob store too", async () => {
    const lakes = ['lake-a', 'lake-b'].map((name) => join(dir, name));
    for (const data of lakes) await storedLake(data, 2);
    // Lake A's rows with lake B's blobs: B holds payloads, none of A's.
    const run = await runDorsal([
      'retention',
      '--days',
      '0',
      '--db',
      join(lakes[0]!, 'lake.sqlite'),
      '--blobs',
      lakes[1]!,
      '--pause-ms',
      '0',
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/holds no payload of the lake's blocks .*Nothing was deleted/);
    const lake = Lake.open({ data: lakes[0]! });
    try {
      expect(await lake.metadata.listBlocks({})).toHaveLength(2);
    } finally {
      await lake.close();
    }
  }, 60_000);

  it("deletes what a deleted stream's directory still holds: blobs no row names (a crash before their rows)", async () => {
    const data = join(dir, 'orphans');
    const { proc, stream } = await storedLake(data, 2);
    const lake = Lake.open({ data });
    try {
      // Written as ingestion writes a payload, its row never inserted: one two hours ago, one
      // just now (its row may be on its way: left alone).
      const [orphan, fresh] = [0, 1].map(() => uniqueBlobPath(proc.processId, stream.streamId, randomUUID()));
      for (const path of [orphan!, fresh!])
        expect(await lake.blobs.putIfAbsent(path, new Uint8Array([1, 2, 3]))).toBe('created');
      const twoHoursAgo = new Date(Date.now() - 7_200_000);
      utimesSync(join(data, orphan!), twoHoursAgo, twoHoursAgo);
      expect(await applyRetention(lake, { days: 0, pauseMs: 0 })).toMatchObject({
        blocks: 2,
        blobs: 3,
        streams: 1,
        processes: 1,
      });
      await expect(lake.blobs.get(orphan!)).rejects.toThrow(LakeNotFoundError);
      expect((await lake.blobs.get(fresh!)).length).toBe(3);
    } finally {
      await lake.close();
    }
  });

  it('deletes the temporary files of replaces a crash cut short, written over an hour before', async () => {
    const data = join(dir, 'temporary');
    await storedLake(data, 1);
    const lake = Lake.open({ data });
    try {
      const tmp = join(data, 'tmp');
      mkdirSync(tmp, { recursive: true });
      const [old, fresh, other] = [`${randomUUID()}.tmp`, `${randomUUID()}.tmp`, 'notes.txt'];
      for (const name of [old, fresh, other]) writeFileSync(join(tmp, name), 'half a partition');
      const twoHoursAgo = new Date(Date.now() - 7_200_000);
      for (const name of [old, other]) utimesSync(join(tmp, name), twoHoursAgo, twoHoursAgo);
      // Kept: a replace under way writes there now (whatever orphanAgeMs says); a file of another
      // name is no lake's.
      expect(await applyRetention(lake, { days: 1, pauseMs: 0, orphanAgeMs: 0 })).toMatchObject({
        blocks: 0,
        blobs: 1,
      });
      expect(readdirSync(tmp).sort()).toEqual([fresh, other].sort());
    } finally {
      await lake.close();
    }
  });

  it("sweeps a stream's directory at the next pass when the one that deleted the stream stopped before its sweep", async () => {
    const data = join(dir, 'orphans-stopped');
    const { proc, stream } = await storedLake(data, 2);
    const lake = Lake.open({ data });
    try {
      const orphan = uniqueBlobPath(proc.processId, stream.streamId, randomUUID());
      expect(await lake.blobs.putIfAbsent(orphan, new Uint8Array([1, 2, 3]))).toBe('created');
      const twoHoursAgo = new Date(Date.now() - 7_200_000);
      utimesSync(join(data, orphan), twoHoursAgo, twoHoursAgo);
      // A pass's steps up to the stream's deletion, then a crash: its blocks and their blobs
      // gone, the stream's row deleted, nothing swept.
      const future = '2999-01-01T00:00:00.000000000Z';
      const paths = await lake.metadata.deleteBlocksBefore(future, 100);
      await lake.blobs.delete(paths);
      await lake.metadata.forgetGarbage(paths);
      expect(await lake.metadata.deleteEmptyStreamsBefore(future, 100, '')).toMatchObject({ deleted: 1 });
      expect((await lake.blobs.get(orphan)).length).toBe(3);
      // The next pass finds no stream to delete, and sweeps the directory all the same.
      expect(await applyRetention(lake, { days: 0, pauseMs: 0 })).toMatchObject({
        blocks: 0,
        blobs: 1,
        streams: 0,
        processes: 1,
      });
      await expect(lake.blobs.get(orphan)).rejects.toThrow(LakeNotFoundError);
      expect(await lake.metadata.listStreamSweeps(10)).toEqual([]);
    } finally {
      await lake.close();
    }
  });

  it('runs on a lake one of whose streams lost every payload (the oldest ones: an expiry rule)', async () => {
    const data = join(dir, 'lost-stream');
    const service = new IngestionService({ data });
    const proc = makeProcess();
    const streams = [makeStream(proc.processId), makeStream(proc.processId)];
    await service.ingestProcess(proc);
    for (const stream of streams) await service.ingestStream(stream);
    await store(service, streams[0]!, 70);
    // The second stream's blocks begin after all of the first's.
    for (let i = 0; i < 3; i++) await service.ingestBlock(makeBlock(streams[1]!, 8, 200 + i).block);
    await service.close();
    // The first stream's blobs, the oldest, all gone.
    rmSync(join(data, 'blobs', proc.processId, streams[0]!.streamId), { recursive: true });
    const lake = Lake.open({ data });
    try {
      expect(await applyRetention(lake, { days: 0, pauseMs: 0 })).toMatchObject({ blocks: 73 });
    } finally {
      await lake.close();
    }
  }, 60_000);

  it('runs on a lake that lost some payloads, its oldest included', async () => {
    const data = join(dir, 'lost-oldest');
    await storedLake(data, 6);
    const lake = Lake.open({ data });
    try {
      // The blocks listed first (the earliest) lost their payloads: freed by hand, a disk incident.
      for (const row of (await lake.metadata.listBlocks({})).slice(0, 4)) rmSync(join(data, row.blobPath));
      expect(await applyRetention(lake, { days: 0, pauseMs: 0 })).toMatchObject({ blocks: 6, blobs: 6 });
      expect(await lake.metadata.listBlocks({})).toEqual([]);
    } finally {
      await lake.close();
    }
  });

  it('goes on past a blob the store will not delete (a directory in the way): kept for the next pass, said, and `dorsal retention` exits 1', async () => {
    const data = join(dir, 'in-the-way');
    const { proc } = await storedLake(data, 6);
    const other = await storedLake(data, 2);
    let stuck: string;
    const lake = Lake.open({ data });
    try {
      // The first block's payload replaced by a directory: unlinking it fails (EISDIR) while the
      // store answers, every pass.
      stuck = (await lake.metadata.listBlocks({ processId: proc.processId }))[0]!.blobPath;
      rmSync(join(data, stuck));
      mkdirSync(join(data, stuck));
      writeFileSync(join(data, stuck, 'inside'), 'x');
      const report = await applyRetention(lake, { days: 0, pauseMs: 0 });
      // Everything else went: both processes' rows and the other blobs.
      expect(report).toMatchObject({ blocks: 8, blobs: 7, streams: 2, processes: 2, blobsKept: 1 });
      expect(report.keptBecause).toMatch(/EISDIR/);
      expect(await lake.metadata.listBlocks({})).toEqual([]);
      expect(await lake.metadata.listGarbage(10)).toEqual([stuck]);
      expect(existsSync(join(data, 'blobs', other.proc.processId))).toBe(false);
      // The next pass tries it again (and says so again), and stops at nothing.
      expect(await applyRetention(lake, { days: 0, pauseMs: 0 })).toMatchObject({ blobs: 0, blobsKept: 1 });
    } finally {
      await lake.close();
    }
    const run = await runDorsal(['retention', '--days', '0', '--data', data, '--pause-ms', '0']);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toMatch(
      /^retention: deleted 0 blocks, 0 blobs, .*; kept 1 blob the blob store would not delete, for the next pass to try again: .*EISDIR/,
    );
    // Out of the way, it goes at the next pass.
    rmSync(join(data, stuck), { recursive: true });
    const again = Lake.open({ data });
    try {
      expect(await applyRetention(again, { days: 0, pauseMs: 0 })).toMatchObject({ blobs: 1, blobsKept: 0 });
      expect(await again.metadata.listGarbage(10)).toEqual([]);
    } finally {
      await again.close();
    }
  }, 60_000);

  it('deletes the same from PostgreSQL + S3', async () => {
    const { url, drop } = uniqueSchema();
    const s3 = await startS3();
    const lake = Lake.open(scaleOutLocation(url, s3.endpoint, `retention-${randomUUID()}`));
    const service = new IngestionService(lake);
    try {
      const seeded = await seed(service, postgresAge(url));
      // A payload whose row never went in, in an old stream's place in the bucket.
      const orphan = uniqueBlobPath(seeded.oldStream.processId, seeded.oldStream.streamId, randomUUID());
      expect(await lake.blobs.putIfAbsent(orphan, new Uint8Array([1, 2, 3]))).toBe('created');
      // The stand-in stamps an object's time itself: any age will do here.
      const report = await applyRetention(lake, { days: 7, batchSize: 5, pauseMs: 0, orphanAgeMs: 0 });
      expect(report).toMatchObject({ blocks: 12, blobs: 13, streams: 3, processes: 1, dropReports: 1 });
      await expect(lake.blobs.get(orphan)).rejects.toThrow(LakeNotFoundError);
      await expectOnlyNewLeft(lake, seeded);
    } finally {
      await service.close();
      await s3.stop();
      await drop();
    }
  }, 60_000);

  it('leaves no row without its blob when killed mid-way, and the next pass finishes', async () => {
    const data = join(dir, 'killed');
    const service = new IngestionService({ data, directory: { fsync: false } });
    const proc = makeProcess();
    const stream = makeStream(proc.processId);
    await service.ingestProcess(proc);
    await service.ingestStream(stream);
    // Enough batches that the watch below catches one in the middle even when the machine is
    // busy: 2,000 blocks, 20 batches of 100 (stored 100 at a time, a transaction each).
    const blocks = Array.from({ length: 2000 }, (_, i) => makeBlock(stream, 8, i + 1).block);
    for (let at = 0; at < blocks.length; at += 100) {
      await Promise.all(blocks.slice(at, at + 100).map((block) => service.ingestBlock(block)));
    }
    await service.close();
    await sqliteAge(data)(
      'blocks',
      blocks.map((b) => b.blockId),
    );
    // Each run is killed as soon as a batch's rows are deleted and its blob paths recorded: while
    // it deletes the blobs (a few ms for 100 files).
    const watch = new Database(join(data, 'lake.sqlite'), { readonly: true });
    const garbage = watch.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM blob_garbage');
    let garbageSeen = 0;
    try {
      for (let kill = 0; kill < 3; kill++) {
        const child = spawnDorsal([
          'retention',
          '--days',
          '1',
          '--data',
          data,
          '--batch',
          '100',
          '--pause-ms',
          '0',
        ]);
        while (child.exitCode === null && child.signalCode === null) {
          if ((garbage.get()?.n ?? 0) > 0) child.kill('SIGKILL');
          await new Promise((resolve) => setImmediate(resolve));
        }
        expect(child.signalCode).toBe('SIGKILL');
        const lake = Lake.open({ data });
        try {
          const rows = await lake.blocks({ streamId: stream.streamId });
          expect(rows.length).toBeGreaterThan(0);
          for (const row of rows) expect((await lake.readBlock(row)).payload.objects.length).toBe(8 * 32);
          garbageSeen += (await lake.metadata.listGarbage(1000)).length;
        } finally {
          await lake.close();
        }
      }
    } finally {
      watch.close();
    }
    // At least one kill landed between a batch's rows and its blobs.
    expect(garbageSeen).toBeGreaterThan(0);
    const lake = Lake.open({ data });
    try {
      const report = await applyRetention(lake, { days: 1, pauseMs: 0 });
      expect(await lake.blocks()).toEqual([]);
      expect(report.blobs).toBeGreaterThanOrEqual(report.blocks);
      expect(await lake.metadata.listGarbage(10)).toEqual([]);
      // Every blob is gone with its row (and its emptied directories).
      expect(existsSync(join(data, 'blobs', proc.processId))).toBe(false);
      expect(readdirSync(join(data, 'blobs'))).toEqual([]);
    } finally {
      await lake.close();
    }
  }, 90_000);

  it('`dorsal serve --retention-days N` runs a pass at start', async () => {
    const data = join(dir, 'served');
    const service = new IngestionService({ data });
    const seeded = await seed(service, sqliteAge(data));
    await service.close();
    const served = await startDorsalServe(['--port', '0', '--data', data, '--retention-days', '7']);
    let stderr = '';
    served.child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    try {
      await until(() => stderr.includes('dorsal retention: deleted'), 'the retention pass', 30_000);
      expect(stderr).toContain('dorsal retention: deleted 12 blocks, 12 blobs, 3 streams, 1 process');
      const lake = Lake.open({ data });
      try {
        await expectOnlyNewLeft(lake, seeded);
      } finally {
        await lake.close();
      }
    } finally {
      expect(await served.stop()).toBe(0);
    }
  }, 60_000);
});
