/**
 * A blob writer thread (see BlobWriter): takes a batch of blobs, writes each durably with
 * synchronous calls, and answers once for the whole batch. Synchronous calls on a thread of its
 * own cost one wake-up per batch; the same chain of asynchronous calls on the main thread costs a
 * libuv pool round trip per call (~40 µs each on a 2-core VM).
 */
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { parentPort } from 'node:worker_threads';
import type { BlobWriteBatch, BlobWriteJob, BlobWriteResult } from './blob-writer.js';

const knownDirs = new Set<string>();

/**
 * Creates `dir` (and its missing parents) once per thread. A directory it creates is an entry in
 * its parent, which must be synced too: those parents are added to `toSync`.
 */
function ensureDir(dir: string, toSync: Set<string>): void {
  if (knownDirs.has(dir)) return;
  const first = mkdirSync(dir, { recursive: true });
  if (first !== undefined) {
    for (let created = dir; ; created = dirname(created)) {
      toSync.add(dirname(created));
      if (created === first || dirname(created) === created) break;
    }
  }
  knownDirs.add(dir);
}

function failure(error: unknown): BlobWriteResult {
  const code = (error as NodeJS.ErrnoException).code;
  return {
    code: typeof code === 'string' ? code : undefined,
    message: (error as Error).message ?? String(error),
  };
}

/** Writes `bytes` to a file this thread just created; on failure, closes and removes it, and throws. */
function writeAllOrRemove(fd: number, path: string, bytes: Uint8Array): void {
  try {
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
  } catch (error) {
    closeQuietly(fd);
    removeQuietly(path);
    throw error;
  }
}

// Cleanup after a failure: the failure is the error to report, not a second one.
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {}
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {}
}

/** A file of the batch written (or found) and waiting for its sync. */
interface Unsynced {
  readonly index: number;
  readonly fd: number;
  /** What the write answers once synced. */
  readonly outcome: 'created' | 'exists';
  /** Renamed to the job's final name once synced (a replacement), else null. */
  readonly renameFrom: string | null;
}

/**
 * Writes a new blob straight to its final name: `open(O_CREAT | O_EXCL)` fails with EEXIST if a
 * file is there (a create-only write). A file that is there is compared with the blob: the same
 * bytes are synced and answered `exists` (a crashed or concurrent writer may not have synced
 * them); other bytes are answered `differs` (a write torn by a crash, or another payload under
 * this name), for the caller to decide (see `BlobStore.putIfAbsent`). A write that fails removes
 * the file it created, so that no partial blob is left under the final name by this process.
 */
function writeNew(job: BlobWriteJob, index: number): Unsynced | 'differs' {
  let fd: number;
  try {
    fd = openSync(job.final, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const existing = readFileSync(job.final);
    if (!existing.equals(job.bytes)) return 'differs';
    return { index, fd: openSync(job.final, 'r'), outcome: 'exists', renameFrom: null };
  }
  writeAllOrRemove(fd, job.final, job.bytes);
  return { index, fd, outcome: 'created', renameFrom: null };
}

/** Writes a replacement to a temporary file, renamed over the final name once synced. */
function writeReplacement(job: BlobWriteJob, index: number): Unsynced {
  const fd = openSync(job.tmp, 'wx');
  writeAllOrRemove(fd, job.tmp, job.bytes);
  return { index, fd, outcome: 'created', renameFrom: job.tmp };
}

/**
 * Group commit: every blob of the batch is written first, then each file is synced, then each
 * directory that received an entry is synced once. Syncing after all the writes lets the first
 * file's sync carry the directory's new entries, where a filesystem writes them with the file
 * (ext4 does), so that the later syncs find the directory clean.
 */
function writeBatch(batch: BlobWriteBatch): BlobWriteResult[] {
  const results: BlobWriteResult[] = new Array(batch.jobs.length);
  const unsynced: Unsynced[] = [];
  const dirs = new Map<string, number[]>();
  const parents = new Set<string>();
  batch.jobs.forEach((job, index) => {
    try {
      ensureDir(dirname(job.final), parents);
      if (job.replace) ensureDir(dirname(job.tmp), parents);
      const written = job.replace ? writeReplacement(job, index) : writeNew(job, index);
      if (written === 'differs') results[index] = 'differs';
      else unsynced.push(written);
    } catch (error) {
      results[index] = failure(error);
    }
  });
  for (const file of unsynced) {
    const job = batch.jobs[file.index] as BlobWriteJob;
    let open = true;
    try {
      if (batch.fsync) fdatasyncSync(file.fd);
      open = false;
      closeSync(file.fd);
      if (file.renameFrom !== null) renameSync(file.renameFrom, job.final);
      const dir = dirname(job.final);
      const indices = dirs.get(dir);
      if (indices === undefined) dirs.set(dir, [file.index]);
      else indices.push(file.index);
      results[file.index] = file.outcome;
    } catch (error) {
      results[file.index] = failure(error);
      if (open) closeQuietly(file.fd);
      if (file.renameFrom !== null) removeQuietly(file.renameFrom);
    }
  }
  if (batch.fsync) {
    for (const dir of parents) syncDir(dir, [...dirs.values()].flat(), results);
    for (const [dir, indices] of dirs) syncDir(dir, indices, results);
  }
  return results;
}

/** Syncs a directory's entries; if that fails, the writes that depend on it fail. */
function syncDir(dir: string, dependents: readonly number[], results: BlobWriteResult[]): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    for (const i of dependents) results[i] = failure(error);
  }
}

parentPort?.on('message', (batch: BlobWriteBatch) => {
  parentPort?.postMessage(writeBatch(batch));
});
