import net from 'node:net';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { IngestionService } from '../../src/ingestion.js';
import { Lake } from '../../src/lake.js';
import { applyRetention } from '../../src/telemetry/lake/retention.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { S3RVER_CREDENTIALS, startS3 } from './services.js';

describe('a blob write whose answer is lost', () => {
  it('an S3 PUT the SDK sends again and finds there (its own bytes) stores the block, and leaves nothing behind', async () => {
    const s3 = await startS3();
    const target = new URL(s3.endpoint);
    // A proxy to the S3 stand-in that lets one block PUT through and swallows its answer: the
    // object is written, the client never hears it, and the SDK sends the PUT again (412).
    let armed = false;
    let swallowed = 0;
    const proxy = net.createServer((client) => {
      const server = net.connect(Number(target.port), target.hostname);
      let swallow = false;
      client.on('data', (chunk) => {
        if (armed && chunk.toString('latin1').startsWith('PUT /lake/p/blobs/')) {
          armed = false;
          swallow = true;
          swallowed++;
        }
        server.write(chunk);
      });
      server.on('data', (chunk) => {
        if (!swallow) client.write(chunk);
        else {
          client.destroy();
          server.destroy();
        }
      });
      for (const socket of [client, server]) socket.on('error', () => {});
      client.on('close', () => server.destroy());
      server.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const { dir, cleanup } = tempDir();
    const lake = Lake.open({
      db: `${dir}/lake.sqlite`,
      blobs: 's3://lake/p',
      s3: {
        endpoint: `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
        credentials: S3RVER_CREDENTIALS,
      },
    });
    const objects = async (): Promise<string[]> => {
      const client = new S3Client({
        endpoint: s3.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: S3RVER_CREDENTIALS,
      });
      try {
        const listed = await client.send(new ListObjectsV2Command({ Bucket: 'lake', Prefix: 'p/blobs/' }));
        return (listed.Contents ?? []).map((o) => o.Key as string);
      } finally {
        client.destroy();
      }
    };
    try {
      const ingestion = new IngestionService(lake);
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await ingestion.ingestProcess(process);
      await ingestion.ingestStream(stream);
      const { block } = makeBlock(stream, 16, 1);
      armed = true;
      // Stored at the first send: the object found there is this write's own.
      expect(await ingestion.ingestBlock(block)).toEqual({ inserted: true });
      expect(swallowed).toBe(1);
      const row = await lake.block(block.blockId);
      expect(await objects()).toEqual([`p/${row?.blobPath}`]);
      expect((await lake.readBlock(block.blockId)).block.blockId).toBe(block.blockId);
      // Retention leaves no object: each was named by a row.
      expect(await applyRetention(lake, { days: 0, pauseMs: 0 })).toMatchObject({ blocks: 1, blobs: 1 });
      expect(await objects()).toEqual([]);
    } finally {
      await lake.close();
      proxy.close();
      await s3.stop();
      cleanup();
    }
  }, 60_000);
});
