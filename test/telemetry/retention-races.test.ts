import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { UnknownStreamError } from '../../src/telemetry/errors.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { applyRetention } from '../../src/telemetry/lake/retention.js';
import type { MetadataStore } from '../../src/telemetry/lake/types.js';
import { streamBlobDirectory, uniqueBlobPath } from '../../src/telemetry/lake/types.js';
import { TelemetrySink } from '../../src/telemetry/sink/sink.js';
import { type Block, nowRfc3339Ns } from '../../src/telemetry/wire/index.js';
import { until } from '../helpers/until.js';
import { runDorsal } from './cli-helpers.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { type Age, postgresAge, sqliteAge } from './lake-age.js';
import { POSTGRES_URL, scaleOutLocation, startS3, uniqueSchema } from './services.js';

/** A lake under test, how to age its rows, and its cleanup. */
interface Made {
  readonly lake: Lake;
  readonly age: Age;
  readonly cleanup: () => Promise<void>;
}

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const sqliteLake = async (name: string): Promise<Made> => {
  const data = join(dir, name);
  return { lake: Lake.open({ data }), age: sqliteAge(data), cleanup: async () => {} };
};

const scaleOutLake = async (name: string): Promise<Made> => {
  const schema = uniqueSchema();
  const s3 = await startS3();
  return {
    lake: Lake.open(scaleOutLocation(schema.url, s3.endpoint, name)),
    age: postgresAge(schema.url),
    cleanup: async () => {
      await s3.stop();
      await schema.drop();
    },
  };
};

/** Reads every block back, payload and all. */
async function expectReadable(lake: Lake, blocks: readonly Block[]): Promise<void> {
  for (const block of blocks) {
    const read = await lake.readBlock(block.blockId);
    expect(read.payload.objects.length).toBe(block.objectCount * 32);
  }
}

describe.each([
  ['SQLite + directory', sqliteLake],
  ['PostgreSQL + S3', scaleOutLake],
])('retention racing a re-send (%s)', (_name, make) => {
  it('a block sent again while retention deletes its former row is stored with a blob of its own', async () => {
    const { lake, age, cleanup: done } = await make(`resend-${randomBytes(4).toString('hex')}`);
    const service = new IngestionService(lake);
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await service.ingestProcess(process);
      await service.ingestStream(stream);
      const blocks = Array.from({ length: 6 }, (_, i) => makeBlock(stream, 4, i + 1).block);
      for (const block of blocks) await service.ingestBlock(block);
      await age(
        'blocks',
        blocks.map((b) => b.blockId),
      );
      // The sink re-sends (it never got the first answers) exactly while the batch's rows are
      // deleted and its blobs not yet: from inside the blob deletion, before it deletes.
      const deleteBlobs = lake.blobs.delete.bind(lake.blobs);
      const answers: boolean[] = [];
      lake.blobs.delete = async (paths) => {
        if (answers.length === 0) {
          for (const block of blocks) answers.push((await service.ingestBlock(block)).inserted);
        }
        return deleteBlobs(paths);
      };
      const report = await applyRetention(lake, { days: 1, batchSize: 64, pauseMs: 0 });
      lake.blobs.delete = deleteBlobs;
      expect(report).toMatchObject({ blocks: 6, blobs: 6 });
      // The rows were gone: each re-send stored its block again, and each row has its blob.
      expect(answers).toEqual([true, true, true, true, true, true]);
      expect(await lake.blocks({ streamId: stream.streamId })).toHaveLength(6);
      await expectReadable(lake, blocks);
      expect(await lake.metadata.listGarbage(10)).toEqual([]);
    } finally {
      await service.close();
      await done();
    }
  });

  it('a block sent again after a pass was killed between its rows and its blobs keeps its blob', async () => {
    const { lake, age, cleanup: done } = await make(`killed-${randomBytes(4).toString('hex')}`);
    const service = new IngestionService(lake);
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await service.ingestProcess(process);
      await service.ingestStream(stream);
      const blocks = Array.from({ length: 3 }, (_, i) => makeBlock(stream, 4, i + 1).block);
      for (const block of blocks) await service.ingestBlock(block);
      await age(
        'blocks',
        blocks.map((b) => b.blockId),
      );
      // The first half of a batch, as a pass killed right after its transaction leaves it.
      expect(await lake.metadata.deleteBlocksBefore('2001-01-01T00:00:00.000000000Z', 10)).toHaveLength(3);
      const [revived] = blocks as [Block];
      expect(await service.ingestBlock(revived)).toEqual({ inserted: true });
      const report = await applyRetention(lake, { days: 1, pauseMs: 0 });
      // Every garbage blob is deleted, and the block stored again is whole.
      expect(report).toMatchObject({ blocks: 0, blobs: 3 });
      await expectReadable(lake, [revived]);
      expect((await lake.blocks()).map((b) => b.blockId)).toEqual([revived.blockId]);
    } finally {
      await service.close();
      await done();
    }
  });
});

