import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LakeUnavailableError } from '../../src/telemetry/errors.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { SqliteMetadataStore } from '../../src/telemetry/lake/sqlite-store.js';
import type { BlockHeader } from '../../src/telemetry/wire/index.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { lakeSuite } from './lake-suite.js';

lakeSuite('SQLite + directory', async () => {
  const { dir, cleanup } = tempDir();
  return { open: async () => Lake.open({ data: dir }), cleanup: async () => cleanup() };
});

describe('SQLite block rows inserted together', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('fail one bad row alone: the rows that arrived with it are stored', async () => {
    const store = new SqliteMetadataStore(join(dir, 'lake.sqlite'));
    try {
      const stream = makeStream(makeProcess().processId);
      const headers = Array.from({ length: 5 }, () => {
        const { payload: _payload, ...header } = makeBlock(stream, 4).block;
        return header as BlockHeader;
      });
      // A row the database refuses (NOT NULL), in the same turn of the event loop as the others.
      const bad = { ...headers[0]!, blockId: 'bad', streamId: null } as unknown as BlockHeader;
      const settled = await Promise.allSettled([
        ...headers.map((h) => store.insertBlock(h, 10)),
        store.insertBlock(bad, 10),
      ]);
      expect(settled.slice(0, 5).map((s) => s.status === 'fulfilled' && s.value)).toEqual([
        true,
        true,
        true,
        true,
        true,
      ]);
      const failed = settled[5] as PromiseRejectedResult;
      expect(failed.status).toBe('rejected');
      expect(failed.reason).toBeInstanceOf(LakeUnavailableError);
      expect(String(failed.reason.message)).toMatch(
        /inserting a block: NOT NULL constraint failed: blocks\.stream_id/,
      );
      const rows = await store.listBlocks({ streamId: stream.streamId });
      expect(rows.map((r) => r.blockId).sort()).toEqual(headers.map((h) => h.blockId).sort());
    } finally {
      await store.close();
    }
  });
});
