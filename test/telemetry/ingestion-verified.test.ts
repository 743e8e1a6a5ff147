import { afterAll, describe, expect, it } from 'vitest';
import { IngestionService } from '../../src/ingestion.js';
import {
  compressPart,
  encodeBlock,
  encodeProcessInfo,
  encodeStreamInfo,
} from '../../src/telemetry/wire/index.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';

/**
 * A block whose payload the sender made itself (the persister's own transport): the service
 * skips only the walk of its lz4 parts, and checks the rest as for any block.
 */
describe('ingestion of a block whose payload its sender verified', () => {
  const { dir, cleanup } = tempDir('dorsal-verified-');
  afterAll(cleanup);

  it('still refuses an lz4 bomb, a stream of another process, an unknown stream; stores a good block', async () => {
    const service = new IngestionService({ data: dir });
    try {
      const process = makeProcess();
      const other = makeProcess();
      const stream = makeStream(process.processId);
      const elsewhere = makeStream(other.processId);
      for (const p of [process, other]) await service.insertProcess(encodeProcessInfo(p));
      for (const s of [stream, elsewhere]) await service.insertStream(encodeStreamInfo(s));
      const verified = { payloadVerified: true };
      const { block } = makeBlock(stream, 50, 7);
      const bomb = {
        ...block,
        payload: { ...block.payload, objects: compressPart(new Uint8Array(4 << 20)) },
      };
      await expect(service.insertBlock(encodeBlock(bomb), verified)).rejects.toThrow(
        /declares 4194304 decompressed bytes, more than 64 times its size/,
      );
      await expect(
        service.insertBlock(encodeBlock({ ...block, streamId: elsewhere.streamId }), verified),
      ).rejects.toThrow(/belongs to process/);
      await expect(
        service.insertBlock(
          encodeBlock({ ...block, streamId: makeStream(process.processId).streamId }),
          verified,
        ),
      ).rejects.toThrow(/stream/);
      expect(await service.insertBlock(encodeBlock(block), verified)).toEqual({ inserted: true });
      // Without the flag, a payload that does not decompress to its declared size is refused.
      const { block: second } = makeBlock(stream, 50, 8);
      // Truncated: its last literals are missing.
      const broken = second.payload.objects.slice(0, second.payload.objects.length - 8);
      const damaged = { ...second, payload: { ...second.payload, objects: broken } };
      await expect(service.insertBlock(encodeBlock(damaged))).rejects.toThrow(/lz4/);
    } finally {
      await service.close();
    }
  });
});
