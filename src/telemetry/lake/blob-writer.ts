import type { Worker } from 'node:worker_threads';
import { ConfigError } from '../../errors.js';
import { isTypeScriptModule, startModuleWorker } from '../../module-worker.js';

/**
 * One blob to store at `final`: written there directly (create-only), or, for a replacement,
 * written to `tmp` and renamed over `final` once synced.
 */
export interface BlobWriteJob {
  readonly tmp: string;
  readonly final: string;
  readonly bytes: Uint8Array;
  readonly replace: boolean;
}

/** What a writer thread receives: jobs written together, their directories synced once. */
export interface BlobWriteBatch {
  readonly jobs: readonly BlobWriteJob[];
  readonly fsync: boolean;
}

/** What a create-only write found: see `BlobStore.putIfAbsent`. */
export type BlobWriteOutcome = 'created' | 'exists' | 'differs';

/** Per job: its outcome, or the error (errno code and message: errors do not cross threads whole). */
export type BlobWriteResult =
  | BlobWriteOutcome
  | { readonly code: string | undefined; readonly message: string };

interface Pending {
  readonly job: BlobWriteJob;
  readonly resolve: (result: BlobWriteOutcome) => void;
  readonly reject: (error: Error) => void;
}

interface WriterThread {
  readonly worker: Worker;
  /** The batch it is writing, or null when idle. */
  batch: Pending[] | null;
}

/**
 * At most this many blobs (a thread holds a file open for each until its batch is synced), or
 * about this many bytes, in one batch.
 */
const MAX_BATCH_JOBS = 64;
const MAX_BATCH_BYTES = 64 * 1024 * 1024;

/**
 * Durable blob writes on a few threads of their own (default 4), batched: blobs that arrive while
 * every thread is busy go out together, and the directories they land in are synced once per
 * batch (group commit). Threads start on the first write and hold the process open only while
 * they have a batch.
 */
export class BlobWriter {
  private readonly threadCount: number;
  private readonly fsync: boolean;
  private readonly entry: URL;
  private readonly threads: WriterThread[] = [];
  private readonly queue: Pending[] = [];
  /** The last write to each path still under way: a write to the same path waits for it. */
  private readonly writing = new Map<string, Promise<unknown>>();
  private idleWaiters: (() => void)[] = [];

  /** `entry`: @internal the writer thread's module (a test starts one that dies). */
  constructor(options: { threads: number; fsync: boolean; entry?: URL }) {
    if (!Number.isSafeInteger(options.threads) || options.threads < 1 || options.threads > 64) {
      throw new ConfigError(`writerThreads must be an integer in [1, 64], got ${options.threads}`);
    }
    this.threadCount = options.threads;
    this.fsync = options.fsync;
    this.entry =
      options.entry ??
      new URL(`./blob-writer-thread${isTypeScriptModule(import.meta.url) ? '.ts' : '.js'}`, import.meta.url);
  }

  /**
   * Stores one blob at `final` unless a file is there (see `BlobWriteOutcome`), or, with
   * `replace`, over whatever is there; rejects with an Error carrying the errno `code` of what
   * failed. Writes to one path run one after the other, so that a second finds the first's file
   * whole.
   */
  write(tmp: string, final: string, bytes: Uint8Array, replace = false): Promise<BlobWriteOutcome> {
    // A copy of exactly the blob, transferred to the thread without a second copy. (A view may
    // share a larger buffer, which a transfer would take away from its owner, and a clone would
    // copy whole. Not `slice()`: on a Buffer it shares memory.)
    const job: BlobWriteJob = { tmp, final, bytes: new Uint8Array(bytes), replace };
    const start = (): Promise<BlobWriteOutcome> =>
      new Promise((resolve, reject) => {
        this.queue.push({ job, resolve, reject });
        this.dispatch();
      });
    const before = this.writing.get(final);
    const result = before === undefined ? start() : before.then(start, start);
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

  /** Waits for the writes under way, then stops the threads (a later write starts new ones). */
  async close(): Promise<void> {
    while (this.writing.size > 0 || this.queue.length > 0 || this.threads.some((t) => t.batch !== null)) {
      if (this.writing.size > 0) await Promise.all(this.writing.values());
      else await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    const threads = this.threads.splice(0);
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const thread = this.idleThread();
      if (thread === undefined) return;
      // Shares what waits between the idle threads, so that their syncs overlap.
      const idle =
        this.threads.filter((t) => t.batch === null).length +
        (this.threads.length < this.threadCount ? 1 : 0);
      const share = Math.min(MAX_BATCH_JOBS, Math.ceil(this.queue.length / idle));
      let count = 0;
      let bytes = 0;
      while (count < share && count < this.queue.length && (count === 0 || bytes < MAX_BATCH_BYTES)) {
        bytes += this.queue[count]!.job.bytes.length;
        count++;
      }
      const batch = this.queue.splice(0, count);
      thread.batch = batch;
      thread.worker.ref();
      const message: BlobWriteBatch = { jobs: batch.map((p) => p.job), fsync: this.fsync };
      try {
        thread.worker.postMessage(
          message,
          batch.map((p) => p.job.bytes.buffer as ArrayBuffer),
        );
      } catch (error) {
        thread.batch = null;
        thread.worker.unref();
        for (const pending of batch) pending.reject(error as Error);
      }
    }
  }

  private idleThread(): WriterThread | undefined {
    const idle = this.threads.find((t) => t.batch === null);
    if (idle !== undefined || this.threads.length >= this.threadCount) return idle;
    return this.startThread();
  }

  private startThread(): WriterThread {
    const thread: WriterThread = { worker: startModuleWorker(this.entry), batch: null };
    thread.worker.on('message', (results: BlobWriteResult[]) => this.finished(thread, results));
    // A thread that fails or exits on its own fails its batch; the next write starts another.
    thread.worker.on('error', (error) => this.lost(thread, error));
    thread.worker.on('exit', (code) =>
      this.lost(thread, new Error(`blob writer thread exited with code ${code}`)),
    );
    this.threads.push(thread);
    return thread;
  }

  private finished(thread: WriterThread, results: readonly BlobWriteResult[]): void {
    const batch = thread.batch ?? [];
    thread.batch = null;
    thread.worker.unref();
    batch.forEach((pending, i) => {
      const result = results[i];
      if (typeof result === 'string') pending.resolve(result);
      else
        pending.reject(errnoError(result ?? { code: undefined, message: 'no answer from the blob writer' }));
    });
    this.settle();
  }

  private lost(thread: WriterThread, error: Error): void {
    const at = this.threads.indexOf(thread);
    if (at === -1) return;
    this.threads.splice(at, 1);
    for (const pending of thread.batch ?? []) pending.reject(error);
    thread.batch = null;
    this.settle();
  }

  private settle(): void {
    this.dispatch();
    if (this.queue.length === 0 && this.threads.every((t) => t.batch === null)) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }
}

function errnoError(failure: { code: string | undefined; message: string }): Error {
  const error = new Error(failure.message) as NodeJS.ErrnoException;
  if (failure.code !== undefined) error.code = failure.code;
  return error;
}
