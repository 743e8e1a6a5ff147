import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { encodeBlock, encodeProcessInfo, encodeStreamInfo } from '../../src/telemetry/wire/index.js';
import { until } from '../helpers/until.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { post, rawConnection } from './http-helpers.js';
import { POSTGRES_URL, uniqueSchema } from './services.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The cap on inserts under way (`maxInserts`) against a client that hangs up while its key is
 * checked: the lake's keys are read (PostgreSQL, its `api_keys` held locked by another session),
 * the client goes, and its insert must give its place back. It kept it for good: its request's
 * close had fired before its body was read, and a body of 0 bytes never stalled.
 */
describe('inserts under way, of clients gone while their key was checked', () => {
  const { dir, cleanup } = tempDir('dorsal-inserts-cap-');
  const schema = uniqueSchema();
  afterAll(async () => {
    await schema.drop();
    cleanup();
  });

  it('give their place back: the next insert is stored, not refused as busy for good', async () => {
    const server = await startIngestionServer({
      port: 0,
      lake: { db: schema.url, blobs: join(dir, 'blobs') },
      maxInserts: 1,
      keyCacheMs: 1,
      // Longer than the test waits: a request kept until its body stalls keeps its place.
      stallTimeoutMs: 60_000,
    });
    const locker = new pg.Client({ connectionString: POSTGRES_URL });
    await locker.connect();
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      expect((await post(server.url, 'process', encodeProcessInfo(process))).status).toBe(200);
      expect((await post(server.url, 'stream', encodeStreamInfo(stream))).status).toBe(200);
      const table = `"${new URL(schema.url).searchParams.get('schema')}".api_keys`;
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
      // The key cache stale: the next request reads the keys, and waits for the lock.
      await sleep(20);
      const gone = rawConnection(
        server.port,
        // Its whole body with its head: the request is complete before its key is checked.
        'POST /ingestion/insert_block HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/cbor\r\ncontent-length: 3\r\n\r\nabc',
      );
      // Its key check under way (waiting for the lock), the client goes.
      await until(async () => {
        const { rows } = await locker.query('SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted');
        return (rows[0] as { n: number }).n > 0;
      }, 'the key check waiting for the lock');
      gone.socket.destroy();
      await sleep(50);
      await locker.query('COMMIT');
      // Past a few stall windows, an insert goes in.
      let status = 0;
      await until(
        async () => {
          status = (await post(server.url, 'block', encodeBlock(makeBlock(stream, 10).block))).status;
          return status === 200;
        },
        'an insert stored',
        10_000,
      ).catch(() => {});
      expect(status).toBe(200);
    } finally {
      await locker.end();
      await server.close();
    }
  });
});
