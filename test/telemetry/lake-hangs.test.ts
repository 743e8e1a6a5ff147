import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { makeBlock, makeProcess, makeStream } from './fixtures.js';
import { POSTGRES_URL, ReadGate, S3RVER_CREDENTIALS, startS3, uniqueSchema } from './services.js';

/** The schema a `uniqueSchema()` URL names. */
function schemaOf(url: string): string {
  return new URL(url).searchParams.get('schema')!;
}

/**
 * A lake whose store stops answering fails the call that waits for it, with the lake's error,
 * instead of hanging it (and whatever holds on to it: a query slot, a decoding turn, a request).
 */
describe('a lake whose store stops answering', () => {
  const gate = new ReadGate();
  const schema = uniqueSchema();
  let s3: Awaited<ReturnType<typeof startS3>>;
  let lake: Lake;
  let blockId: string;
  let processId: string;

  beforeAll(async () => {
    s3 = await startS3(gate);
    lake = Lake.open({
      db: schema.url,
      blobs: 's3://lake/hangs',
      s3: { endpoint: s3.endpoint, credentials: S3RVER_CREDENTIALS, idleTimeoutMs: 300, maxAttempts: 1 },
      postgres: { statementTimeoutMs: 300 },
    });
    const service = new IngestionService(lake);
    const process = makeProcess();
    const stream = makeStream(process.processId);
    const { block } = makeBlock(stream, 20);
    await service.ingestProcess(process);
    await service.ingestStream(stream);
    await service.ingestBlock(block);
    blockId = block.blockId;
    processId = process.processId;
  });

  afterAll(async () => {
    gate.release();
    await lake?.close();
    await s3?.stop();
    await schema.drop();
  });

  it('fails a blob read the store holds past the idle time-out, and reads it once it answers', async () => {
    gate.hold();
    try {
      await expect(lake.readBlock(blockId)).rejects.toMatchObject({
        code: 'DORSAL_LAKE_UNAVAILABLE',
        message: expect.stringMatching(/timed out after 300 ms of inactivity/),
      });
    } finally {
      gate.release();
    }
    expect((await lake.readBlock(blockId)).block.blockId).toBe(blockId);
  });

  it('fails a statement that waits on a lock past the statement time-out', async () => {
    const locker = new pg.Client({ connectionString: POSTGRES_URL });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${schemaOf(schema.url)}".blocks IN ACCESS EXCLUSIVE MODE`);
      await expect(lake.blocks({ processId })).rejects.toMatchObject({
        code: 'DORSAL_LAKE_UNAVAILABLE',
        message: expect.stringMatching(/statement timeout/),
      });
      await locker.query('ROLLBACK');
      expect(await lake.blocks({ processId })).toHaveLength(1);
    } finally {
      await locker.end();
    }
  });

  it('waits for a migration however long it takes: one cut short would be cut at every start', async () => {
    const other = uniqueSchema();
    const locker = new pg.Client({ connectionString: POSTGRES_URL });
    await locker.connect();
    // Another server migrating the same schema holds its lock for longer than the time-out.
    await locker.query('SELECT pg_advisory_lock(hashtext($1))', [`dorsal-migrate:${schemaOf(other.url)}`]);
    const migrating = Lake.open({
      db: other.url,
      blobs: 's3://lake/other',
      s3: { endpoint: s3.endpoint, credentials: S3RVER_CREDENTIALS },
      postgres: { statementTimeoutMs: 300 },
    });
    try {
      const ready = migrating.ready();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await locker.query('SELECT pg_advisory_unlock(hashtext($1))', [
        `dorsal-migrate:${schemaOf(other.url)}`,
      ]);
      await expect(ready).resolves.toBeUndefined();
    } finally {
      await locker.end();
      await migrating.close();
      await other.drop();
    }
  });

  it('takes its time-outs from the URLs too', async () => {
    const url = new URL(schema.url);
    url.searchParams.set('statementTimeoutMs', '0');
    expect(() => Lake.open({ db: url.toString(), blobs: 's3://lake/x' })).toThrow(/'statementTimeoutMs'/);
    expect(() => Lake.open({ db: schema.url, blobs: 's3://lake/x?idleTimeoutMs=soon' })).toThrow(
      /'idleTimeoutMs'/,
    );
  });

  it('refuses time-outs it cannot use, naming them', () => {
    expect(() =>
      Lake.open({ db: schema.url, blobs: 's3://lake/x', postgres: { statementTimeoutMs: 0 } }),
    ).toThrow(/option 'statementTimeoutMs' must be an integer from 1 to/);
    for (const idleTimeoutMs of [-1, 2 ** 31]) {
      expect(() => Lake.open({ db: schema.url, blobs: 's3://lake/x', s3: { idleTimeoutMs } })).toThrow(
        `S3 option 'idleTimeoutMs' must be an integer from 1 to 2147483647 (ms), got ${idleTimeoutMs}`,
      );
    }
  });
});
