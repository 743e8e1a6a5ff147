import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IngestionService } from '../../src/ingestion.js';
import { blobPath, Lake, SqliteMetadataStore } from '../../src/lake.js';
import { encodePayloadBlob } from '../../src/telemetry/wire/index.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { blockRowGroupSuite, lakeSuite } from './lake-suite.js';

lakeSuite('SQLite + directory', async () => {
  const { dir, cleanup } = tempDir();
  return { open: async () => Lake.open({ data: dir }), cleanup: async () => cleanup() };
});

blockRowGroupSuite('SQLite', async () => {
  const { dir, cleanup } = tempDir();
  return {
    open: () => new SqliteMetadataStore(join(dir, 'lake.sqlite')),
    refusal: /inserting a block: NOT NULL constraint failed: blocks\.begin_time/,
    cleanup: async () => cleanup(),
  };
});

describe('SQLite + directory lake after a crash', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('stores a block again whatever a crash left at its former blob path', async () => {
    const service = new IngestionService({ data: dir });
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await service.ingestProcess(process);
      await service.ingestStream(stream);
      // What a crash between the blob write and the row insert of an earlier version left: no
      // row, and under the block's name a file cut short, empty, of the right size with other
      // bytes (a power loss), or whole. Nothing points at it; the block gets a blob of its own.
      const cases = [
        (blob: Uint8Array) => blob.subarray(0, blob.length >> 1),
        () => new Uint8Array(0),
        (blob: Uint8Array) => new Uint8Array(blob.length).fill(0x5a),
        (blob: Uint8Array) => blob,
      ];
      for (const [i, leftOver] of cases.entries()) {
        const { block, objects } = makeBlock(stream, 200, i + 1);
        const file = join(dir, blobPath(block.processId, block.streamId, block.blockId));
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, leftOver(encodePayloadBlob(block.payload)));
        expect(await service.ingestBlock(block)).toEqual({ inserted: true });
        expect((await service.lake.block(block.blockId))?.blobPath).not.toBe(
          blobPath(block.processId, block.streamId, block.blockId),
        );
        const read = await service.lake.readBlock(block.blockId);
        expect(Buffer.from(read.payload.objects)).toEqual(Buffer.from(objects));
      }
    } finally {
      await service.close();
    }
  });
});
