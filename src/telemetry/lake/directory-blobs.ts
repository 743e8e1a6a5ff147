import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import {
  access,
  type FileHandle,
  open,
  readdir,
  readFile,
  rename,
  rmdir,
  stat,
  unlink,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { makeDirectories } from '../../directories.js';
import { ConfigError } from '../../errors.js';
import { asLakeError, LakeConfigError, LakeNotFoundError } from '../errors.js';
import { DirectorySyncs } from './directory-syncs.js';
import { type CreateDurable, createDurable } from './durable-file.js';
import { BLOB_DIRECTORY, BLOB_PATH, type BlobStore, type BlobWriteOutcome } from './types.js';

/** Options of the directory blob store. */
export interface DirectoryBlobOptions {
  /**
   * fsync each blob (and its directory) before a write resolves (default true). Turning it off
   * trades durability across power loss for speed; a crash of the process loses nothing either way.
   */
  readonly fsync?: boolean;
  /**
   * Blob writes under way at once (default 4); more wait their turn. A write's file calls run on
   * libuv's thread pool (4 threads unless `UV_THREADPOOL_SIZE` says otherwise), where a sync holds
   * a thread while the disk works: a program that needs the pool for other work at the same time
   * can lower this, or enlarge the pool.
   */
  readonly maxConcurrentWrites?: number;
  /**
   * Create each blob file with dorsal's native addon when it was built (default true): open,
   * write, fdatasync, close and the directory's sync in one task on the pool instead of five
   * round trips. `false`: with `fs` calls.
   */
  readonly native?: boolean;
}

/** Known directories stop being remembered beyond this many (then they are checked again). */
const MAX_KNOWN_DIRS = 10_000;

/** Unlinks under way at once when deleting: each is a trip through libuv's pool. */
const DELETES_AT_ONCE = 8;

const ifMissing = (error: NodeJS.ErrnoException): void => {
  if (error.code !== 'ENOENT') throw error;
};
const ifMissingOrNotEmpty = (error: NodeJS.ErrnoException): void => {
  if (error.code !== 'ENOENT' && error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
};
/** A directory removed under a write: at its `open`, or while it was being made (`mkdir`, `stat`). */
const isMissingDirectory = (error: unknown): boolean => (error as NodeJS.ErrnoException).code === 'ENOENT';
/** The name of a temporary file of `replace` (see `overwrite`). */
const TEMPORARY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;
/** Tries of a blob write whose directories retention keeps removing under it. */
const CREATE_TRIES = 8;

/**
 * Blobs as files under a root directory (`{root}/blobs/{process}/{stream}/{block}.{suffix}`). A write
 * creates its final name with `O_EXCL` (create-only: it fails if a file is there), writes,
 * fdatasyncs the file, then syncs its directory; the directory syncs of writes under way at once
 * are shared (a group commit: in the addon, or DirectorySyncs). A file that is already there is compared with
 * the blob (`'exists'` or `'differs'`, see `BlobStore.putIfAbsent`). A replacement goes to a
 * temporary file, synced, then renamed over the final name. Readers find blobs through block
 * rows, which are inserted only once a write resolved, so they never meet a blob being written.
 *
 * A new blob is one task on libuv's thread pool (create, write, fdatasync, close, the directory's
 * sync: the native addon, see durable-file.ts), or, without the addon, five `fs` calls; nothing
 * blocks the event loop.
 * (Writer threads of the store's own cost more: a message each way woke a thread, 150–350 µs
 * under load on a 2-core VM; so does each pool round trip under load, 100–300 µs.)
 *
 * @example
 * const blobs = new DirectoryBlobStore('./dorsal-data');
 */
export class DirectoryBlobStore implements BlobStore {
  readonly kind = 'directory';
  readonly root: string;
  private readonly fsync: boolean;
  private readonly maxConcurrent: number;
  private readonly createFile: CreateDurable | undefined;
  private readonly syncs = new DirectorySyncs();
  /** Directories made (and their new names synced), or being made. */
  private readonly dirs = new Map<string, Promise<void>>();
  /** The last write to each path still under way: a write to the same path waits for it. */
  private readonly writing = new Map<string, Promise<unknown>>();
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(root: string, options: DirectoryBlobOptions = {}) {
    const max = options.maxConcurrentWrites ?? 4;
    if (!Number.isSafeInteger(max) || max < 1 || max > 1024) {
      throw new ConfigError(`maxConcurrentWrites must be an integer in [1, 1024], got ${max}`);
    }
    this.root = root;
    this.fsync = options.fsync ?? true;
    this.maxConcurrent = max;
    this.createFile = options.native === false ? undefined : createDurable;
  }

  async ping(): Promise<void> {
    try {
      await makeDirectories(join(this.root, 'tmp'));
      await access(join(this.root, 'tmp'), constants.W_OK);
    } catch (error) {
      throw asLakeError(`blob directory ${this.root} is not writable`, error);
    }
  }

  putIfAbsent(path: string, bytes: Uint8Array): Promise<BlobWriteOutcome> {
    return this.write(path, async (final) => {
      for (let tries = 1; ; tries++) {
        try {
          return await this.create(final, bytes);
        } catch (error) {
          // Retention (perhaps in another process) removed the stream's or the process's
          // directory since it was made here, or while it was being made: made again.
          if (!isMissingDirectory(error) || tries >= CREATE_TRIES) throw error;
          this.dirs.delete(dirname(final));
        }
      }
    });
  }

  async replace(path: string, bytes: Uint8Array): Promise<void> {
    await this.write(path, (final) => this.overwrite(final, bytes));
  }

  async listUnder(directory: string, limit: number, before = Number.POSITIVE_INFINITY): Promise<string[]> {
    if (!BLOB_DIRECTORY.test(directory))
      throw new LakeConfigError(`not a blob directory: ${JSON.stringify(directory)}`);
    try {
      const entries = await readdir(join(this.root, directory), { withFileTypes: true });
      const paths: string[] = [];
      for (const entry of entries) {
        if (paths.length >= limit) break;
        const path = `${directory}${entry.name}`;
        if (!entry.isFile() || !BLOB_PATH.test(path)) continue;
        if (before !== Number.POSITIVE_INFINITY) {
          const modified = await stat(join(this.root, path)).then(
            (stats) => stats.mtimeMs,
            () => Number.POSITIVE_INFINITY,
          );
          if (!(modified < before)) continue;
        }
        paths.push(path);
      }
      return paths;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw asLakeError(`listing blobs under ${this.root}`, error);
    }
  }

  async get(path: string): Promise<Uint8Array> {
    try {
      return await readFile(this.resolve(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new LakeNotFoundError(`no blob at ${path}`);
      throw asLakeError(`reading blob ${path} under ${this.root}`, error);
    }
  }

  /**
   * Unlinks the blobs, then removes their stream and process directories if that left them empty
   * (`rmdir` refuses a directory that is not, so one a write is filling stays). A write into a
   * directory removed under it makes the directory again.
   */
  async delete(paths: readonly string[]): Promise<void> {
    const files = paths.map((path) => this.resolve(path));
    const dirs = new Set(files.map((file) => dirname(file)));
    try {
      for (let at = 0; at < files.length; at += DELETES_AT_ONCE) {
        await Promise.all(files.slice(at, at + DELETES_AT_ONCE).map((file) => unlink(file).catch(ifMissing)));
      }
      for (const dir of [...dirs, ...new Set([...dirs].map((d) => dirname(d)))]) {
        this.dirs.delete(dir);
        await rmdir(dir).catch(ifMissingOrNotEmpty);
      }
    } catch (error) {
      throw asLakeError(`deleting blobs under ${this.root}`, error);
    }
  }

  async sweepTemporary(before: number): Promise<number> {
    const tmp = join(this.root, 'tmp');
    try {
      let swept = 0;
      for (const name of await readdir(tmp)) {
        if (!TEMPORARY.test(name)) continue;
        const file = join(tmp, name);
        const modified = await stat(file).then(
          (stats) => stats.mtimeMs,
          () => Number.POSITIVE_INFINITY,
        );
        if (!(modified < before)) continue;
        await unlink(file).catch(ifMissing);
        swept++;
      }
      return swept;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw asLakeError(`sweeping temporary files under ${this.root}`, error);
    }
  }

  /** Waits for the writes under way and closes the directory handles. */
  async close(): Promise<void> {
    while (this.writing.size > 0) await Promise.all(this.writing.values());
    await this.syncs.close();
  }

  /** Runs `op` on the blob's file: after any write to the same path, within the concurrency limit. */
  private write<T>(path: string, op: (final: string) => Promise<T>): Promise<T> {
    let final: string;
    try {
      final = this.resolve(path);
    } catch (error) {
      return Promise.reject(error);
    }
    const run = async (): Promise<T> => {
      await this.acquire();
      try {
        return await op(final);
      } catch (error) {
        throw asLakeError(`writing blob ${path} under ${this.root}`, error);
      } finally {
        this.release();
      }
    };
    const before = this.writing.get(final);
    const result = before === undefined ? run() : before.then(run, run);
    const done = result.then(
      () => undefined,
      () => undefined,
    );
    this.writing.set(final, done);
    void done.then(() => {
      if (this.writing.get(final) === done) this.writing.delete(final);
    });
    return result;
  }

  /** Creates the blob under its final name, or compares it with the file found there. */
  private async create(final: string, bytes: Uint8Array): Promise<BlobWriteOutcome> {
    const dir = dirname(final);
    await this.ensureDir(dir);
    if (this.createFile !== undefined) {
      try {
        // The file and its directory, synced (the addon shares directory syncs too).
        await this.createFile(final, bytes, this.fsync);
      } catch (error) {
        if (
          (error as NodeJS.ErrnoException).code === 'EEXIST' &&
          (error as NodeJS.ErrnoException).syscall === 'open'
        )
          return this.compare(final, bytes);
        throw error;
      }
      return 'created';
    }
    let file: FileHandle;
    try {
      file = await open(final, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return this.compare(final, bytes);
      throw error;
    }
    const mark = this.syncs.mark();
    await this.fill(file, final, bytes);
    if (this.fsync) await this.syncs.sync(dir, mark);
    return 'created';
  }

  /**
   * A file is there: the same bytes (a crashed or concurrent writer's whole file, perhaps never
   * synced: synced now) are `'exists'`; other bytes `'differs'`.
   */
  private async compare(final: string, bytes: Uint8Array): Promise<BlobWriteOutcome> {
    const found = await readFile(final);
    if (!found.equals(bytes)) return 'differs';
    if (this.fsync) {
      const mark = this.syncs.mark();
      const file = await open(final, 'r');
      try {
        await file.datasync();
      } finally {
        await file.close();
      }
      await this.syncs.sync(dirname(final), mark);
    }
    return 'exists';
  }

  /** Writes to a temporary file, synced, then renamed over the final name (atomic for readers). */
  private async overwrite(final: string, bytes: Uint8Array): Promise<BlobWriteOutcome> {
    const tmp = join(this.root, 'tmp', `${randomUUID()}.tmp`);
    await this.ensureDir(dirname(tmp));
    await this.ensureDir(dirname(final));
    await this.fill(await open(tmp, 'wx'), tmp, bytes);
    try {
      await rename(tmp, final);
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw error;
    }
    if (this.fsync) await this.syncs.sync(dirname(final), this.syncs.mark());
    return 'created';
  }

  /** Writes and syncs a file this store just created, and closes it; on failure, removes it. */
  private async fill(file: FileHandle, path: string, bytes: Uint8Array): Promise<void> {
    try {
      for (let at = 0; at < bytes.length; ) {
        at += (await file.write(bytes, at, bytes.length - at, at)).bytesWritten;
      }
      if (this.fsync) await file.datasync();
    } catch (error) {
      await file.close().catch(() => undefined);
      await unlink(path).catch(() => undefined);
      throw error;
    }
    await file.close();
  }

  /**
   * Makes a directory once (concurrent writes into a new one wait for the same making). The
   * directories it creates are names in their parents: those parents are synced too.
   */
  private ensureDir(dir: string): Promise<void> {
    let made = this.dirs.get(dir);
    if (made === undefined) {
      if (this.dirs.size >= MAX_KNOWN_DIRS) this.dirs.clear();
      made = this.makeDir(dir);
      this.dirs.set(dir, made);
      // A failure is not remembered: the next write tries again.
      made.catch(() => this.dirs.delete(dir));
    }
    return made;
  }

  private async makeDir(dir: string): Promise<void> {
    const first = await makeDirectories(dir);
    if (first === undefined || !this.fsync) return;
    const mark = this.syncs.mark();
    const parents: string[] = [];
    for (let created = dir; ; created = dirname(created)) {
      parents.push(dirname(created));
      if (created === first || dirname(created) === created) break;
    }
    await Promise.all(parents.map((parent) => this.syncs.sync(parent, mark)));
  }

  private async acquire(): Promise<void> {
    if (this.active < this.maxConcurrent) {
      this.active += 1;
      return;
    }
    // The slot is handed over by release(): `active` stays counted.
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.active -= 1;
  }

  private resolve(path: string): string {
    if (!BLOB_PATH.test(path)) throw new LakeConfigError(`not a blob path: ${JSON.stringify(path)}`);
    return join(this.root, path);
  }
}
