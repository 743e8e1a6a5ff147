import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirectoriesSync } from '../../directories.js';
import { LakeNotFoundError, WireFormatError, WireVersionError } from '../errors.js';
import type { Lake } from '../lake/lake.js';
import { type BlockRow, type PartitionRow, partitionBlobPaths, type StreamRow } from '../lake/types.js';
import { formatRfc3339Ns, nowRfc3339Ns } from '../wire/index.js';
import type { BlockParts, RejectedBlock } from './etl.js';
import type { PartitionWriter } from './etl-pool.js';
import type { SweptLake } from './gone-processes.js';
import type { TimeWindow, UnreadableBlock } from './query.js';
import type { RetryLater } from './retry-later.js';
import {
  fileSchemaOf,
  PARTITION_FORMAT,
  partitionFormatOf,
  type SourceTable,
  sourceTableOf,
} from './source-tables.js';

export type { PartitionRow };

/** The two files of a partition, as blob paths or local paths. */
export interface PartitionFiles {
  readonly data: string;
  readonly coverage: string;
}

/**
 * Where partitions are kept: their rows (which blocks each covers) and their Parquet bytes, and
 * local files DuckDB can read for each.
 */
export interface PartitionStore {
  list(processId: string): Promise<PartitionRow[]>;
  /** Stores a partition's files, then its row: a listed row always has its files. */
  save(row: PartitionRow, files: PartitionFiles): Promise<void>;
  /** Local paths DuckDB can read, or undefined if a file of the partition is missing or unreadable (see `looksWhole`). */
  localFiles(row: PartitionRow): Promise<PartitionFiles | undefined>;
  /** Forgets a partition whose files are missing (it is rebuilt from its blocks). */
  delete(row: PartitionRow): Promise<void>;
  /**
   * Removes what it keeps locally of processes the lake no longer lists (retention deleted them
   * with their partitions), asking the lake about the ids it keeps, a bounded amount at a time;
   * returns their ids (see `forgetGoneProcesses`). A store without it keeps them.
   */
  forgetGoneProcesses?(lake: SweptLake): Promise<string[]>;
}

/** A partition holds at most this many blocks, and about this many bytes of records. */
const BLOCKS_PER_PARTITION = 256;
const BYTES_PER_PARTITION = 64 << 20;
/**
 * Small partitions of a stream are merged once this many of one size tier exist (tiers of 1–7,
 * 8–63 and 64–255 blocks), as a log-structured merge does: a live process queried every second
 * keeps a few dozen partitions per stream instead of one more per second, and a row is written
 * again at most three times on its way to a full partition (merged from the partitions' files:
 * a block is decoded once).
 */
const COMPACT_AT = 8;

/** The blob paths of a partition's files (Hive-style: DuckDB reads `process_id` from the path). */
export const partitionPaths: (row: PartitionRow) => PartitionFiles = partitionBlobPaths;

/** What a process's views are made of, once materialized: each table's local files. */
export interface Materialized {
  readonly processId: string;
  readonly sources: readonly { readonly stream: StreamRow; readonly table: SourceTable }[];
  /** Local Parquet files by view name. */
  readonly files: ReadonlyMap<string, readonly string[]>;
  /** The lake stream of each data file. */
  readonly fileStreams: ReadonlyMap<string, string>;
  /**
   * Blocks left out of the tables because they do not read: their blob is missing or damaged.
   * They are tried again at every look (a blob store may come back, a blob may be restored).
   */
  readonly unreadable: readonly UnreadableBlock[];
  /** Blocks decoded by this call (0 once everything is cached). */
  readonly decodedBlocks: number;
  /** Partitions found missing or unreadable, or written by an older dorsal, forgotten and rebuilt from their blocks. */
  readonly rebuiltPartitions: number;
  /** Small partitions merged into larger ones by this call. */
  readonly compactedPartitions: number;
}

