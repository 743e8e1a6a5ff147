import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlockConflictError,
  IngestionService,
  UnknownProcessError,
  UnknownStreamError,
} from '../../src/ingestion.js';
import {
  blobPath,
  type Lake,
  LakeNotFoundError,
  LakeUnavailableError,
  type MetadataStore,
} from '../../src/lake.js';
import {
  type BlockHeader,
  encodeBlock,
  encodeProcessInfo,
  encodeStreamInfo,
  formatRfc3339Ns,
} from '../../src/wire.js';
import { makeBlock, makeProcess, makeStream } from './fixtures.js';

/** How a lake under test is made and cleaned up. */
export interface LakeFixture {
  readonly open: () => Promise<Lake>;
  readonly cleanup: () => Promise<void>;
}

/**
 * The behaviour every lake must have, run against each implementation: round trips of every
 * record, idempotent re-sends, references checked, listings.
 */
export function lakeSuite(name: string, fixture: () => Promise<LakeFixture>): void {
  describe(`lake: ${name}`, () => {
    let lake: Lake;
    let service: IngestionService;
    let made: LakeFixture;

    beforeAll(async () => {
      made = await fixture();
      lake = await made.open();
      service = new IngestionService(lake);
    });

    afterAll(async () => {
      await service.close();
      await made.cleanup();
    });

    it('is ready', async () => {
      await expect(service.ready()).resolves.toBeUndefined();
    });

    it('round-trips a process, a stream and a block', async () => {
      const process = makeProcess({ parentProcessId: randomUUID() });
      const stream = makeStream(process.processId, { tags: ['messages', 'log'] });
      const { block, dependencies, objects } = makeBlock(stream, 500);
      expect(await service.insertProcess(encodeProcessInfo(process))).toEqual({ inserted: true });
      expect(await service.insertStream(encodeStreamInfo(stream))).toEqual({ inserted: true });
      expect(await service.insertBlock(encodeBlock(block))).toEqual({ inserted: true });

      const storedProcess = await lake.process(process.processId);
      expect(storedProcess).toMatchObject(process);
      expect(storedProcess?.insertTime).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
      expect(await lake.stream(stream.streamId)).toMatchObject(stream);
      const rows = await lake.blocks({ streamId: stream.streamId });
      expect(rows).toHaveLength(1);
      const { payload, ...header } = block;
      expect(rows[0]).toMatchObject(header);
      expect(rows[0]?.payloadSize).toBeGreaterThan(0);
      const read = await lake.readBlock(block.blockId);
      expect(Buffer.from(read.payload.objects)).toEqual(Buffer.from(objects));
      expect(Buffer.from(read.payload.dependencies)).toEqual(Buffer.from(dependencies));
    });

    it('stores blocks that arrive together each once, re-sends among them included', async () => {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await service.ingestProcess(process);
      await service.ingestStream(stream);
      const blocks = Array.from({ length: 24 }, () => makeBlock(stream, 10).block);
      const sends = [...blocks, ...blocks.slice(0, 8)].map((block) => service.ingestBlock(block));
      const results = await Promise.all(sends);
      // Per block, exactly one of its sends inserted it.
      for (let i = 0; i < 24; i++) {
        const mine = i < 8 ? [results[i], results[24 + i]] : [results[i]];
        expect(mine.filter((r) => r?.inserted)).toHaveLength(1);
      }
      const rows = await lake.blocks({ streamId: stream.streamId });
      expect(rows.map((r) => r.blockId).sort()).toEqual(blocks.map((b) => b.blockId).sort());
    });

    it('stores a re-sent record once', async () => {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const { block } = makeBlock(stream, 100);
      await service.ingestProcess(process);
      expect(await service.ingestProcess(process)).toEqual({ inserted: false });
      await service.ingestStream(stream);
      expect(await service.ingestStream(stream)).toEqual({ inserted: false });
      const bytes = encodeBlock(block);
      const results = await Promise.all([1, 2, 3, 4].map(() => service.insertBlock(bytes)));
      expect(results.filter((r) => r.inserted)).toHaveLength(1);
      expect(await service.insertBlock(bytes)).toEqual({ inserted: false });
      expect(await lake.blocks({ streamId: stream.streamId })).toHaveLength(1);
      expect((await lake.readBlock(block.blockId)).payload.objects.length).toBe(100 * 32);
    });

    it('keeps the first block stored under an id and refuses another under it with a conflict', async () => {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await service.ingestProcess(process);
      await service.ingestStream(stream);
      const first = makeBlock(stream, 20, 1);
      const second = makeBlock(stream, 30, 2);
      expect(await service.ingestBlock(first.block)).toEqual({ inserted: true });
      expect(await service.ingestBlock(first.block)).toEqual({ inserted: false });
      const again = { ...second.block, blockId: first.block.blockId };
      await expect(service.ingestBlock(again)).rejects.toThrow(BlockConflictError);
      await expect(service.ingestBlock(again)).rejects.toThrow(
        `block ${first.block.blockId} is already stored with another payload`,
      );
      const retimed = { ...first.block, endTime: formatRfc3339Ns(1_800_000_000_000_000_000n) };
      await expect(service.ingestBlock(retimed)).rejects.toThrow('is already stored with another endTime');
      const read = await lake.readBlock(first.block.blockId);
      expect(Buffer.from(read.payload.objects)).toEqual(Buffer.from(first.objects));
      expect(read.block.objectCount).toBe(20);
    });

    it('refuses a block id stored under another stream and leaves no blob behind', async () => {
      const process = makeProcess();
      const [one, two] = [makeStream(process.processId), makeStream(process.processId)];
      await service.ingestProcess(process);
      await service.ingestStream(one);
      await service.ingestStream(two);
      const { block } = makeBlock(one, 20, 1);
      expect(await service.ingestBlock(block)).toEqual({ inserted: true });
      const moved = { ...block, streamId: two.streamId };
      for (let i = 0; i < 2; i++) {
        await expect(service.ingestBlock(moved)).rejects.toThrow(
          `block ${block.blockId} is already stored under stream ${one.streamId}`,
        );
      }
      await expect(lake.blobs.get(blobPath(process.processId, two.streamId, block.blockId))).rejects.toThrow(
        LakeNotFoundError,
      );
      expect(await lake.blocks({ streamId: two.streamId })).toEqual([]);
      expect((await lake.readBlock(block.blockId)).block.streamId).toBe(one.streamId);
    });

    it('refuses a stream of an unknown process and a block of an unknown stream', async () => {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await expect(service.ingestStream(stream)).rejects.toThrow(UnknownProcessError);
      await expect(service.ingestStream(stream)).rejects.toThrow(`unknown process ${process.processId}`);
      await service.ingestProcess(process);
      const { block } = makeBlock(stream);
      await expect(service.ingestBlock(block)).rejects.toThrow(UnknownStreamError);
      await service.ingestStream(stream);
      const other = makeProcess();
      await service.ingestProcess(other);
      await expect(service.ingestBlock({ ...block, processId: other.processId })).rejects.toThrow(
        `it belongs to process ${process.processId}, not ${other.processId}`,
      );
      expect(await lake.block(block.blockId)).toBeUndefined();
      await service.ingestBlock(block);
      expect(await lake.block(block.blockId)).toBeDefined();
    });

    it('lists streams and blocks by process, tag, stream and time', async () => {
      const process = makeProcess();
      await service.ingestProcess(process);
      const logs = makeStream(process.processId, { tags: ['log'] });
      const ticks = makeStream(process.processId, { tags: ['messages'] });
      await service.ingestStream(logs);
      await service.ingestStream(ticks);
      const blocks = [1, 2, 3].map((seed) => makeBlock(ticks, 10, seed).block);
      for (const block of blocks.reverse()) await service.ingestBlock(block);
      await service.ingestBlock(makeBlock(logs, 5).block);

      expect((await lake.streams({ processId: process.processId })).map((s) => s.streamId).sort()).toEqual(
        [logs.streamId, ticks.streamId].sort(),
      );
      expect(
        (await lake.streams({ processId: process.processId, tag: 'log' })).map((s) => s.streamId),
      ).toEqual([logs.streamId]);
      expect((await lake.processes()).map((p) => p.processId)).toContain(process.processId);
      const listed = await lake.blocks({ streamId: ticks.streamId });
      expect(listed.map((b) => b.beginTicks)).toEqual([1000, 2000, 3000]);
      expect(await lake.blocks({ processId: process.processId })).toHaveLength(4);
      const from = formatRfc3339Ns(1_700_000_001_002_000_000n);
      expect((await lake.blocks({ streamId: ticks.streamId, from })).map((b) => b.beginTicks)).toEqual([
        2000, 3000,
      ]);
      expect(await lake.blocks({ streamId: ticks.streamId, limit: 1 })).toHaveLength(1);
    });
  });
}