describe('a stream deleted by retention in another process', () => {
  it('gets no more blocks from a server that remembers it: 422, and the sink sends the stream again', async () => {
    const data = join(dir, 'other-process');
    const service = new IngestionService({ data });
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const sink = new TelemetrySink({ target: service, process, backoff: { initialMs: 5, maxMs: 50 } });
    try {
      sink.addStream(stream);
      sink.push(makeBlock(stream, 4, 1).block);
      expect(await sink.flush(30_000)).toBe(true);
      // The server has seen the process and the stream; `dorsal retention` deletes them all.
      const age = sqliteAge(data);
      await age('processes', [process.processId]);
      await age('streams', [stream.streamId]);
      await age(
        'blocks',
        (await service.lake.blocks()).map((b) => b.blockId),
      );
      const run = await runDorsal(['retention', '--days', '1', '--data', data, '--pause-ms', '0']);
      expect(run.stdout).toMatch(/deleted 1 block, 1 blob, 1 stream, 1 process,/);
      expect(run.code).toBe(0);

      const late = makeBlock(stream, 4, 2).block;
      await expect(service.ingestBlock(late)).rejects.toThrow(UnknownStreamError);
      expect(await service.lake.stream(stream.streamId)).toBeUndefined();
      expect(await service.lake.blocks()).toEqual([]);
      // The refused block's blob is deleted, with the directories it made.
      expect(existsSync(join(data, 'blobs', process.processId))).toBe(false);

      // A sink told so sends the process and the stream again, then the block.
      const next = makeBlock(stream, 4, 3).block;
      sink.push(next);
      expect(await sink.flush(30_000)).toBe(true);
      expect(sink.stats).toMatchObject({ sent: 2, droppedTotal: 0 });
      expect(await service.lake.process(process.processId)).toBeDefined();
      expect(await service.lake.stream(stream.streamId)).toBeDefined();
      expect((await service.lake.blocks()).map((b) => b.blockId)).toEqual([next.blockId]);
      await expectReadable(service.lake, [next]);
    } finally {
      await sink.close({ timeoutMs: 1000 });
      await service.close();
    }
  }, 60_000);

  it('PostgreSQL: a block insert under way holds its stream, which retention then leaves', async () => {
    const schema = uniqueSchema();
    const application = `dorsal_hold_${randomBytes(4).toString('hex')}`;
    const url = new URL(schema.url);
    url.searchParams.set('application_name', application);
    const lake = Lake.open({ db: url.toString(), blobs: join(dir, 'held') });
    const service = new IngestionService(lake);
    const raw = new pg.Client({ connectionString: POSTGRES_URL });
    await raw.connect();
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await service.ingestProcess(process);
      await service.ingestStream(stream);
      await postgresAge(schema.url)('streams', [stream.streamId]);
      const { block } = makeBlock(stream, 4, 1);
      // Another transaction holds the block id (uncommitted), so that the service's insert waits
      // in the middle of its statement, after it has read the stream.
      await raw.query('BEGIN');
      await raw.query(
        `INSERT INTO "${new URL(schema.url).searchParams.get('schema')}".blocks (block_id, stream_id, process_id, begin_time, begin_ticks, end_time, end_ticks, object_count, payload_size, insert_time, blob_path) VALUES ($1, $2, $3, $4, 0, $4, 0, 1, 1, $4, NULL)`,
        [block.blockId, stream.streamId, process.processId, nowRfc3339Ns()],
      );
      const sending = service.ingestBlock(block);
      await until(async () => {
        const { rows } = await raw.query<{ n: string }>(
          "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [application],
        );
        return Number(rows[0]?.n) > 0;
      }, 'the block insert waiting');
      // Retention (here, a store of its own, as another server) meets the stream while the insert
      // that needs it is under way: it must not delete it.
      const other: MetadataStore = Lake.open({ db: schema.url, blobs: join(dir, 'held') }).metadata;
      try {
        const pass = await other.deleteEmptyStreamsBefore('2001-01-01T00:00:00.000000000Z', 10, '');
        expect(pass.deleted).toBe(0);
      } finally {
        await raw.query('ROLLBACK');
        await other.close();
      }
      expect(await sending).toEqual({ inserted: true });
      expect(await lake.stream(stream.streamId)).toBeDefined();
      await expectReadable(lake, [block]);
    } finally {
      await raw.end();
      await service.close();
      await schema.drop();
    }
  });
});