/** What an analytics keeps from one look to the next of what failed: not tried again for a while. */
export interface AnalyticsMemory {
  /** Blocks that did not read, by block id. */
  readonly unreadable: RetryLater<UnreadableBlock>;
  /** Merges that failed with their inputs there, by each input partition's id: why. */
  readonly merges: RetryLater<string>;
  /** Told of each merge that fails (not of those left alone meanwhile): the analytics' `onMergeFailed`. */
  readonly onMergeFailed?: ((failure: MergeFailure) => void) | undefined;
}

/**
 * A merge of small partitions that failed with its inputs there (a full disk, a file DuckDB
 * cannot read): the small partitions go on answering, and the merge is tried again after
 * `unreadableRetryMs`. Queries lose nothing by it; they read more files until it succeeds.
 */
export interface MergeFailure {
  readonly processId: string;
  readonly streamId: string;
  /** The stream's name (its `name` property), or its id. */
  readonly stream: string;
  /** The partitions that were to be merged. */
  readonly partitionIds: readonly string[];
  readonly error: string;
}

/** A partition in use: its row and its local files. */
interface LivePartition {
  readonly row: PartitionRow;
  readonly local: PartitionFiles;
}

/**
 * Brings a process's partitions up to date, just in time: for each persisted lake stream, the
 * blocks no partition covers yet (of those that overlap the window) are decoded into new
 * partitions (a live process's new blocks extend its views this way), small partitions are merged
 * from their files once enough of them exist (see `COMPACT_AT`), and a partition whose files are
 * missing or unreadable is forgotten and rebuilt from its blocks. One an older dorsal wrote (see
 * `fileSchemaOf`) is not read: its blocks are decoded as no partition's, and it is forgotten once
 * partitions of this dorsal hold them all. Blocks are read here while the pool writes the previous
 * partition. Returns the local files of every view.
 *
 * `stop` aborted (its analytics close), it stops before the next partition it would fetch, block it
 * would read or partitions it would merge, once the partitions being written are stored, and
 * rejects with `stop.reason`: what it stored so far is kept.
 */