/** A metadata store to test on its own, and the message its database gives for a NOT NULL refusal. */
export interface StoreFixture {
  /** A new store on the fixture's database (each call). */
  readonly open: () => MetadataStore;
  readonly refusal: RegExp;
  readonly cleanup: () => Promise<void>;
}

/** Block rows written in groups (RowGroups), against one metadata store. */
export function blockRowGroupSuite(name: string, fixture: () => Promise<StoreFixture>): void {
  describe(`${name} block rows inserted together`, () => {
    let open: () => MetadataStore;
    let store: MetadataStore;
    let refusal: RegExp;
    let cleanup: () => Promise<void>;

    beforeAll(async () => {
      ({ open, refusal, cleanup } = await fixture());
      store = open();
      await store.ready();
    });
    afterAll(async () => {
      await store.close();
      await cleanup();
    });

    const headers = (n: number, streamId: string): BlockHeader[] =>
      Array.from({ length: n }, () => {
        const { payload: _payload, ...header } = makeBlock(makeStream(makeProcess().processId), 4).block;
        return { ...header, streamId } as BlockHeader;
      });

    it('fail one bad row alone: the rows that arrived with it are stored', async () => {
      const stream = makeStream(makeProcess().processId);
      const good = headers(5, stream.streamId);
      // A row the database refuses (NOT NULL), in the same turn of the event loop as the others.
      const bad = { ...good[0]!, blockId: randomUUID(), streamId: null } as unknown as BlockHeader;
      const settled = await Promise.allSettled([
        ...good.map((h) => store.insertBlock(h, 10)),
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
      expect(String(failed.reason.message)).toMatch(refusal);
      const rows = await store.listBlocks({ streamId: stream.streamId });
      expect(rows.map((r) => r.blockId).sort()).toEqual(good.map((h) => h.blockId).sort());
    });

    it('a block sent twice in one group is inserted by exactly one of its sends', async () => {
      const stream = makeStream(makeProcess().processId);
      const blocks = headers(6, stream.streamId);
      const sends = [...blocks, blocks[0]!, blocks[3]!, blocks[3]!];
      const results = await Promise.all(sends.map((h) => store.insertBlock(h, 10)));
      expect(results.slice(0, 6)).toEqual([true, true, true, true, true, true]);
      expect(results.slice(6)).toEqual([false, false, false]);
      expect(await store.listBlocks({ streamId: stream.streamId })).toHaveLength(6);
      // Sent again later, alone: not inserted.
      expect(await store.insertBlock(blocks[5]!, 10)).toBe(false);
    });

    it('close() writes the rows still waiting for their group', async () => {
      const stream = makeStream(makeProcess().processId);
      const blocks = headers(3, stream.streamId);
      const closing = open();
      await closing.ready();
      const inserts = blocks.map((h) => closing.insertBlock(h, 10));
      await closing.close();
      expect(await Promise.all(inserts)).toEqual([true, true, true]);
      const rows = await store.listBlocks({ streamId: stream.streamId });
      expect(rows.map((r) => r.blockId).sort()).toEqual(blocks.map((h) => h.blockId).sort());
    });
  });
}
