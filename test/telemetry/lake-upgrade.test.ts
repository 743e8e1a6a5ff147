import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockConflictError, LakeNotFoundError } from '../../src/telemetry/errors.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { applyRetention } from '../../src/telemetry/lake/retention.js';
import { processParams, streamParams } from '../../src/telemetry/lake/rows.js';
import { S3BlobStore } from '../../src/telemetry/lake/s3-blobs.js';
import { MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE } from '../../src/telemetry/lake/schema.js';
import { blobPath } from '../../src/telemetry/lake/types.js';
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