export async function materialize(
  lake: Lake,
  store: PartitionStore,
  pool: PartitionWriter,
  scratch: string,
  processId: string,
  window: TimeWindow = {},
  memory?: AnalyticsMemory,
  stop?: AbortSignal,
): Promise<Materialized> {
  const sources = (await lake.streams({ processId }))
    .map((stream) => ({ stream, table: sourceTableOf(stream) }))
    .filter((s): s is { stream: StreamRow; table: SourceTable } => s.table !== undefined);
  const live: LivePartition[] = [];
  const covered = new Set<string>();
  // Partitions before blocks: a partition another analytics made meanwhile covers blocks that
  // were in the lake before it, so every block of a listed partition is among those listed after
  // it unless retention deleted it. The other order would take a partition of a block that
  // arrived between the two lists for one of deleted blocks, and delete it.
  const listed = await store.list(processId);
  const blocks = await lake.blocks({ processId });
  const existing = new Set(blocks.map((b) => b.blockId));
  let rebuiltPartitions = 0;
  // Largest first, then oldest: of two partitions that share blocks (two analytics that made or
  // merged them at once), the one that covers more stays; the other is deleted, and what only it
  // covered is decoded again below.
  const rows = listed.sort((a, b) => b.blockIds.length - a.blockIds.length);
  const schemas = new Map(sources.map(({ stream, table }) => [stream.streamId, fileSchemaOf(table)]));
  /** Partitions an older dorsal wrote: not read; deleted once partitions of this one hold their blocks. */
  const older: PartitionRow[] = [];
  for (const row of rows) {
    // What its files hold (see `fileSchemaOf`); a row from before partitions said is of format 1.
    const format = row.fileSchema === null ? 1 : partitionFormatOf(row.fileSchema);
    // A newer dorsal's: left to it, and not read (its blocks are decoded below for this one).
    if (format > PARTITION_FORMAT) continue;
    const expected = schemas.get(row.streamId);
    if (
      expected !== undefined &&
      (row.fileSchema === null ? format !== PARTITION_FORMAT : row.fileSchema !== expected)
    ) {
      // Its blocks are decoded below, as no partition's; it stays until that is done (a block
      // whose blob was lost since keeps its rows in it, if unread), outside the window too.
      older.push(row);
      continue;
    }
    const stale = row.blockIds.some((id) => !existing.has(id) || covered.has(id));
    stop?.throwIfAborted();
    const local = stale ? undefined : await store.localFiles(row);
    if (local === undefined) {
      // Missing, damaged, a duplicate, or of blocks retention deleted: made again from the blocks there are.
      await store.delete(row);
      rebuiltPartitions++;
      continue;
    }
    for (const id of row.blockIds) covered.add(id);
    live.push({ row, local });
  }
  let decodedBlocks = 0;
  makeDirectoriesSync(scratch);
  const from = window.beginNs === undefined ? undefined : formatRfc3339Ns(window.beginNs);
  const to = window.endNs === undefined ? undefined : formatRfc3339Ns(window.endNs);
  const unreadable: UnreadableBlock[] = [];
  /**
   * Reads a block; one that does not read (its blob gone or damaged) is left out and listed in
   * `unreadable`. A block retention deleted meanwhile is no longer in the lake: left out, not listed.
   */
  const read = async (row: BlockRow, recordBytes: number): Promise<BlockParts | undefined> => {
    stop?.throwIfAborted();
    // Found unreadable a moment ago: not read again yet (see RetryLater).
    const known = memory?.unreadable.recent(row.blockId);
    if (known !== undefined) {
      unreadable.push(known);
      return undefined;
    }
    try {
      const { payload } = await lake.readBlock(row);
      // Bytes other than the records it counts: more, and what its batch holds is sized by that
      // count (a client's block of "1 record" and 8 MiB, 60 of them, held 1.5 GB at once); fewer,
      // and the records it lacks were in no table and no count.
      const expected = row.objectCount * recordBytes;
      if (payload.objects.byteLength !== expected) {
        leaveOut(
          row,
          `its records take ${payload.objects.byteLength} bytes, not those of its ${row.objectCount} records of ${recordBytes} bytes (${expected})`,
        );
        return undefined;
      }
      memory?.unreadable.succeeded(row.blockId);
      return { blockId: row.blockId, objectCount: row.objectCount, ...payload };
    } catch (error) {
      if (!doesNotRead(error)) throw error;
      if ((await lake.block(row.blockId)) !== undefined) leaveOut(row, error.message);
      return undefined;
    }
  };
  /** Lists a block that does not read, and remembers it. */
  const leaveOut = (row: BlockRow, said: string) => {
    const { processId, streamId, blockId, objectCount } = row;
    const reason = said.startsWith(`block ${blockId}`) ? said : `block ${blockId}: ${said}`;
    const block = { processId, streamId, blockId, objectCount, error: reason };
    memory?.unreadable.failed(blockId, block);
    unreadable.push(block);
  };
  /**
   * Writes a partition of `parts`; a block the pool finds damaged (its coverage does not read) is
   * left out and listed, and the rest written without it.
   */
  const write = async (
    stream: StreamRow,
    table: SourceTable,
    parts: readonly BlockParts[],
    rows: ReadonlyMap<string, BlockRow>,
  ): Promise<void> => {
    let written: PartitionRow;
    try {
      const firstInsert = earliest(parts.map((p) => rows.get(p.blockId)!.insertTime));
      written = await writePartitionFiles(store, pool, scratch, processId, stream, table, parts, firstInsert);
    } catch (error) {
      if (!(error instanceof RejectedBlocksError)) throw error;
      const rejected = new Set(error.rejected.map((r) => r.blockId));
      for (const { blockId, error: why } of error.rejected) {
        const row = rows.get(blockId)!;
        leaveOut(row, `block ${blockId} (blob ${row.blobPath}): ${why}`);
      }
      decodedBlocks -= rejected.size;
      const rest = parts.filter((p) => !rejected.has(p.blockId));
      if (rest.length > 0) await write(stream, table, rest, rows);
      return;
    }
    live.push({ row: written, local: await localFilesOf(store, written) });
  };
  const decode = async (stream: StreamRow, table: SourceTable, of: readonly BlockRow[]) => {
    const writing: Promise<void>[] = [];
    try {
      await decodeBatches(stream, table, of, writing);
    } finally {
      // A read that failed leaves no partition being written behind it.
      await Promise.allSettled(writing);
    }
    for (const pending of writing) await pending;
  };
  const decodeBatches = async (
    stream: StreamRow,
    table: SourceTable,
    of: readonly BlockRow[],
    writing: Promise<void>[],
  ) => {
    for (const batch of batches(of, table.recordBytes)) {
      const rows = new Map(batch.map((b) => [b.blockId, b]));
      let parts: BlockParts[] = [];
      let held = 0;
      const flush = async () => {
        if (parts.length === 0) return;
        // At most one partition per pool thread is written while the next is read.
        while (writing.length >= pool.threads) await writing.shift();
        writing.push(write(stream, table, parts, rows));
        decodedBlocks += parts.length;
        parts = [];
        held = 0;
      };
      for (const row of batch) {
        const part = await read(row, table.recordBytes);
        if (part === undefined) continue;
        parts.push(part);
        // The bytes read, dependencies too: a partition is cut early rather than hold more.
        held += part.objects.byteLength + part.dependencies.byteLength;
        if (held >= BYTES_PER_PARTITION) await flush();
      }
      await flush();
    }
  };
  /** Each block's place in the lake's listing: merged partitions keep their blocks in that order. */
  const position = new Map(blocks.map((b, i) => [b.blockId, i]));
  const firstPosition = (p: LivePartition) => Math.min(...p.row.blockIds.map((id) => position.get(id) ?? 0));
  let compactedPartitions = 0;
  for (const { stream, table } of sources) {
    await decode(
      stream,
      table,
      blocks.filter(
        (b) =>
          b.streamId === stream.streamId &&
          !covered.has(b.blockId) &&
          (from === undefined || b.endTime >= from) &&
          (to === undefined || b.beginTime < to),
      ),
    );
    for (const tier of smallTiers(live, stream.streamId, table.recordBytes)) {
      if (tier.length < COMPACT_AT) continue;
      const ordered = [...tier].sort((a, b) => firstPosition(a) - firstPosition(b));
      for (const group of mergeGroups(ordered, table.recordBytes)) {
        if (group.length < 2) continue;
        stop?.throwIfAborted();
        // Merged from the partitions' own files: no block is read again (one whose blob was lost
        // since keeps its rows). Stored before the small ones are deleted: a query sees either.
        // One of them failed to merge a moment ago (its inputs there): not tried again yet.
        if (group.some((p) => memory?.merges.recent(p.row.partitionId) !== undefined)) continue;
        let merged: LivePartition | undefined;
        try {
          merged = await mergePartitionFiles(store, pool, scratch, processId, stream, table, group);
        } catch (error) {
          // The small partitions still answer: the merge is tried again later, not at every look.
          const why = error instanceof Error ? error.message : String(error);
          for (const p of group) memory?.merges.failed(p.row.partitionId, why);
          try {
            memory?.onMergeFailed?.({
              processId,
              streamId: stream.streamId,
              stream: String(stream.properties.name ?? stream.streamId),
              partitionIds: group.map((p) => p.row.partitionId),
              error: why,
            });
          } catch {
            // A listener that throws must not turn a merge that failed harmlessly into a failed query.
          }
          continue;
        }
        if (merged === undefined) continue;
        live.push(merged);
        for (const partition of group) {
          await store.delete(partition.row);
          live.splice(live.indexOf(partition), 1);
        }
        compactedPartitions += group.length;
      }
    }
  }
  // An older dorsal's partition whose every block is now in one of this dorsal's is let go of.
  const held = new Set(live.flatMap((p) => p.row.blockIds));
  for (const row of older) {
    if (!row.blockIds.every((id) => held.has(id))) continue;
    stop?.throwIfAborted();
    await store.delete(row);
    rebuiltPartitions++;
  }
  const files = new Map<string, string[]>();
  const fileStreams = new Map<string, string>();
  for (const { row, local } of live) {
    files.set(row.view, [...(files.get(row.view) ?? []), local.data]);
    files.set('block_coverage', [...(files.get('block_coverage') ?? []), local.coverage]);
    fileStreams.set(local.data, row.streamId);
  }
  return {
    processId,
    sources,
    files,
    fileStreams,
    unreadable,
    decodedBlocks,
    rebuiltPartitions,
    compactedPartitions,
  };
}

