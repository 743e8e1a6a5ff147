import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startIngestionServer } from '../../src/ingestion.js';
import { Lake } from '../../src/lake.js';
import { encodeBlock, encodeProcessInfo, encodeStreamInfo } from '../../src/wire.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { freePort, get, post } from './http-helpers.js';
import { POSTGRES_URL } from './services.js';

describe('ingestion with the lake down', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('answers 503 with Retry-After when PostgreSQL is unreachable, and keeps serving', async () => {
    const closed = new URL(POSTGRES_URL);
    closed.port = String(await freePort());
    const unavailable: unknown[] = [];
    const server = await startIngestionServer({
      port: 0,
      lake: { db: closed.toString(), blobs: dir },
      retryAfterSeconds: 2,
      onLakeUnavailable: (error) => unavailable.push(error),
    });
    try {
      const answer = await post(server.url, 'process', encodeProcessInfo(makeProcess()));
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toBe('2');
      expect(answer.body.error?.code).toBe('DORSAL_LAKE_UNAVAILABLE');
      // The keys could not be read, so the client is nobody known: what failed (the database's
      // host and port) is for the operator, not in the answer.
      expect(answer.body.error?.message).toBe('the lake cannot check API keys now: retry later');
      expect(JSON.stringify(answer.body)).not.toContain(closed.port);
      expect(unavailable).toHaveLength(1);
      expect((unavailable[0] as Error).message).toContain('PostgreSQL lake');
      const ready = await get(server.url, '/ready');
      expect(ready.status).toBe(503);
      expect(ready.headers.get('retry-after')).toBe('2');
      expect((await get(server.url, '/health')).status).toBe(200);
      const again = await post(server.url, 'process', encodeProcessInfo(makeProcess()));
      expect(again.status).toBe(503);
    } finally {
      await server.close();
    }
  });

  it('answers 503 when the blob directory is a file, and stores no row without its blob', async () => {
    const blobs = join(dir, 'not-a-directory');
    writeFileSync(blobs, 'a file');
    const data = join(dir, 'meta');
    const server = await startIngestionServer({ port: 0, lake: { db: join(data, 'lake.sqlite'), blobs } });
    const lake = Lake.open({ data });
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      expect((await post(server.url, 'process', encodeProcessInfo(process))).status).toBe(200);
      expect((await post(server.url, 'stream', encodeStreamInfo(stream))).status).toBe(200);
      const { block } = makeBlock(stream);
      const answer = await post(server.url, 'block', encodeBlock(block));
      expect(answer.status).toBe(503);
      expect(answer.headers.get('retry-after')).toBe('1');
      expect(answer.body.error?.message).toContain(
        `writing blob blobs/${process.processId}/${stream.streamId}/${block.blockId}`,
      );
      expect((await get(server.url, '/ready')).status).toBe(503);
      expect(await lake.block(block.blockId)).toBeUndefined();
      expect(await lake.stream(stream.streamId)).toMatchObject(stream);
    } finally {
      await server.close();
      await lake.close();
    }
  });

  it('recovers without a restart once the store is back', async () => {
    const data = join(dir, 'later');
    writeFileSync(data, 'in the way');
    const unavailable: unknown[] = [];
    const server = await startIngestionServer({
      port: 0,
      lake: { data },
      onLakeUnavailable: (error) => unavailable.push(error),
    });
    try {
      const process = makeProcess();
      const down = await post(server.url, 'process', encodeProcessInfo(process));
      expect(down.status).toBe(503);
      expect((unavailable[0] as Error | undefined)?.message).toContain('opening the SQLite lake');
      rmSync(data);
      mkdirSync(data);
      expect((await post(server.url, 'process', encodeProcessInfo(process))).body).toEqual({
        inserted: true,
      });
      expect((await get(server.url, '/ready')).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
