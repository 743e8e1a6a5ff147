import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { IngestionService } from '../../src/ingestion.js';
import { blobPath, Lake, SqliteMetadataStore } from '../../src/lake.js';
import { LakeUnavailableError } from '../../src/telemetry/errors.js';
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

describe('SQLite lake closed', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('answers a call after close with LakeUnavailableError, and opens the file no more', async () => {
    const lake = Lake.open({ data: dir });
    const process = makeProcess();
    await lake.metadata.insertProcess(process);
    await lake.close();
    const openFiles = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(join(dir, 'lake.sqlite'));
        } catch {
          return false;
        }
      }).length;
    expect(openFiles()).toBe(0);
    await expect(lake.processes()).rejects.toThrow(LakeUnavailableError);
    await expect(lake.processes()).rejects.toThrow(
      `SQLite lake ${join(dir, 'lake.sqlite')}: the store was closed`,
    );
    expect(openFiles()).toBe(0);
  });
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

/** A SQLite store, ready, and another connection of the same file holding its write lock. */
async function lockedLake() {
  const { dir, cleanup } = tempDir();
  const file = join(dir, 'lake.sqlite');
  const store = new SqliteMetadataStore(file);
  await store.ready();
  const other = new Database(file);
  other.exec('BEGIN IMMEDIATE');
  return { store, other, cleanup };
}

describe('a SQLite lake another connection holds locked', () => {
  it('a call waiting for the lock when the store closes gives up, and does not open the file again', async () => {
    const { store, other, cleanup } = await lockedLake();
    try {
      const insert = store.insertProcess(makeProcess()).then(
        () => 'inserted',
        (error: Error) => error.message,
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      await store.close();
      other.exec('COMMIT');
      // Woken once the lock is free, it found the store closed: no row, no connection left open.
      expect(await insert).toMatch(/closed while this waited for a lock/);
      expect(other.prepare('SELECT count(*) AS n FROM processes').get()).toEqual({ n: 0 });
      other.close();
    } finally {
      cleanup();
    }
  });

  it('waits for the lock off the event loop: timers run meanwhile, and the write goes in once it is free', async () => {
    const { store, other, cleanup } = await lockedLake();
    try {
      const events: string[] = [];
      const insert = store.insertProcess(makeProcess()).then(
        () => events.push('inserted'),
        () => events.push('refused'),
      );
      // SQLite's own busy handler slept on the event loop: the insert was refused 5 s later,
      // before any timer ran.
      await new Promise((resolve) => setTimeout(resolve, 20));
      events.push('timer');
      other.exec('COMMIT');
      other.close();
      await insert;
      expect(events).toEqual(['timer', 'inserted']);
    } finally {
      await store.close();
      cleanup();
    }
  });

  it('fails a group of block rows at once: no row is written on its own once the lock is gone', async () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'lake.sqlite');
    const store = new SqliteMetadataStore(file);
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await store.insertProcess(process);
      await store.insertStream(stream);
      // Another thread holds the write lock a second longer than the store's busy timeout (5 s):
      // rows written one by one after the group failed each waited 5 s, on the event loop, and
      // the first of them found the lock gone.
      const holder = new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
         const Database = require(workerData.driver);
         const db = new Database(workerData.file);
         db.exec('BEGIN IMMEDIATE');
         parentPort.postMessage('locked');
         Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 6000);
         db.exec('COMMIT');
         db.close();`,
        {
          eval: true,
          workerData: { file, driver: createRequire(import.meta.url).resolve('better-sqlite3') },
        },
      );
      await once(holder, 'message');
      const blocks = [1, 2, 3].map((seed) => makeBlock(stream, 4, seed).block);
      const settled = await Promise.allSettled(
        blocks.map((b) => store.insertBlock(b, 10, blobPath(b.processId, b.streamId, b.blockId))),
      );
      expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected']);
      for (const s of settled)
        expect(String((s as PromiseRejectedResult).reason)).toMatch(/database is locked/);
      await once(holder, 'exit');
      expect(await store.listBlocks({ streamId: stream.streamId })).toEqual([]);
    } finally {
      await store.close();
      cleanup();
    }
  }, 30_000);
});

describe('a block whose row the database refused', () => {
  it('leaves no blob behind: a locked SQLite lake wrote no row, and the file goes', async () => {
    const { dir, cleanup } = tempDir();
    const service = new IngestionService({ data: dir });
    const blobFiles = (): string[] =>
      existsSync(join(dir, 'blobs'))
        ? (readdirSync(join(dir, 'blobs'), { recursive: true }) as string[]).filter((f) =>
            /\.[0-9a-f]{16}$/.test(f),
          )
        : [];
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await service.ingestProcess(process);
      await service.ingestStream(stream);
      const { block } = makeBlock(stream, 16, 1);
      // Another connection holds the write lock past the busy timeout (5 s).
      const other = new Database(join(dir, 'lake.sqlite'));
      other.exec('BEGIN IMMEDIATE');
      try {
        await expect(service.ingestBlock(block)).rejects.toThrow(/database is locked/);
      } finally {
        other.exec('COMMIT');
        other.close();
      }
      // A sink sends it again under a new name: once stored, its file is the only one.
      expect(blobFiles()).toEqual([]);
      expect(await service.ingestBlock(block)).toEqual({ inserted: true });
      expect(blobFiles()).toHaveLength(1);
    } finally {
      await service.close();
      cleanup();
    }
  }, 30_000);
});