/** A block's blob is missing or damaged (or of a wire format this reader does not know). */
function doesNotRead(error: unknown): error is Error {
  return (
    error instanceof LakeNotFoundError ||
    error instanceof WireFormatError ||
    error instanceof WireVersionError
  );
}

/** Blocks the pool wrote nothing for: their coverage does not read. */
class RejectedBlocksError extends WireFormatError {
  readonly rejected: readonly RejectedBlock[];

  constructor(rejected: readonly RejectedBlock[]) {
    super(rejected.map((r) => `block ${r.blockId}: ${r.error}`).join('; '));
    this.rejected = rejected;
  }
}

/** A stream's partitions that are not full, by size tier: 1–7 blocks, 8–63, 64–255. */
function smallTiers(
  live: readonly LivePartition[],
  streamId: string,
  recordBytes: number,
): LivePartition[][] {
  const tiers: LivePartition[][] = [[], [], []];
  for (const partition of live) {
    const { row } = partition;
    if (row.streamId !== streamId || row.blockIds.length >= BLOCKS_PER_PARTITION) continue;
    if (row.rowCount * recordBytes >= BYTES_PER_PARTITION / 2) continue;
    tiers[Math.min(2, Math.floor(Math.log(row.blockIds.length) / Math.log(COMPACT_AT)))]!.push(partition);
  }
  return tiers;
}

