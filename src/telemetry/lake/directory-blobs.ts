import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asLakeError, LakeConfigError, LakeNotFoundError } from '../errors.js';
import { type BlobWriteOutcome, BlobWriter } from './blob-writer.js';
import { BLOB_PATH, type BlobStore } from './types.js';

/** Options of the directory blob store. */
export interface DirectoryBlobOptions {
  /**
   * fsync each blob (and its directory) before a write resolves (default true). Turning it off
   * trades durability across power loss for speed; a crash of the process loses nothing either way.
   */
  readonly fsync?: boolean;
  /**
   * Threads that write blobs (default 4: they spend their time waiting for the disk, and the
   * disk takes several syncs at once). Writes that arrive while they are busy are batched: their
   * directories are synced once per batch.
   */
  readonly writerThreads?: number;
}

/**
 * Blobs as files under a root directory (`{root}/blobs/{process}/{stream}/{block}`). A write
 * creates its final name with `O_EXCL` (create-only: it fails if a file is there), writes, and
 * fsyncs the file and then its directory; a file that is already there is compared with the blob
 * (`'exists'` or `'differs'`, see `BlobStore.putIfAbsent`). A replacement goes to a temporary
 * file, fsynced, then renamed over the final name. Readers find blobs through block rows, which
 * are inserted only once a write resolved, so they never meet a blob being written. Writes run on
 * writer threads of the store's own (see BlobWriter); reads on the libuv pool.
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
    this.writer = new BlobWriter({ threads: options.writerThreads ?? 4, fsync: options.fsync ?? true });
  }

  async ping(): Promise<void> {
    try {
      await mkdir(join(this.root, 'tmp'), { recursive: true });
      await access(join(this.root, 'tmp'), constants.W_OK);
    } catch (error) {
      throw asLakeError(`blob directory ${this.root} is not writable`, error);
    }
  }

  async putIfAbsent(path: string, bytes: Uint8Array): Promise<'created' | 'exists' | 'differs'> {
    return this.write(path, bytes, false);
  }

  async replace(path: string, bytes: Uint8Array): Promise<void> {
    await this.write(path, bytes, true);
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

  private async write(path: string, bytes: Uint8Array, replace: boolean): Promise<BlobWriteOutcome> {
    const final = this.resolve(path);
    const tmp = join(this.root, 'tmp', `${randomUUID()}.tmp`);
    try {
      return await this.writer.write(tmp, final, bytes, replace);
    } catch (error) {
      throw asLakeError(`writing blob ${path} under ${this.root}`, error);
    }
  }

  private resolve(path: string): string {
    if (!BLOB_PATH.test(path)) throw new LakeConfigError(`not a blob path: ${JSON.stringify(path)}`);
    return join(this.root, path);
  }
}
