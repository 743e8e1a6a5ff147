import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asLakeError, LakeConfigError, LakeNotFoundError } from '../errors.js';
import { BlobWriter } from './blob-writer.js';
import { BLOB_PATH, type BlobStore } from './types.js';

/** Options of the directory blob store. */
export interface DirectoryBlobOptions {
  /**
   * fsync each blob (and its directory) before a write resolves (default true). Turning it off
   * trades durability across power loss for speed; a crash of the process loses nothing either way.
   */
  readonly fsync?: boolean;
  /**
   * Threads that write blobs (default 2). Writes that arrive while they are busy are batched:
   * their directories are synced once per batch.
   */
  readonly writerThreads?: number;
}

/**
 * Blobs as files under a root directory (`{root}/blobs/{process}/{stream}/{block}`). A write goes
 * to a temporary file, is fsynced, then hard-linked to its final name: `link()` fails with EEXIST
 * if the blob exists, so the write is create-only, and a reader never sees a partial blob. Writes
 * run on writer threads of the store's own (see BlobWriter); reads on the libuv pool.
 *
 * @example
 * const blobs = new DirectoryBlobStore('./dorsal-data');
 */
export class DirectoryBlobStore implements BlobStore {
  readonly kind = 'directory';
  readonly root: string;
  private readonly writer: BlobWriter;

  constructor(root: string, options: DirectoryBlobOptions = {}) {
    this.root = root;
    this.writer = new BlobWriter({ threads: options.writerThreads ?? 2, fsync: options.fsync ?? true });
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
      return await this.writer.write(tmp, final, bytes);
    } catch (error) {
      throw asLakeError(`writing blob ${path} under ${this.root}`, error);
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

  /** Waits for the writes under way and stops the writer threads. */
  close(): Promise<void> {
    return this.writer.close();
  }

  private resolve(path: string): string {
    if (!BLOB_PATH.test(path)) throw new LakeConfigError(`not a blob path: ${JSON.stringify(path)}`);
    return join(this.root, path);
  }
}
