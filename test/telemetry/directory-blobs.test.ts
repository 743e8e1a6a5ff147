import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { blobPath, DirectoryBlobStore, LakeUnavailableError } from '../../src/lake.js';
import { DirectorySyncs } from '../../src/telemetry/lake/directory-syncs.js';
import {
  type CreateDurable,
  createDurable,
  createDurableMissing,
} from '../../src/telemetry/lake/durable-file.js';
import { tempDir } from './fixtures.js';

const STORE = fileURLToPath(new URL('../../src/telemetry/lake/directory-blobs.ts', import.meta.url));

function blob(seed: number, size = 1000): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (seed * 31 + i) & 0xff);
}

// Both ways of creating a blob file: the native addon (when it was built) and `fs` calls.
describe.each([
  { native: true, how: createDurable === undefined ? 'fs (the addon was not built)' : 'the native addon' },
  { native: false, how: 'fs calls' },
])('DirectoryBlobStore, files made with $how', ({ native }) => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('stores concurrent writes each once, and leaves no temporary file', async () => {
    const root = join(dir, 'batches');
    const store = new DirectoryBlobStore(root, { maxConcurrentWrites: 2, native });
    const processId = randomUUID();
    const streams = [randomUUID(), randomUUID(), randomUUID()];
    const paths = Array.from({ length: 90 }, (_, i) => blobPath(processId, streams[i % 3]!, randomUUID()));
    const shared = blobPath(processId, streams[0]!, randomUUID());
    try {
      // A slice of a larger Buffer, as request bodies often are: only its own bytes are stored.
      const big = Buffer.concat([Buffer.from([9, 9, 9]), Buffer.from(blob(7)), Buffer.from([9, 9, 9])]);
      const results = await Promise.all([
        ...paths.map((path, i) => store.putIfAbsent(path, blob(i))),
        ...Array.from({ length: 10 }, () => store.putIfAbsent(shared, big.subarray(3, 1003))),
      ]);
      expect(results.slice(0, 90).every((r) => r === 'created')).toBe(true);
      expect(results.slice(90).filter((r) => r === 'created')).toHaveLength(1);
      expect(results.slice(90).filter((r) => r === 'exists')).toHaveLength(9);
      for (const [i, path] of paths.entries()) expect(await store.get(path)).toEqual(Buffer.from(blob(i)));
      expect(await store.get(shared)).toEqual(Buffer.from(blob(7)));
      expect(existsSync(join(root, 'tmp'))).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('answers exists for the same bytes, differs for other bytes, and replaces atomically', async () => {
    const root = join(dir, 'compare');
    const store = new DirectoryBlobStore(root, { native });
    const processId = randomUUID();
    const streamId = randomUUID();
    const at = (): string => blobPath(processId, streamId, randomUUID());
    try {
      const stored = at();
      expect(await store.putIfAbsent(stored, blob(1))).toBe('created');
      expect(await store.putIfAbsent(stored, blob(1))).toBe('exists');
      expect(await store.putIfAbsent(stored, blob(2))).toBe('differs');
      expect(await store.get(stored)).toEqual(Buffer.from(blob(1)));
      // What a crash leaves under a final name: nothing written yet, the first part, or (after a
      // power loss) the right size with other bytes.
      const torn = [new Uint8Array(0), blob(3).subarray(0, 400), blob(4)];
      for (const bytes of torn) {
        const path = at();
        writeFileSync(join(root, path), bytes);
        expect(await store.putIfAbsent(path, blob(3))).toBe('differs');
        await store.replace(path, blob(3));
        expect(await store.get(path)).toEqual(Buffer.from(blob(3)));
        expect(await store.putIfAbsent(path, blob(3))).toBe('exists');
      }
      expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('fails one write with its path and errno, and stores the others', async () => {
    const root = join(dir, 'one-fails');
    const processId = randomUUID();
    const blocked = randomUUID();
    // A file where the stream's directory should be: that stream's blobs cannot be written.
    mkdirSync(join(root, 'blobs', processId), { recursive: true });
    writeFileSync(join(root, 'blobs', processId, blocked), 'in the way');
    const store = new DirectoryBlobStore(root, { native });
    try {
      const good = Array.from({ length: 8 }, () => blobPath(processId, randomUUID(), randomUUID()));
      const bad = blobPath(processId, blocked, randomUUID());
      const settled = await Promise.allSettled([
        ...good.map((path, i) => store.putIfAbsent(path, blob(i))),
        store.putIfAbsent(bad, blob(99)),
      ]);
      expect(settled.slice(0, 8).every((s) => s.status === 'fulfilled' && s.value === 'created')).toBe(true);
      const failed = settled[8];
      expect(failed?.status).toBe('rejected');
      const reason = (failed as PromiseRejectedResult).reason as LakeUnavailableError;
      expect(reason).toBeInstanceOf(LakeUnavailableError);
      expect(reason.message).toContain(`writing blob ${bad}`);
      expect(reason.message).toMatch(/ENOTDIR|EEXIST/);
      // The store goes on: a later write to a good directory succeeds.
      expect(await store.putIfAbsent(blobPath(processId, randomUUID(), randomUUID()), blob(1))).toBe(
        'created',
      );
    } finally {
      await store.close();
    }
  });

  it('writes again after close', async () => {
    const store = new DirectoryBlobStore(join(dir, 'reopen'), { native });
    const processId = randomUUID();
    const first = blobPath(processId, randomUUID(), randomUUID());
    expect(await store.putIfAbsent(first, blob(1))).toBe('created');
    await store.close();
    const second = blobPath(processId, randomUUID(), randomUUID());
    expect(await store.putIfAbsent(second, blob(2))).toBe('created');
    await store.close();
    expect(await store.get(second)).toEqual(Buffer.from(blob(2)));
  });

  it('does not keep a process alive once its writes are done, even unclosed', async () => {
    const root = join(dir, 'unclosed');
    const path = blobPath(randomUUID(), randomUUID(), randomUUID());
    const script = `
      const { DirectoryBlobStore } = await import(${JSON.stringify(STORE)});
      const store = new DirectoryBlobStore(${JSON.stringify(root)});
      console.log(await store.putIfAbsent(${JSON.stringify(path)}, new Uint8Array([1, 2, 3])));`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 30_000, // then killed: exits with a signal, not 0
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    // If the writer threads held the process open, it would not exit until killed.
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(out.trim()).toBe('created');
  });

  it('refuses a concurrency that is not a positive integer', () => {
    expect(() => new DirectoryBlobStore(dir, { maxConcurrentWrites: 0 })).toThrow(ConfigError);
    expect(() => new DirectoryBlobStore(dir, { maxConcurrentWrites: 1.5 })).toThrow(/maxConcurrentWrites/);
  });
});

describe('createDurable (native/durable-file.cc)', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);
  const addon = new URL('../../build/Release/dorsal_durable_file.node', import.meta.url);

  it('is there when the addon was built, and says why when it is not', () => {
    expect(createDurable !== undefined).toBe(existsSync(addon));
    expect(createDurableMissing === '').toBe(createDurable !== undefined);
  });

  it('creates a file once, leaves one that is there, and fails like Node with the failing call', async () => {
    if (createDurable === undefined) return;
    const path = join(dir, 'one');
    await createDurable(path, blob(1, 70_000), true);
    expect(readFileSync(path)).toEqual(Buffer.from(blob(1, 70_000)));
    const exists = await createDurable(path, blob(2), false).catch((e: NodeJS.ErrnoException) => e);
    expect(exists).toMatchObject({ code: 'EEXIST', syscall: 'open', path, errno: -17 });
    expect(String(exists)).toBe(`Error: EEXIST: file already exists, open '${path}'`);
    expect(readFileSync(path)).toEqual(Buffer.from(blob(1, 70_000)));
    const missing = join(dir, 'no-such-dir', 'two');
    await expect(createDurable(missing, blob(3), true)).rejects.toMatchObject({
      code: 'ENOENT',
      path: missing,
    });
    await expect(createDurable(join(dir, 'three'), new Uint8Array(0), true)).resolves.toBeUndefined();
    expect(readFileSync(join(dir, 'three')).length).toBe(0);
  });

  it('creates many files at once in one directory, sharing its syncs, each whole', async () => {
    if (createDurable === undefined) return;
    const many = join(dir, 'many');
    mkdirSync(many);
    const files = Array.from({ length: 64 }, (_, i) => join(many, String(i)));
    await Promise.all(files.map((file, i) => (createDurable as CreateDurable)(file, blob(i, 5000), true)));
    for (const [i, file] of files.entries()) expect(readFileSync(file)).toEqual(Buffer.from(blob(i, 5000)));
  });
});

describe('DirectorySyncs', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('shares one directory sync between the writers whose names it covers', async () => {
    const syncs = new DirectorySyncs();
    try {
      const mark = syncs.mark();
      await Promise.all(Array.from({ length: 10 }, () => syncs.sync(dir, mark)));
      expect(syncs.completed).toBe(1);
      // Covered already: no new sync.
      await syncs.sync(dir, mark);
      expect(syncs.completed).toBe(1);
      // A name made while a sync runs may have missed it: the next sync covers it, once for all.
      const running = syncs.sync(dir, syncs.mark());
      const during = syncs.mark();
      await Promise.all([running, ...Array.from({ length: 5 }, () => syncs.sync(dir, during))]);
      expect(syncs.completed).toBe(3);
    } finally {
      await syncs.close();
    }
  });

  it('rejects the writers of a sync that fails, and syncs again once the directory is back', async () => {
    const syncs = new DirectorySyncs();
    const gone = join(dir, 'not-yet');
    try {
      const mark = syncs.mark();
      const failed = await Promise.allSettled([syncs.sync(gone, mark), syncs.sync(gone, mark)]);
      for (const result of failed) {
        expect(result.status).toBe('rejected');
        expect(String((result as PromiseRejectedResult).reason)).toContain('ENOENT');
      }
      mkdirSync(gone);
      await syncs.sync(gone, mark);
      expect(syncs.completed).toBe(1);
    } finally {
      await syncs.close();
    }
  });

  it('syncs a directory by its path each time: one removed by retention is not synced through what was opened before', async () => {
    const syncs = new DirectorySyncs();
    const stream = join(dir, 'stream');
    try {
      mkdirSync(stream);
      await syncs.sync(stream, syncs.mark());
      rmdirSync(stream);
      // A handle kept from the first sync synced the removed directory, and said a name made
      // in the one made again was durable.
      await expect(syncs.sync(stream, syncs.mark())).rejects.toThrow(/ENOENT/);
      mkdirSync(stream);
      await syncs.sync(stream, syncs.mark());
      expect(syncs.completed).toBe(2);
    } finally {
      await syncs.close();
    }
  });
});
