import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IngestionServer, startIngestionServer } from '../../src/ingestion.js';
import { Lake } from '../../src/lake.js';
import { type Block, encodeBlock, encodeProcessInfo, encodeStreamInfo } from '../../src/wire.js';
import { makeBlock, makeProcess, makeStream } from './fixtures.js';
import { post } from './http-helpers.js';
import { scaleOutLocation, startS3, uniqueSchema } from './services.js';

describe('two ingestion servers on one PostgreSQL + bucket', () => {
  const schema = uniqueSchema();
  let s3: Awaited<ReturnType<typeof startS3>>;
  let a: IngestionServer;
  let b: IngestionServer;
  let lake: Lake;

  beforeAll(async () => {
    s3 = await startS3();
    const location = scaleOutLocation(schema.url, s3.endpoint, 'shared');
    [a, b] = await Promise.all([
      startIngestionServer({ port: 0, lake: location }),
      startIngestionServer({ port: 0, lake: location }),
    ]);
    lake = Lake.open(location);
  });

  afterAll(async () => {
    await Promise.all([a.close(), b.close(), lake.close()]);
    await schema.drop();
    await s3.stop();
  });

  it('stores every block once when both receive all of them at the same time', async () => {
    const process = makeProcess();
    const streams = [makeStream(process.processId), makeStream(process.processId)];
    // Both servers migrate the fresh schema and insert the same records concurrently.
    const meta = await Promise.all(
      [a, b].map(async (server) => {
        const p = await post(server.url, 'process', encodeProcessInfo(process));
        const s = await Promise.all(
          streams.map((stream) => post(server.url, 'stream', encodeStreamInfo(stream))),
        );
        return [p, ...s];
      }),
    );
    expect(meta.flat().every((answer) => answer.status === 200)).toBe(true);
    expect(meta.flat().filter((answer) => answer.body.inserted === true)).toHaveLength(3);

    const blocks: Block[] = [];
    for (let i = 0; i < 60; i++)
      blocks.push(makeBlock(streams[i % 2] as (typeof streams)[0], 20 + i, i + 1).block);
    const answers = await Promise.all(
      blocks.flatMap((block) => {
        const bytes = encodeBlock(block);
        return [post(a.url, 'block', bytes), post(b.url, 'block', bytes), post(a.url, 'block', bytes)];
      }),
    );
    expect(answers.map((answer) => answer.status).every((status) => status === 200)).toBe(true);
    expect(answers.filter((answer) => answer.body.inserted === true)).toHaveLength(blocks.length);

    const rows = await lake.blocks({ processId: process.processId });
    expect(rows).toHaveLength(blocks.length);
    expect(new Set(rows.map((row) => row.blockId)).size).toBe(blocks.length);
    for (const block of blocks) {
      const read = await lake.readBlock(block.blockId);
      expect(read.payload.objects.length).toBe(block.objectCount * 32);
    }
  });
});
