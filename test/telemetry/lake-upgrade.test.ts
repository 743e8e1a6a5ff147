import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockConflictError, LakeNotFoundError } from '../../src/telemetry/errors.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { partitionParams } from '../../src/telemetry/lake/admin-sql.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { applyRetention } from '../../src/telemetry/lake/retention.js';
import { processParams, streamParams } from '../../src/telemetry/lake/rows.js';
import { S3BlobStore } from '../../src/telemetry/lake/s3-blobs.js';
import { MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE } from '../../src/telemetry/lake/schema.js';
import { blobPath, partitionBlobPaths } from '../../src/telemetry/lake/types.js';
import { type Block, encodePayloadBlob, nowRfc3339Ns } from '../../src/telemetry/wire/index.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { type Age, postgresAge, sqliteAge } from './lake-age.js';
import { POSTGRES_URL, S3RVER_CREDENTIALS, scaleOutLocation, startS3, uniqueSchema } from './services.js';

/**
 * A lake written by a dorsal of schema version 2 (rows without `blob_path`, each payload at
 * `blobs/{process}/{stream}/{block}`) is read, written and cleaned by this one. Never delete this
 * test: lakes of that version exist.
 */

const V2_BLOCK_COLUMNS =
  'block_id, stream_id, process_id, begin_time, begin_ticks, end_time, end_ticks, object_count, payload_size, insert_time';

/** The statements of a version 2 lake, and the rows it held: a process, a stream, a block. */
function version2(block: Block, process = makeProcess({ processId: block.processId })) {
  const stream = makeStream(process.processId, { streamId: block.streamId });
  const now = nowRfc3339Ns();
  const blob = encodePayloadBlob(block.payload);
  return {
    migrations: MIGRATIONS.slice(0, 2).flat(),
    rows: [
      { table: 'processes', params: processParams(process, now) },
      { table: 'streams', params: streamParams(stream, now) },
      {
        table: `blocks (${V2_BLOCK_COLUMNS})`,
        params: [
          block.blockId,
          block.streamId,
          block.processId,
          block.beginTime,
          block.beginTicks,
          block.endTime,
          block.endTicks,
          block.objectCount,
          blob.length,
          now,
        ],
      },
    ],
    blob,
    path: blobPath(block.processId, block.streamId, block.blockId),
  };
}

/** What must hold of an upgraded lake holding `old`, whose rows `age` can age; closes the lake. */
async function expectUpgraded(lake: Lake, old: Block, objects: Uint8Array, age: Age): Promise<void> {
  const service = new IngestionService(lake);
  try {
    const [row] = await lake.blocks({ streamId: old.streamId });
    expect(row?.blobPath).toBe(blobPath(old.processId, old.streamId, old.blockId));
    expect(Buffer.from((await lake.readBlock(old.blockId)).payload.objects)).toEqual(Buffer.from(objects));
    // A re-send of the old block is recognised, another payload under its id refused.
    expect(await service.ingestBlock(old)).toEqual({ inserted: false });
    const stream = await lake.stream(old.streamId);
    const other = makeBlock(stream as NonNullable<typeof stream>, 8, 9).block;
    await expect(service.ingestBlock({ ...other, blockId: old.blockId })).rejects.toThrow(BlockConflictError);
    // New blocks go in beside it, at paths of their own.
    expect(await service.ingestBlock(other)).toEqual({ inserted: true });
    expect((await lake.block(other.blockId))?.blobPath).toMatch(/\.[0-9a-f]{16}$/);
    // Retention deletes the old block's blob where it is.
    await age('blocks', [old.blockId]);
    expect(await applyRetention(lake, { days: 1, pauseMs: 0 })).toMatchObject({ blocks: 1, blobs: 1 });
    await expect(lake.blobs.get(row?.blobPath as string)).rejects.toThrow(LakeNotFoundError);
    expect((await lake.blocks({ streamId: old.streamId })).map((b) => b.blockId)).toEqual([other.blockId]);
    expect((await lake.readBlock(other.blockId)).block.objectCount).toBe(8);
  } finally {
    await service.close();
  }
}

