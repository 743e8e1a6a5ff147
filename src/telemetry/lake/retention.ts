import { ConfigError } from '../../errors.js';
import { formatRfc3339Ns } from '../wire/index.js';
import type { Lake } from './lake.js';

/** Options of a retention pass. */
export interface RetentionOptions {
  /** Delete what was inserted more than this many days ago (fractions allowed; 0: everything). */
  readonly days: number;
  /** Rows deleted per batch (default 256). */
  readonly batchSize?: number;
  /** Pause between batches, in ms (default 50), so that ingestion keeps the disk and the database. */
  readonly pauseMs?: number;
  /** Called after each batch with the totals so far. */
  readonly onBatch?: (report: RetentionReport) => void;
  /** Stops the pass between two batches. */
  readonly signal?: AbortSignal;
}

/** What a retention pass deleted. */
export interface RetentionReport {
  /** Everything inserted before this time (RFC 3339) was deleted. */
  readonly cutoff: string;
  blocks: number;
  /** Blobs deleted, those an earlier pass left included. */
  blobs: number;
  streams: number;
  processes: number;
  dropReports: number;
}

const DAY_MS = 86_400_000;

/**
 * Deletes what was inserted into the lake more than `days` ago: blocks and their blobs, then
 * streams left without blocks and processes left without streams, then drop reports. Blocks go by
 * insert time, which the server sets, not by the times a client wrote in them.
 *
 * Order, so that a crash anywhere leaves no row without its blob: a batch deletes its block rows
 * and records their blob paths in `blob_garbage`, in one transaction; then it deletes the blobs;
 * then it forgets those paths. A crash after the transaction leaves blobs without rows (harmless:
 * nothing points at them) and their paths recorded: the next pass deletes them first. A block sent
 * again in between (a sink's re-send finds its blob still there and stores its row again) takes
 * its blob back from the garbage. Streams and processes are deleted only once nothing refers to
 * them. Batches are small and paced: on ext4, creating files right after many deletions is slow
 * (the kernel scans the freshly freed inodes), and ingestion goes on meanwhile.
 *
 * @example
 * const report = await applyRetention(lake, { days: 90 });
 */
export async function applyRetention(lake: Lake, options: RetentionOptions): Promise<RetentionReport> {
  const { days } = options;
  if (!Number.isFinite(days) || days < 0) throw new ConfigError(`retention days must be >= 0, got ${days}`);
  const batch = options.batchSize ?? 256;
  if (!Number.isSafeInteger(batch) || batch < 1)
    throw new ConfigError(`batch size must be >= 1, got ${batch}`);
  const pauseMs = options.pauseMs ?? 50;
  const cutoff = formatRfc3339Ns(BigInt(Math.round(Date.now() - days * DAY_MS)) * 1_000_000n);
  const report: RetentionReport = { cutoff, blocks: 0, blobs: 0, streams: 0, processes: 0, dropReports: 0 };
  const { metadata, blobs } = lake;
  await metadata.ready();

  /** Runs `step` until it does nothing, pausing between batches. */
  const repeat = async (step: () => Promise<number>): Promise<void> => {
    for (;;) {
      options.signal?.throwIfAborted();
      const done = await step();
      if (done === 0) return;
      options.onBatch?.(report);
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  };
  const deleteBlobs = async (paths: readonly string[]): Promise<number> => {
    if (paths.length === 0) return 0;
    await blobs.delete(paths);
    await metadata.forgetGarbage(paths);
    report.blobs += paths.length;
    return paths.length;
  };

  // What an earlier pass left (it stopped between its row deletions and its blob deletions).
  await repeat(async () => deleteBlobs(await metadata.listGarbage(batch)));
  await repeat(async () => {
    const paths = await metadata.deleteBlocksBefore(cutoff, batch);
    report.blocks += paths.length;
    return deleteBlobs(paths);
  });
  await repeat(async () => {
    const n = await metadata.deleteEmptyStreamsBefore(cutoff, batch);
    report.streams += n;
    return n;
  });
  await repeat(async () => {
    const n = await metadata.deleteEmptyProcessesBefore(cutoff, batch);
    report.processes += n;
    return n;
  });
  await repeat(async () => {
    const n = await metadata.deleteDropReportsBefore(cutoff, batch);
    report.dropReports += n;
    return n;
  });
  return report;
}

/** A retention pass run now and then by a server; see `scheduleRetention`. */
export interface RetentionSchedule {
  /** Stops the schedule, and the pass under way between two of its batches. */
  stop(): Promise<void>;
}

/**
 * Runs `applyRetention` at once and then every `intervalMs` (default 1 h), one pass at a time,
 * until stopped. Reports each pass, or its failure (the next pass tries again).
 */
export function scheduleRetention(
  lake: Lake,
  options: RetentionOptions & {
    readonly intervalMs?: number;
    readonly onPass?: (report: RetentionReport) => void;
    readonly onError?: (error: unknown) => void;
  },
): RetentionSchedule {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const pass = (): void => {
    running = applyRetention(lake, { ...options, signal: controller.signal }).then(
      (report) => options.onPass?.(report),
      (error: unknown) => {
        if (!controller.signal.aborted) options.onError?.(error);
      },
    );
    void running.then(() => {
      if (!controller.signal.aborted) timer = setTimeout(pass, options.intervalMs ?? 3_600_000).unref();
    });
  };
  pass();
  return {
    stop: async () => {
      controller.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
