import { ConfigError } from '../../errors.js';
import { LakeConfigError } from '../errors.js';
import { formatRfc3339Ns } from '../wire/index.js';
import type { Lake } from './lake.js';
import { type BlockRow, streamBlobDirectory, type WindowDeletion } from './types.js';

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
  /**
   * How long ago a blob must have been written for retention to take it for an orphan when it
   * deletes its stream (no row names it), in ms (default 1 h): a block's row goes in within its
   * request, whose statements time out in seconds. A temporary file a crash left: at least 1 h.
   */
  readonly orphanAgeMs?: number;
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
  /**
   * Analytics partitions (derived data, made again from blocks when asked) deleted with a block
   * they held; their files are counted in `blobs`.
   */
  partitions: number;
  /**
   * Blobs the store would not delete, while it answered otherwise (a file in the way that is a
   * directory, a bucket's object lock): their rows are deleted, the pass went on without them,
   * and they stay recorded for the next pass to try again. 0 unless something is wrong.
   */
  blobsKept: number;
  /** Why the first of them was kept (the store's own words); absent while `blobsKept` is 0. */
  keptBecause?: string;
}

const DAY_MS = 86_400_000;

/**
 * Deletes what was inserted into the lake more than `days` ago: blocks and their blobs, the
 * analytics partitions made of any of those blocks and their files, then streams left without
 * blocks and processes left without streams, then drop reports. Blocks go by insert time, which
 * the server sets, not by the times a client wrote in them; a partition goes with the first of its
 * blocks, however recently it was made (as micromegas retires a partition by the insert times of
 * the data it was made of).
 *
 * Order, so that a crash anywhere leaves no row without its blob: a batch deletes its block rows
 * and records their blob paths in `blob_garbage`, in one transaction; then it deletes the blobs;
 * then it forgets those paths. A crash after the transaction leaves blobs without rows (harmless:
 * nothing points at them) and their paths recorded: the next pass deletes them first. No row can
 * point at a garbage blob: a block sent again once its row is deleted is a new write, with a blob
 * of its own (see `uniqueBlobPath`). Streams and processes are deleted only once nothing refers to
 * them; inserts check that what they refer to is there, atomically with these deletions (see
 * `MetadataStore`), so a server that still remembers a deleted stream cannot give it a block.
 * Batches are small and paced: on ext4, creating files right after many deletions is slow (the
 * kernel scans the freshly freed inodes), and ingestion goes on meanwhile. Streams and processes
 * are looked at a window of ids at a time, so that a batch costs the same however many old ones
 * are still in use; a window that deleted nothing is not followed by a pause. A blob the store
 * refuses to delete while it answers otherwise stays recorded and is passed over (`blobsKept`):
 * one path in the way stops no pass, and the next pass tries it again.
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
  const orphanAgeMs = options.orphanAgeMs ?? 3_600_000;
  if (!(Number.isFinite(orphanAgeMs) && orphanAgeMs >= 0))
    throw new ConfigError(`orphanAgeMs must be a number of ms >= 0, got ${orphanAgeMs}`);
  // A period longer than the time since 1970 keeps everything: the cutoff is then the epoch.
  const cutoff = formatRfc3339Ns(BigInt(Math.max(0, Math.round(Date.now() - days * DAY_MS))) * 1_000_000n);
  const report: RetentionReport = {
    cutoff,
    blocks: 0,
    blobs: 0,
    streams: 0,
    processes: 0,
    dropReports: 0,
    partitions: 0,
    blobsKept: 0,
  };
  const { metadata, blobs } = lake;
  await metadata.ready();
  await checkBlobStore(lake);

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
  /** Runs a windowed step over every id, pausing after the windows that deleted something. */
  const sweep = async (
    step: (after: string) => Promise<WindowDeletion>,
    count: (deleted: number) => void,
  ): Promise<void> => {
    for (let after = ''; ; ) {
      options.signal?.throwIfAborted();
      const { deleted, last } = await step(after);
      if (last === undefined) return;
      after = last;
      if (deleted === 0) {
        // Nothing deleted, little done: a turn of the event loop, not a pause.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      count(deleted);
      options.onBatch?.(report);
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  };
  /** Garbage paths this pass could not delete: passed over when listed again. */
  const kept = new Set<string>();
  /** Swept directories this pass could not empty: the same (apart: a cap reached by one stops no other). */
  const keptDirectories = new Set<string>();
  /**
   * Deletes blobs; resolves to those deleted. A store that refuses some while it answers (one
   * path in the way stops no pass for good) keeps them, counted in the report; one that does
   * not answer stops the pass, as every other failure does.
   */
  const deleteEach = async (paths: readonly string[]): Promise<readonly string[]> => {
    try {
      await blobs.delete(paths);
      return paths;
    } catch (error) {
      options.signal?.throwIfAborted();
      try {
        await blobs.ping();
      } catch {
        throw error;
      }
      const deleted: string[] = [];
      for (const path of paths) {
        options.signal?.throwIfAborted();
        try {
          await blobs.delete([path]);
          deleted.push(path);
        } catch (refusal) {
          kept.add(path);
          report.blobsKept++;
          report.keptBecause ??= refusal instanceof Error ? refusal.message : String(refusal);
        }
      }
      return deleted;
    }
  };
  /** Deletes garbage blobs and forgets those deleted; resolves to how many paths were dealt with. */
  const deleteBlobs = async (paths: readonly string[]): Promise<number> => {
    if (paths.length === 0) return 0;
    const deleted = await deleteEach(paths);
    if (deleted.length > 0) await metadata.forgetGarbage(deleted);
    report.blobs += deleted.length;
    return paths.length;
  };
  /** Up to `batch` of what `list` lists that this pass has not kept (it lists as many more). */
  const listNotKept = async (
    list: (limit: number) => Promise<string[]>,
    passed: ReadonlySet<string>,
  ): Promise<string[]> =>
    passed.size >= KEPT_AT_MOST
      ? []
      : (await list(batch + passed.size)).filter((p) => !passed.has(p)).slice(0, batch);

  // What an earlier pass left (it stopped between its row deletions and its blob deletions).
  await repeat(async () => deleteBlobs(await listNotKept((n) => metadata.listGarbage(n), kept)));
  await repeat(async () => {
    const paths = await metadata.deleteBlocksBefore(cutoff, batch);
    report.blocks += paths.length;
    return deleteBlobs(paths);
  });
  // Partitions go with their earliest block (`firstBlockInsertTime`), not by their own insert
  // time: one made today of a process of long ago goes with it, and so does one that also holds
  // newer blocks (stale without the old one: the analytics make the newer ones' again). A
  // partition made of a block while this pass deleted it goes at the next pass (meanwhile the
  // analytics, which check a partition's blocks, never read it).
  await repeat(async () => {
    const paths = await metadata.deletePartitionsBefore(cutoff, batch);
    report.partitions += paths.length / 2;
    return deleteBlobs(paths);
  });
  await sweep(
    (after) => metadata.deleteEmptyStreamsBefore(cutoff, batch, after),
    (n) => {
      report.streams += n;
    },
  );
  // The directories of the streams deleted, by this pass or by an earlier one stopped before it
  // swept them (recorded with each stream's deletion).
  // A directory with an orphan the store kept stays recorded, for the next pass.
  await repeat(async () => {
    const directories = await listNotKept((n) => metadata.listStreamSweeps(n), keptDirectories);
    const swept: string[] = [];
    for (const directory of directories) {
      options.signal?.throwIfAborted();
      const orphans = await findOrphans(lake, directory, orphanAgeMs);
      let deleted = 0;
      for (let i = 0; i < orphans.length; i += batch) {
        deleted += (await deleteEach(orphans.slice(i, i + batch))).length;
      }
      report.blobs += deleted;
      if (deleted === orphans.length) swept.push(directory);
      else keptDirectories.add(directory);
    }
    if (swept.length > 0) await metadata.forgetStreamSweeps(swept);
    return directories.length;
  });
  // What writes cut short by a crash left aside (a directory store's temporary files): an hour
  // old at least, whatever orphanAgeMs says (0 deleted the files of replaces under way).
  report.blobs +=
    (await lake.blobs.sweepTemporary?.(Date.now() - Math.max(orphanAgeMs, TEMPORARY_AGE_MS))) ?? 0;
  // Old drop reports before the processes they refer to (a process with a newer one stays): a
  // pass stopped between the two leaves no report of a process it deleted.
  await repeat(async () => {
    const n = await metadata.deleteDropReportsBefore(cutoff, batch);
    report.dropReports += n;
    return n;
  });
  await sweep(
    (after) => metadata.deleteEmptyProcessesBefore(cutoff, batch, after),
    (n) => {
      report.processes += n;
    },
  );
  return report;
}

/** How old a temporary file of a write must be, at least, for retention to take it for a crash's. */
const TEMPORARY_AGE_MS = 3_600_000;

/** Blobs of one deleted stream's directory looked at, at most (one listing). */
const ORPHANS_AT_MOST = 100_000;

/**
 * Garbage paths and swept directories a pass keeps (the store refused to delete them) before it
 * stops looking at what earlier passes left: each listing lists as many more.
 */
const KEPT_AT_MOST = 10_000;

/**
 * What the directory of a stream retention deleted still holds, written over `ageMs` ago (an
 * hour by default) and named by no block row: a blob a crash left before its row, or one whose
 * row's fate a lost connection hid, which nothing else would ever delete. Not a blob written
 * since (a sink that sends the stream again at once writes there anew), nor one a row names.
 */
async function findOrphans(lake: Lake, directory: string, ageMs: number): Promise<string[]> {
  const paths = await lake.blobs.listUnder(directory, ORPHANS_AT_MOST, Date.now() - ageMs);
  const orphans: string[] = [];
  for (const path of paths) {
    const blockId = path.slice(directory.length).split('.')[0]!;
    if ((await lake.metadata.findBlock(blockId))?.blobPath !== path) orphans.push(path);
  }
  return orphans;
}

/**
 * Refuses a blob store that holds none of the lake's payloads: a `--blobs` or `--data` naming
 * another directory or bucket than the lake's (another lake's included). Retention would delete
 * the rows, "delete" blobs that are not there, and leave the lake's own for good, named by
 * nothing. Up to 8 streams spread over the lake's ids are looked at, each where its blobs go:
 * one holding any is enough, so that payloads lost by accident (a stream's, the oldest ones: an
 * expiry rule of the bucket) do not stop every pass. Seen empty, the rows are asked again:
 * another retention pass may have deleted them and their blobs meanwhile (rows go first).
 */
async function checkBlobStore(lake: Lake): Promise<void> {
  const sampled: BlockRow[] = [];
  for (const streamId of await lake.metadata.sampleStreamIds(8)) {
    const [block] = await lake.metadata.listBlocks({ streamId, limit: 1 });
    if (block === undefined) continue;
    if ((await lake.blobs.listUnder(streamBlobDirectory(block.processId, block.streamId), 1)).length > 0)
      return;
    sampled.push(block);
  }
  const still: BlockRow[] = [];
  for (const block of sampled) if (await lake.metadata.findBlock(block.blockId)) still.push(block);
  if (still.length === 0) return;
  throw new LakeConfigError(
    `retention: the blob store (${lake.blobs.kind}) holds no payload of the lake's blocks (${still.map((b) => b.blobPath).join(', ')}): is it this lake's (--data, --blobs)? Nothing was deleted`,
  );
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