describe('a lake of schema version 2, opened by this dorsal', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('SQLite + directory: migrates, reads its blocks, and keeps re-sends, conflicts and retention working', async () => {
    const data = join(dir, 'sqlite');
    mkdirSync(data);
    const stream = makeStream(makeProcess().processId);
    const { block, objects } = makeBlock(stream, 20, 1);
    const old = version2(block);
    const db = new Database(join(data, 'lake.sqlite'));
    db.exec(`CREATE TABLE ${VERSION_TABLE} (version INTEGER PRIMARY KEY, applied_time TEXT NOT NULL)`);
    for (const sql of old.migrations) db.exec(sql);
    db.prepare(`INSERT INTO ${VERSION_TABLE} VALUES (1, ?), (2, ?)`).run(nowRfc3339Ns(), nowRfc3339Ns());
    for (const { table, params } of old.rows) {
      db.prepare(`INSERT INTO ${table} VALUES (${params.map(() => '?').join(',')})`).run(...params);
    }
    db.close();
    const file = join(data, old.path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, old.blob);

    await expectUpgraded(Lake.open({ data }), block, objects, sqliteAge(data));
    const check = new Database(join(data, 'lake.sqlite'), { readonly: true });
    expect(check.prepare(`SELECT MAX(version) AS v FROM ${VERSION_TABLE}`).get()).toEqual({
      v: SCHEMA_VERSION,
    });
    check.close();
  });

  it('PostgreSQL + S3: the same', async () => {
    const schema = uniqueSchema();
    const name = new URL(schema.url).searchParams.get('schema') as string;
    const s3 = await startS3();
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const stream = makeStream(makeProcess().processId);
      const { block, objects } = makeBlock(stream, 20, 1);
      const old = version2(block);
      await client.query(`CREATE SCHEMA "${name}"`);
      await client.query(`SET search_path = "${name}"`);
      await client.query(
        `CREATE TABLE ${VERSION_TABLE} (version INTEGER PRIMARY KEY, applied_time TEXT NOT NULL)`,
      );
      for (const sql of old.migrations) await client.query(sql);
      await client.query(`INSERT INTO ${VERSION_TABLE} VALUES (1, $1), (2, $1)`, [nowRfc3339Ns()]);
      for (const { table, params } of old.rows) {
        await client.query(
          `INSERT INTO ${table} VALUES (${params.map((_, i) => `$${i + 1}`).join(',')})`,
          params,
        );
      }
      const blobs = new S3BlobStore('lake', 'v2', { endpoint: s3.endpoint, credentials: S3RVER_CREDENTIALS });
      expect(await blobs.putIfAbsent(old.path, old.blob)).toBe('created');
      await blobs.close();

      const lake = Lake.open(scaleOutLocation(schema.url, s3.endpoint, 'v2'));
      await expectUpgraded(lake, block, objects, postgresAge(schema.url));
      const { rows } = await client.query(`SELECT MAX(version) AS v FROM ${VERSION_TABLE}`);
      expect(rows).toEqual([{ v: SCHEMA_VERSION }]);
    } finally {
      await client.end();
      await s3.stop();
      await schema.drop();
    }
  });
});

/**
 * A lake of schema version 4 holds partition rows without `first_block_insert_time`: they take
 * their own insert time, and retention deletes them by it, as it did.
 */
