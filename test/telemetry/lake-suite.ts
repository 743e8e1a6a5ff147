import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlockConflictError,
  LakeNotFoundError,
  LakeUnavailableError,
  RecordConflictError,
  UnknownProcessError,
  UnknownStreamError,
  WireFormatError,
} from '../../src/telemetry/errors.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import type { Lake } from '../../src/telemetry/lake/lake.js';
import { type MetadataStore, partitionBlobPaths, uniqueBlobPath } from '../../src/telemetry/lake/types.js';
import {
  type BlockHeader,
  encodeBlock,
  encodeDropReport,
  encodePayloadBlob,
  encodeProcessInfo,
  encodeStreamInfo,
  formatRfc3339Ns,
  type StreamInfo,
} from '../../src/telemetry/wire/index.js';
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
    /** Every blob path written through the lake handles of this suite. */
    const written: string[] = [];
    const recordWrites = (handle: Lake): Lake => {
      const put = handle.blobs.putIfAbsent.bind(handle.blobs);
      handle.blobs.putIfAbsent = (path, bytes) => {
        written.push(path);
        return put(path, bytes);
      };
      return handle;
    };

    beforeAll(async () => {
      made = await fixture();
      lake = recordWrites(await made.open());
      service = new IngestionService(lake);
    });

    it('closes once, however often asked (a server closes the lake it was given, and so does its owner)', async () => {
      const other = await made.open();
      await other.ready();
      // PostgreSQL's pool refused a second end(): dorsal serve --db … exited 1 on SIGTERM.
      await expect(Promise.all([other.close(), other.close()])).resolves.toBeDefined();
      await expect(other.close()).resolves.toBeUndefined();
    });

    /** Blobs written that are still there although no row points at them. */
    const leftovers = async (): Promise<string[]> => {
      const left: string[] = [];
      for (const path of written) {
        const blockId = path.split('/')[3]?.slice(0, 36) ?? '';
        if ((await lake.block(blockId))?.blobPath === path) continue;
        const found = await lake.blobs.get(path).then(
          () => true,
          (error: unknown) => {
            if (error instanceof LakeNotFoundError) return false;
            throw error;
          },
        );
        if (found) left.push(path);
      }
      return left;
    };

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

    it('names the block and its blob when a stored payload does not decode', async () => {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const { block } = makeBlock(stream, 50);
      await service.ingestProcess(process);
      await service.ingestStream(stream);
      expect(await service.insertBlock(encodeBlock(block))).toEqual({ inserted: true });
      const row = (await lake.block(block.blockId))!;
      // Damaged where it is kept: a torn copy, a disk error.
      const whole = await lake.blobs.get(row.blobPath);
      await lake.blobs.replace(row.blobPath, whole.subarray(0, Math.floor(whole.length / 2)));
      const read = lake.readBlock(block.blockId);
      await expect(read).rejects.toThrow(WireFormatError);
      await expect(read).rejects.toThrow(
        `block ${block.blockId} (blob ${row.blobPath}): payload: malformed CBOR`,
      );
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

    it('keeps the first process and stream stored under an id and refuses other content under it with a conflict', async () => {
      const process = makeProcess({ properties: { zeta: '1', alpha: '2', 'dorsal.spine': '[]' } });
      const stream = makeStream(process.processId);
      expect(await service.ingestProcess(process)).toEqual({ inserted: true });
      // The same content with its properties in another order is the same record.
      const reordered = {
        ...process,
        properties: Object.fromEntries(Object.entries(process.properties).reverse()),
      };
      expect(await service.ingestProcess(reordered)).toEqual({ inserted: false });
      await expect(service.ingestProcess({ ...process, exe: 'another' })).rejects.toThrow(
        RecordConflictError,
      );
      await expect(service.ingestProcess({ ...process, startTicks: process.startTicks + 1 })).rejects.toThrow(
        `process ${process.processId} is already stored with another startTicks; a new process needs a new id`,
      );
      expect(await service.ingestStream(stream)).toEqual({ inserted: true });
      expect(await service.ingestStream({ ...stream })).toEqual({ inserted: false });
      const relaid = { ...stream, objectsLayouts: [...stream.objectsLayouts, ...stream.objectsLayouts] };
      await expect(service.ingestStream(relaid)).rejects.toThrow(
        `stream ${stream.streamId} is already stored with another objectsLayouts`,
      );
      const other = makeProcess();
      await service.ingestProcess(other);
      await expect(service.ingestStream({ ...stream, processId: other.processId })).rejects.toThrow(
        'with another processId',
      );
      await expect(service.ingestStream({ ...stream, tags: ['log'] })).rejects.toThrow('with another tags');
      // The first records are what the lake holds.
      expect((await lake.process(process.processId))?.exe).toBe(process.exe);
      expect((await lake.streams({ processId: process.processId })).map((s) => s.objectsLayouts)).toEqual([
        stream.objectsLayouts,
      ]);
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
      expect(await leftovers()).toEqual([]);
    });

    it('of two payloads sent under one block id at once, stores the one it acknowledges and refuses the other', async () => {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await service.ingestProcess(process);
      await service.ingestStream(stream);
      // A second server on the same lake whose row insert waits until the first server has
      // answered a send of other bytes (of the same size) under the same block id.
      const other = recordWrites(await made.open());
      const insert = other.metadata.insertBlock.bind(other.metadata);
      let reached = (): void => {};
      const atInsert = new Promise<void>((resolve) => {
        reached = resolve;
      });
      let go = (): void => {};
      const gate = new Promise<void>((resolve) => {
        go = resolve;
      });
      other.metadata.insertBlock = async (...args) => {
        reached();
        await gate;
        return insert(...args);
      };
      const otherService = new IngestionService(other);
      try {
        const a = makeBlock(stream, 16, 1);
        const b = { ...a.block, payload: makeBlock(stream, 16, 3).block.payload };
        expect(encodePayloadBlob(b.payload).length).toBe(encodePayloadBlob(a.block.payload).length);
        const first = otherService.ingestBlock(a.block);
        await atInsert;
        const second = await service.ingestBlock(b).then(
          (result) => result,
          (error: unknown) => error,
        );
        go();
        const firstResult = await first.then(
          (result) => result,
          (error: unknown) => error,
        );
        // The send whose row went in first wins; the other learns its bytes were refused.
        expect(second).toEqual({ inserted: true });
        expect(firstResult).toBeInstanceOf(BlockConflictError);
        const stored = await lake.readBlock(a.block.blockId);
        expect(Buffer.from(await lake.readBlob(stored.block))).toEqual(
          Buffer.from(encodePayloadBlob(b.payload)),
        );
        expect(stored.block.payloadSize).toBe(encodePayloadBlob(b.payload).length);
        expect(await leftovers()).toEqual([]);
      } finally {
        await otherService.close();
      }
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
      expect(await leftovers()).toEqual([]);
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

    it('stores a drop report once, however often it is sent, and refuses one of an unknown process', async () => {
      const process = makeProcess();
      const report = {
        reportId: randomUUID(),
        processId: process.processId,
        time: formatRfc3339Ns(1n),
        counts: { spoolFull: 3, shutdown: 2 },
      };
      await expect(service.insertDrops(encodeDropReport(report))).rejects.toThrow(UnknownProcessError);
      await service.ingestProcess(process);
      expect(await service.insertDrops(encodeDropReport(report))).toEqual({ inserted: true });
      // A sink that never got the answer sends it again, perhaps more than once, at once.
      const again = await Promise.all([1, 2, 3].map(() => service.insertDrops(encodeDropReport(report))));
      expect(again).toEqual([{ inserted: false }, { inserted: false }, { inserted: false }]);
      const stored = await lake.drops(process.processId);
      expect(stored.map((r) => [r.reportId, r.total, r.counts])).toEqual([
        [report.reportId, 5, report.counts],
      ]);
    });

    it("keeps the analytics' partition rows per process, and deletes them with their files' paths as garbage", async () => {
      const processId = randomUUID();
      const row = (
        view: string,
        insertTime: string,
        firstBlockInsertTime: string,
        fileSchema: string | null,
      ) => ({
        partitionId: randomUUID(),
        view,
        processId,
        streamId: randomUUID(),
        blockIds: [randomUUID(), randomUUID()],
        rowCount: 42,
        dataBytes: 1000,
        coverageBytes: 100,
        insertTime,
        firstBlockInsertTime,
        fileSchema,
      });
      // Retention goes by a partition's first block, not by when the partition was made: the old
      // one, of a block of long ago, was made last.
      const recent = row(
        'timings',
        formatRfc3339Ns(2_000_000_000_000_000_000n),
        formatRfc3339Ns(1_999_999_999_000_000_000n),
        '1:0123456789abcdef',
      );
      // What its files hold kept as it was, null (a row of a dorsal before it said) included.
      const old = row(
        'stream_ticks',
        formatRfc3339Ns(2_000_000_000_000_000_001n),
        formatRfc3339Ns(500n),
        null,
      );
      expect(await lake.metadata.insertPartition(recent)).toBe(true);
      expect(await lake.metadata.insertPartition(old)).toBe(true);
      expect(await lake.metadata.insertPartition(old)).toBe(false);
      // Oldest first: of two partitions of the same blocks, readers keep the first.
      expect(await lake.metadata.listPartitions(processId)).toEqual([recent, old]);
      expect(await lake.metadata.listPartitions(randomUUID())).toEqual([]);
      // Their files go to blob storage under views/…, which the stores accept.
      const paths = partitionBlobPaths(old);
      expect(paths.data).toBe(`views/stream_ticks/process_id=${processId}/${old.partitionId}.parquet`);
      expect(await lake.blobs.putIfAbsent(paths.data, new Uint8Array([1, 2, 3]))).toBe('created');
      // Deleted: the row goes, the paths are recorded as garbage until the blobs are gone.
      const gone = await lake.metadata.deletePartitionsBefore(formatRfc3339Ns(1_000_000n), 10);
      expect(gone.sort()).toEqual([paths.coverage, paths.data].sort());
      expect(await lake.metadata.listGarbage(1000)).toEqual(expect.arrayContaining(gone));
      await lake.blobs.delete(gone);
      await lake.metadata.forgetGarbage(gone);
      expect(await lake.metadata.listPartitions(processId)).toEqual([recent]);
      expect(await lake.metadata.deletePartitions([recent.partitionId, randomUUID()])).toHaveLength(2);
      expect(await lake.metadata.listPartitions(processId)).toEqual([]);
      await lake.metadata.forgetGarbage(Object.values(partitionBlobPaths(recent)));
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

    it('samples stream ids spread over the ids, without their rows', async () => {
      const process = makeProcess();
      await service.ingestProcess(process);
      for (let i = 0; i < 12; i++) await service.ingestStream(makeStream(process.processId));
      const all = (await lake.streams()).map((s) => s.streamId).sort();
      const sample = await lake.metadata.sampleStreamIds(8);
      expect(sample).toHaveLength(8);
      expect(sample).toEqual([...new Set(sample)].sort());
      expect(sample[0]).toBe(all[0]);
      // Evenly spread by rank: the last sampled is in the last eighth of the ids.
      expect(all.indexOf(sample[7]!)).toBeGreaterThanOrEqual(Math.floor((7 * all.length) / 8));
      expect(await lake.metadata.sampleStreamIds(all.length + 5)).toEqual(all);
      expect(await lake.metadata.sampleStreamIds(0)).toEqual([]);
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

    /** A stream stored with its process: block rows go in only under a stream that has a row. */
    const storedStream = async (s: MetadataStore = store): Promise<StreamInfo> => {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await s.insertProcess(process);
      await s.insertStream(stream);
      return stream;
    };
    const headers = (n: number, stream: StreamInfo): BlockHeader[] =>
      Array.from({ length: n }, () => {
        const { payload: _payload, ...header } = makeBlock(stream, 4).block;
        return header;
      });
    const path = (h: BlockHeader): string => uniqueBlobPath(h.processId, h.streamId, h.blockId);

    it('fail one bad row alone: the rows that arrived with it are stored', async () => {
      const stream = await storedStream();
      const good = headers(5, stream);
      // A row the database refuses (NOT NULL), in the same turn of the event loop as the others.
      const bad = { ...good[0]!, blockId: randomUUID(), beginTime: null } as unknown as BlockHeader;
      const settled = await Promise.allSettled([
        ...good.map((h) => store.insertBlock(h, 10, path(h))),
        store.insertBlock(bad, 10, path(bad)),
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
      const stream = await storedStream();
      const blocks = headers(6, stream);
      const sends = [...blocks, blocks[0]!, blocks[3]!, blocks[3]!].map((h) => ({ h, path: path(h) }));
      const results = await Promise.all(sends.map(({ h, path }) => store.insertBlock(h, 10, path)));
      // Per block, one send's row went in, and that send is told so: the row names its blob.
      const rows = await store.listBlocks({ streamId: stream.streamId });
      expect(rows).toHaveLength(6);
      for (const row of rows) {
        const mine = sends
          .map((send, i) => ({ ...send, inserted: results[i] }))
          .filter((s) => s.h === blocks.find((b) => b.blockId === row.blockId));
        expect(mine.filter((s) => s.inserted).map((s) => s.path)).toEqual([row.blobPath]);
      }
      // Sent again later, alone: not inserted.
      expect(await store.insertBlock(blocks[5]!, 10, path(blocks[5]!))).toBe(false);
    });

    it("insert a block row only under a stream that has a row, of the block's process", async () => {
      const stream = await storedStream();
      const orphan = makeStream(stream.processId);
      const [mine, elsewhere, lost] = [...headers(1, stream), ...headers(1, stream), ...headers(1, orphan)];
      const other = await storedStream();
      const moved = { ...elsewhere!, processId: other.processId };
      // Alone and in one group with a good row: neither is inserted, the good one is.
      expect(await store.insertBlock(lost!, 10, path(lost!))).toBe(false);
      expect(await Promise.all([mine, moved, lost].map((h) => store.insertBlock(h!, 10, path(h!))))).toEqual([
        true,
        false,
        false,
      ]);
      expect((await store.listBlocks({ processId: stream.processId })).map((r) => r.blockId)).toEqual([
        mine!.blockId,
      ]);
      // A stream whose process has no row is not inserted either.
      expect(await store.insertStream(makeStream(randomUUID()))).toBe(false);
    });

    it('close() writes the rows still waiting for their group', async () => {
      const closing = open();
      await closing.ready();
      const stream = await storedStream(closing);
      const blocks = headers(3, stream);
      const inserts = blocks.map((h) => closing.insertBlock(h, 10, path(h)));
      await closing.close();
      expect(await Promise.all(inserts)).toEqual([true, true, true]);
      const rows = await store.listBlocks({ streamId: stream.streamId });
      expect(rows.map((r) => r.blockId).sort()).toEqual(blocks.map((h) => h.blockId).sort());
    });
  });
}
