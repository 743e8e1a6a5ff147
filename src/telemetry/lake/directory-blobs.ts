import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { asLakeError, LakeConfigError, LakeNotFoundError } from '../errors.js';
import { BLOB_PATH, type BlobStore } from './types.js';

/** Options of the directory blob store. */
export interface DirectoryBlobOptions {
  /**
   * fsync each blob (and its directory) before a write resolves (default true). Turning it off
   * trades durability across power loss for speed; a crash of the process loses nothing either way.
   */
  readonly fsync?: boolean;
}

/**
 * Blobs as files under a root directory (`{root}/blobs/{process}/{stream}/{block}`). A write goes
 * to a temporary file, is fsynced, then hard-linked to its final name: `link()` fails with EEXIST
 * if the blob exists, so the write is create-only, and a reader never sees a partial blob.
 *
 * @example
 * const blobs = new DirectoryBlobStore('./dorsal-data');
 */
export class DirectoryBlobStore implements BlobStore {
  readonly kind = 'directory';
  readonly root: string;
  private readonly fsync: boolean;
  private readonly knownDirs = new Set<string>();
  private readonly dirSyncs = new Map<string, { started: boolean; done: Promise<void> }>();

  constructor(root: string, options: DirectoryBlobOptions = {}) {
    this.root = root;
    this.fsync = options.fsync ?? true;
  }

  async ping(): Promise<void> {
    try {
      await mkdir(join(this.root, 'tmp'), { recursive: true });
      await access(join(this.root, 'tmp'), constants.W_OK);
    } catch (error) {
      throw asLakeError(`blob directory ${this.root} is not writable`, error);
    }
  }

  async putIfAbsent(path: string, bytes: Uint8Array): Promise<'created' | 'exists'> {
    const final = this.resolve(path);
    const tmp = join(this.root, 'tmp', `${randomUUID()}.tmp`);
    try {
      await this.ensureDir(join(this.root, 'tmp'));
      await this.ensureDir(dirname(final));
      const file = await open(tmp, 'wx');
      try {
        await file.writeFile(bytes);
        if (this.fsync) await file.datasync();
      } finally {
        await file.close();
      }
      try {
        await link(tmp, final);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
        throw error;
      }
      if (this.fsync) await this.syncDir(dirname(final));
      return 'created';
    } catch (error) {
      throw asLakeError(`writing blob ${path} under ${this.root}`, error);
    } finally {
      await unlink(tmp).catch(() => {});
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

  async close(): Promise<void> {}

  private resolve(path: string): string {
    if (!BLOB_PATH.test(path)) throw new LakeConfigError(`not a blob path: ${JSON.stringify(path)}`);
    return join(this.root, path);
  }

  /**
   * fsyncs a directory after a new entry was linked into it. Blocks of one stream share a
   * directory, so concurrent writers share one fsync: a sync that has not started yet covers every
   * link made before it starts (group commit).
   */
  private syncDir(dir: string): Promise<void> {
    const pending = this.dirSyncs.get(dir);
    if (pending !== undefined && !pending.started) return pending.done;
    const state = { started: false, done: Promise.resolve() };
    state.done = (pending?.done ?? Promise.resolve())
      .catch(() => {})
      .then(() => {
        state.started = true;
        return fsyncDir(dir);
      })
      .finally(() => {
        if (this.dirSyncs.get(dir) === state) this.dirSyncs.delete(dir);
      });
    this.dirSyncs.set(dir, state);
    return state.done;
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.knownDirs.add(dir);
  }
}

/** fsync a directory so that a new entry in it survives a power loss. */
async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