describe.each([
  ['SQLite', async () => ({ lake: Lake.open({ data: join(dir, 'window') }), done: async () => {} })],
  [
    'PostgreSQL',
    async () => {
      const schema = uniqueSchema();
      return { lake: Lake.open({ db: schema.url, blobs: join(dir, 'window-pg') }), done: schema.drop };
    },
  ],
])('%s retention of streams and processes', (_name, make) => {
  it('looks at a window of ids at a time, however many old ones are still in use', async () => {
    const { lake, done } = await make();
    const store = lake.metadata;
    try {
      await store.ready();
      const process = makeProcess();
      await store.insertProcess(process);
      const streams = Array.from({ length: 30 }, () => makeStream(process.processId)).sort((a, b) =>
        a.streamId < b.streamId ? -1 : 1,
      );
      for (const [i, stream] of streams.entries()) {
        await store.insertStream(stream);
        // Every other stream is still in use.
        if (i % 2 === 0) {
          const { payload: _payload, ...header } = makeBlock(stream, 4).block;
          await store.insertBlock(
            header,
            10,
            uniqueBlobPath(process.processId, stream.streamId, header.blockId),
          );
        }
      }
      // Everything stored so far is older (insert times have millisecond resolution).
      const cutoff = '2999-01-01T00:00:00.000000000Z';
      let after = '';
      const windows: { deleted: number; last: string | undefined }[] = [];
      for (;;) {
        const window = await store.deleteEmptyStreamsBefore(cutoff, 10, after);
        windows.push({ deleted: window.deleted, last: window.last });
        if (window.last === undefined) break;
        after = window.last;
      }
      // Three windows of ten ids (the stream ids in order), five empty streams in each, then none.
      expect(windows).toEqual([
        { deleted: 5, last: streams[9]?.streamId },
        { deleted: 5, last: streams[19]?.streamId },
        { deleted: 5, last: streams[29]?.streamId },
        { deleted: 0, last: undefined },
      ]);
      expect((await lake.streams({ processId: process.processId })).map((s) => s.streamId).sort()).toEqual(
        streams.filter((_, i) => i % 2 === 0).map((s) => s.streamId),
      );
      // The deleted streams' blob directories, recorded for retention to sweep, then forgotten.
      const deleted = streams
        .filter((_, i) => i % 2 === 1)
        .map((s) => streamBlobDirectory(s.processId, s.streamId));
      const recorded = await store.listStreamSweeps(100);
      expect([...recorded].sort()).toEqual([...deleted].sort());
      expect(await store.listStreamSweeps(4)).toHaveLength(4);
      await store.forgetStreamSweeps(recorded);
      expect(await store.listStreamSweeps(100)).toEqual([]);
      // The process still has streams; once they are gone, its window deletes it.
      expect(await store.deleteEmptyProcessesBefore(cutoff, 10, '')).toMatchObject({ deleted: 0 });
      await store.deleteBlocksBefore(cutoff, 100);
      expect((await store.deleteEmptyStreamsBefore(cutoff, 100, '')).deleted).toBe(15);
      const last = await store.deleteEmptyProcessesBefore(cutoff, 10, '');
      expect(last.deleted).toBe(1);
      expect(await lake.process(process.processId)).toBeUndefined();
    } finally {
      await lake.close();
      await done();
    }
  });
});