describe('a lake of schema version 4, opened by this dorsal', () => {
  const V4_PARTITION_COLUMNS =
    'partition_id, view_name, process_id, stream_id, block_ids, row_count, data_path, data_bytes, coverage_path, coverage_bytes, insert_time';
  const processId = makeProcess().processId;
  const partition = {
    partitionId: '0a0b0c0d-0000-4000-8000-000000000001',
    view: 'stream_ticks',
    processId,
    streamId: makeStream(processId).streamId,
    blockIds: [makeProcess().processId],
    rowCount: 3,
    dataBytes: 100,
    coverageBytes: 10,
    insertTime: '2001-02-03T04:05:06.000000007Z',
  };
  const params = partitionParams({
    ...partition,
    firstBlockInsertTime: partition.insertTime,
    fileSchema: null,
  }).slice(0, 11);
  const expectMigrated = async (lake: Lake) => {
    try {
      expect(await lake.metadata.listPartitions(processId)).toEqual([
        { ...partition, firstBlockInsertTime: partition.insertTime, fileSchema: null },
      ]);
      expect(await lake.metadata.deletePartitionsBefore(partition.insertTime, 10)).toEqual([]);
      expect(
        (await lake.metadata.deletePartitionsBefore('2001-02-03T04:05:06.000000008Z', 10)).sort(),
      ).toEqual(Object.values(partitionBlobPaths(partition)).sort());
    } finally {
      await lake.close();
    }
  };

  /**
   * A dorsal of schema version 4 still running (a rolling upgrade) inserts its 11 columns into a
   * migrated lake: its row, without `first_block_insert_time`, goes by its own insert time.
   */
  const expectRetentionTakesV4Row = async (lake: Lake, insertV4Row: () => Promise<void>) => {
    try {
      await lake.ready();
      await insertV4Row();
      const [row] = await lake.metadata.listPartitions(processId);
      expect(row?.partitionId).toBe(partition.partitionId);
      expect(await applyRetention(lake, { days: 1, pauseMs: 0 })).toMatchObject({ partitions: 1 });
      expect(await lake.metadata.listPartitions(processId)).toEqual([]);
    } finally {
      await lake.close();
    }
  };

  it('SQLite: a row a dorsal of version 4 inserts after the migration goes by its insert time', async () => {
    const { dir, cleanup } = tempDir();
    try {
      await expectRetentionTakesV4Row(Lake.open({ data: dir }), async () => {
        const db = new Database(join(dir, 'lake.sqlite'));
        try {
          db.prepare(
            `INSERT INTO partitions (${V4_PARTITION_COLUMNS}) VALUES (${params.map(() => '?').join(',')})`,
          ).run(...params);
        } finally {
          db.close();
        }
      });
    } finally {
      cleanup();
    }
  });

  it('PostgreSQL: a row a dorsal of version 4 inserts after the migration goes by its insert time', async () => {
    const schema = uniqueSchema();
    const name = new URL(schema.url).searchParams.get('schema') as string;
    const { dir, cleanup } = tempDir();
    try {
      await expectRetentionTakesV4Row(Lake.open({ db: schema.url, blobs: dir }), async () => {
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        try {
          await client.query(`SET search_path = "${name}"`);
          await client.query(
            `INSERT INTO partitions (${V4_PARTITION_COLUMNS}) VALUES (${params.map((_, i) => `$${i + 1}`).join(',')})`,
            params,
          );
        } finally {
          await client.end();
        }
      });
    } finally {
      await schema.drop();
      cleanup();
    }
  });

  it('SQLite: its partition rows take their own insert time as their first block’s', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const db = new Database(join(dir, 'lake.sqlite'));
      db.exec(`CREATE TABLE ${VERSION_TABLE} (version INTEGER PRIMARY KEY, applied_time TEXT NOT NULL)`);
      for (const sql of MIGRATIONS.slice(0, 4).flat()) db.exec(sql);
      db.prepare(`INSERT INTO ${VERSION_TABLE} VALUES (1, ?), (2, ?), (3, ?), (4, ?)`).run(
        ...Array.from({ length: 4 }, nowRfc3339Ns),
      );
      db.prepare(
        `INSERT INTO partitions (${V4_PARTITION_COLUMNS}) VALUES (${params.map(() => '?').join(',')})`,
      ).run(...params);
      db.close();
      await expectMigrated(Lake.open({ data: dir }));
    } finally {
      cleanup();
    }
  });

  it('PostgreSQL: the same', async () => {
    const schema = uniqueSchema();
    const name = new URL(schema.url).searchParams.get('schema') as string;
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    const { dir, cleanup } = tempDir();
    try {
      await client.query(`CREATE SCHEMA "${name}"`);
      await client.query(`SET search_path = "${name}"`);
      await client.query(
        `CREATE TABLE ${VERSION_TABLE} (version INTEGER PRIMARY KEY, applied_time TEXT NOT NULL)`,
      );
      for (const sql of MIGRATIONS.slice(0, 4).flat()) await client.query(sql);
      await client.query(`INSERT INTO ${VERSION_TABLE} VALUES (1, $1), (2, $1), (3, $1), (4, $1)`, [
        nowRfc3339Ns(),
      ]);
      await client.query(
        `INSERT INTO partitions (${V4_PARTITION_COLUMNS}) VALUES (${params.map((_, i) => `$${i + 1}`).join(',')})`,
        params,
      );
      await expectMigrated(Lake.open({ db: schema.url, blobs: dir }));
    } finally {
      await client.end();
      await schema.drop();
      cleanup();
    }
  });
});

/**
 * A database that is not a lake, named as one (another program's file or schema): refused before
 * anything is made or changed in it, with an error that says so.
 */
describe('a database that holds no lake but tables of its own', () => {
  it('SQLite: another program’s file as the lake’s is refused, nothing changed in it', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = join(dir, 'lake.sqlite');
      const other = new Database(file);
      other.exec('CREATE TABLE processes (pid INTEGER); CREATE TABLE notes (text TEXT)');
      other.close();
      const lake = Lake.open({ data: dir });
      await expect(lake.ready()).rejects.toThrow(
        /lake\.sqlite is not a dorsal lake: it holds tables \(notes, processes\) and no dorsal_schema_version; nothing was changed in it/,
      );
      await lake.close();
      const after = new Database(file, { readonly: true });
      try {
        expect(
          after.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all(),
        ).toEqual([{ name: 'notes' }, { name: 'processes' }]);
        expect(after.pragma('journal_mode', { simple: true })).toBe('delete');
      } finally {
        after.close();
      }
    } finally {
      cleanup();
    }
  });

  it('PostgreSQL: a schema holding a table named as the lake’s is refused, nothing made in it', async () => {
    const schema = uniqueSchema();
    const name = new URL(schema.url).searchParams.get('schema') as string;
    const blobs = tempDir();
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA "${name}"`);
      await client.query(`CREATE TABLE "${name}".streams (id INTEGER)`);
      await client.query(`CREATE TABLE "${name}".users (id INTEGER)`);
      const lake = Lake.open({ db: schema.url, blobs: blobs.dir });
      await expect(lake.ready()).rejects.toThrow(
        /is not a dorsal lake: it holds tables named as the lake's \(streams\) and no dorsal_schema_version; nothing was changed in it/,
      );
      await lake.close();
      const { rows } = await client.query(
        'SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1',
        [name],
      );
      expect(rows).toEqual([{ tablename: 'streams' }, { tablename: 'users' }]);
      // Tables of other names are no clash: a lake is made beside them.
      await client.query(`DROP TABLE "${name}".streams`);
      const beside = Lake.open({ db: schema.url, blobs: blobs.dir });
      await beside.ready();
      await beside.close();
    } finally {
      await client.end();
      await schema.drop();
      blobs.cleanup();
    }
  });
});