/** Blocks in groups of at most BLOCKS_PER_PARTITION and about BYTES_PER_PARTITION of records. */
function* batches(blocks: readonly BlockRow[], recordBytes: number): Generator<BlockRow[]> {
  let batch: BlockRow[] = [];
  let bytes = 0;
  for (const block of blocks) {
    batch.push(block);
    bytes += block.objectCount * recordBytes;
    if (batch.length >= BLOCKS_PER_PARTITION || bytes >= BYTES_PER_PARTITION) {
      yield batch;
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * Consecutive runs of `partitions` that fit in one partition (BLOCKS_PER_PARTITION blocks, about
 * BYTES_PER_PARTITION of records).
 */
function* mergeGroups(partitions: readonly LivePartition[], recordBytes: number): Generator<LivePartition[]> {
  let group: LivePartition[] = [];
  let blocks = 0;
  let bytes = 0;
  for (const partition of partitions) {
    const { row } = partition;
    if (
      group.length > 0 &&
      (blocks + row.blockIds.length > BLOCKS_PER_PARTITION ||
        bytes + row.rowCount * recordBytes > BYTES_PER_PARTITION)
    ) {
      yield group;
      group = [];
      blocks = 0;
      bytes = 0;
    }
    group.push(partition);
    blocks += row.blockIds.length;
    bytes += row.rowCount * recordBytes;
  }
  if (group.length > 0) yield group;
}

/** A partition's local files, right after it was stored (they are there: it wrote them). */
async function localFilesOf(store: PartitionStore, row: PartitionRow): Promise<PartitionFiles> {
  const local = await store.localFiles(row);
  if (local === undefined)
    throw new Error(`partition ${row.partitionId} is missing right after it was stored`);
  return local;
}

/**
 * Writes one partition of the rows and coverage of `group` (partitions of one stream, in their
 * blocks' order) from their local files, on the pool, and stores it. Undefined when a file of the
 * group is gone (another analytics deleted or merged the partition meanwhile): the small
 * partitions then stay as they are, and are merged at a later look. Rejects when the merge
 * fails with its files there.
 */
async function mergePartitionFiles(
  store: PartitionStore,
  pool: PartitionWriter,
  scratch: string,
  processId: string,
  stream: StreamRow,
  table: SourceTable,
  group: readonly LivePartition[],
): Promise<LivePartition | undefined> {
  const at = {
    processId,
    stream,
    table,
    blockIds: group.flatMap((p) => p.row.blockIds),
    firstBlockInsertTime: earliest(group.map((p) => p.row.firstBlockInsertTime)),
  };
  const row = await storePartition(store, scratch, at, async (files) => {
    try {
      const { rows } = await pool.run({
        kind: 'merge',
        wholeColumns: table.columns.filter((c) => c.from === 'whole-f64').map((c) => c.name),
        dataFiles: group.map((p) => p.local.data),
        coverageFiles: group.map((p) => p.local.coverage),
        dataPath: files.data,
        coveragePath: files.coverage,
      });
      return rows;
    } catch (error) {
      if (group.some((p) => !existsSync(p.local.data) || !existsSync(p.local.coverage))) return undefined;
      throw error;
    }
  });
  return row === undefined ? undefined : { row, local: await localFilesOf(store, row) };
}

/**
 * Writes one partition (its rows and its blocks' coverage) for `parts` on the pool, and stores it;
 * `firstBlockInsertTime`: when the earliest of their blocks was inserted.
 */
async function writePartitionFiles(
  store: PartitionStore,
  pool: PartitionWriter,
  scratch: string,
  processId: string,
  stream: StreamRow,
  table: SourceTable,
  parts: readonly BlockParts[],
  firstBlockInsertTime: string,
): Promise<PartitionRow> {
  const at = { processId, stream, table, blockIds: parts.map((p) => p.blockId), firstBlockInsertTime };
  const row = await storePartition(store, scratch, at, async (files) => {
    const { rows, rejected } = await pool.run({
      source: table,
      streamId: stream.streamId,
      blocks: parts,
      dataPath: files.data,
      coveragePath: files.coverage,
    });
    if (rejected.length > 0) throw new RejectedBlocksError(rejected);
    return rows;
  });
  return row!;
}

/** What a new partition is of: a stream's view, and some of its blocks. */
interface PartitionOf {
  readonly processId: string;
  readonly stream: StreamRow;
  readonly table: SourceTable;
  readonly blockIds: readonly string[];
  /** When the earliest of the blocks was inserted: retention deletes the partition with it. */
  readonly firstBlockInsertTime: string;
}

/**
 * A new partition of `of.blockIds`: `write` makes its two files in the scratch directory (and says
 * how many rows, or undefined for none made), then they are stored with its row; the scratch
 * files are removed whatever happens.
 */
async function storePartition(
  store: PartitionStore,
  scratch: string,
  of: PartitionOf,
  write: (files: PartitionFiles) => Promise<number | undefined>,
): Promise<PartitionRow | undefined> {
  const { processId, stream, table, blockIds } = of;
  const partitionId = randomUUID();
  const files = {
    data: join(scratch, `${partitionId}.parquet`),
    coverage: join(scratch, `${partitionId}.coverage.parquet`),
  };
  try {
    const rows = await write(files);
    if (rows === undefined) return undefined;
    const row: PartitionRow = {
      partitionId,
      view: table.table,
      processId,
      streamId: stream.streamId,
      blockIds: [...blockIds],
      rowCount: rows,
      dataBytes: statSync(files.data).size,
      coverageBytes: statSync(files.coverage).size,
      insertTime: nowRfc3339Ns(),
      firstBlockInsertTime: of.firstBlockInsertTime,
      fileSchema: fileSchemaOf(table),
    };
    await store.save(row, files);
    return row;
  } finally {
    rmSync(files.data, { force: true });
    rmSync(files.coverage, { force: true });
  }
}

/** The earliest of some times (normalized RFC 3339: text order is time order). */
function earliest(times: readonly string[]): string {
  return [...times].sort()[0]!;
}

/**
 * True when a local copy of a partition file looks whole: the size its row recorded, and
 * Parquet's magic at both ends (a truncated or overwritten file fails one or the other).
 */
export function looksWhole(path: string, bytes: number): boolean {
  try {
    if (statSync(path).size !== bytes || bytes < 12) return false;
    const fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(4);
      const tail = Buffer.alloc(4);
      readSync(fd, head, 0, 4, 0);
      readSync(fd, tail, 0, 4, bytes - 4);
      return head.toString('latin1') === 'PAR1' && tail.toString('latin1') === 'PAR1';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}
