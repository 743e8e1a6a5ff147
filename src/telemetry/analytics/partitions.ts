import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Lake } from '../lake/lake.js';
import { type BlockRow, type PartitionRow, partitionBlobPaths, type StreamRow } from '../lake/types.js';
import { formatRfc3339Ns, nowRfc3339Ns } from '../wire/index.js';
import type { BlockParts } from './etl.js';
import type { EtlPool } from './etl-pool.js';
import type { TimeWindow } from './query.js';
import { type SourceTable, sourceTableOf } from './source-tables.js';

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
}

/** A partition holds at most this many blocks, and about this many bytes of records. */
const BLOCKS_PER_PARTITION = 256;
const BYTES_PER_PARTITION = 64 << 20;

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
  /** Blocks decoded by this call (0 once everything is cached). */
  readonly decodedBlocks: number;
  /** Partitions found missing or unreadable, forgotten and rebuilt from their blocks. */
  readonly rebuiltPartitions: number;
}

/**
 * Brings a process's partitions up to date, just in time: for each persisted lake stream, the
 * blocks no partition covers yet (of those that overlap the window) are decoded into new partitions (a live process's new blocks
 * extend its views this way), and a partition whose files are missing or unreadable is forgotten
 * and rebuilt from its blocks. Blocks are read here while the pool writes the previous partition.
 * Returns the local files of every view.
 */
export async function materialize(
  lake: Lake,
  store: PartitionStore,
  pool: EtlPool,
  scratch: string,
  processId: string,
  window: TimeWindow = {},
): Promise<Materialized> {
  const sources = (await lake.streams({ processId }))
    .map((stream) => ({ stream, table: sourceTableOf(stream) }))
    .filter((s): s is { stream: StreamRow; table: SourceTable } => s.table !== undefined);
  const files = new Map<string, string[]>();
  const covered = new Set<string>();
  const fileStreams = new Map<string, string>();
  const add = (view: string, local: PartitionFiles, streamId: string) => {
    files.set(view, [...(files.get(view) ?? []), local.data]);
    files.set('block_coverage', [...(files.get('block_coverage') ?? []), local.coverage]);
    fileStreams.set(local.data, streamId);
  };
  const blocks = await lake.blocks({ processId });
  const existing = new Set(blocks.map((b) => b.blockId));
  let rebuiltPartitions = 0;
  // Oldest first: of two partitions of the same blocks (two analytics that made them at once),
  // the first one stays.
  for (const row of await store.list(processId)) {
    const stale = row.blockIds.some((id) => !existing.has(id) || covered.has(id));
    const local = stale ? undefined : await store.localFiles(row);
    if (local === undefined) {
      // Missing, damaged, a duplicate, or of blocks retention deleted: made again from the blocks there are.
      await store.delete(row);
      rebuiltPartitions++;
      continue;
    }
    for (const id of row.blockIds) covered.add(id);
    add(row.view, local, row.streamId);
  }
  let decodedBlocks = 0;
  const writing: Promise<void>[] = [];
  mkdirSync(scratch, { recursive: true });
  const from = window.beginNs === undefined ? undefined : formatRfc3339Ns(window.beginNs);
  const to = window.endNs === undefined ? undefined : formatRfc3339Ns(window.endNs);
  for (const { stream, table } of sources) {
    const missing = blocks.filter(
      (b) =>
        b.streamId === stream.streamId &&
        !covered.has(b.blockId) &&
        (from === undefined || b.endTime >= from) &&
        (to === undefined || b.beginTime < to),
    );
    for (const batch of batches(missing, table.recordBytes)) {
      const parts: BlockParts[] = [];
      for (const row of batch) {
        const { payload } = await lake.readBlock(row);
        parts.push({ blockId: row.blockId, objectCount: row.objectCount, ...payload });
      }
      // At most one partition per pool thread is written while the next is read.
      while (writing.length >= pool.threads) await writing.shift();
      writing.push(
        writePartitionFiles(store, pool, scratch, processId, stream, table, parts).then(async (written) => {
          const local = await store.localFiles(written);
          if (local === undefined)
            throw new Error(`partition ${written.partitionId} is missing right after it was stored`);
          add(written.view, local, written.streamId);
        }),
      );
      decodedBlocks += batch.length;
    }
  }
  for (const pending of writing) await pending;
  return { processId, sources, files, fileStreams, decodedBlocks, rebuiltPartitions };
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

/** Writes one partition (its rows and its blocks' coverage) for `parts` on the pool, and stores it. */
async function writePartitionFiles(
  store: PartitionStore,
  pool: EtlPool,
  scratch: string,
  processId: string,
  stream: StreamRow,
  table: SourceTable,
  parts: readonly BlockParts[],
): Promise<PartitionRow> {
  const partitionId = randomUUID();
  const files = {
    data: join(scratch, `${partitionId}.parquet`),
    coverage: join(scratch, `${partitionId}.coverage.parquet`),
  };
  try {
    const { rows } = await pool.run({
      source: table,
      streamId: stream.streamId,
      blocks: parts,
      dataPath: files.data,
      coveragePath: files.coverage,
    });
    const row: PartitionRow = {
      partitionId,
      view: table.table,
      processId,
      streamId: stream.streamId,
      blockIds: parts.map((p) => p.blockId),
      rowCount: rows,
      dataBytes: statSync(files.data).size,
      coverageBytes: statSync(files.coverage).size,
      insertTime: nowRfc3339Ns(),
    };
    await store.save(row, files);
    return row;
  } finally {
    rmSync(files.data, { force: true });
    rmSync(files.coverage, { force: true });
  }
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
