import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import {
  type BlockParts,
  type CoverageRow,
  PARTITION_COPY_OPTIONS,
  type RejectedBlock,
  writePartition,
} from './etl.js';
import type { SourceTable } from './source-tables.js';
import { quoteIdentifier, quoteLiteral } from './sql.js';

/** One partition to write, as the pool's task: from blocks, or merged from partitions' files. */
export type EtlTask = PartitionTask | MergeTask;

/** One partition to write from its blocks' records. */
export interface PartitionTask {
  readonly kind?: 'blocks';
  readonly source: SourceTable;
  readonly streamId: string;
  readonly blocks: readonly BlockParts[];
  /** Local paths of the partition's two Parquet files. */
  readonly dataPath: string;
  readonly coveragePath: string;
}

/**
 * One partition to write from the files of smaller ones of the same stream: their rows in the
 * order of the files given, and their coverage rows. No block is read.
 */
export interface MergeTask {
  readonly kind: 'merge';
  /**
   * Columns that new partitions hold as BIGINT (`'whole-f64'`), which older ones hold as DOUBLE:
   * merged as BIGINT whatever the first file's type (a file list takes that one's).
   */
  readonly wholeColumns?: readonly string[];
  readonly dataFiles: readonly string[];
  readonly coverageFiles: readonly string[];
  readonly dataPath: string;
  readonly coveragePath: string;
}

export interface PartitionTaskResult {
  readonly rows: number;
  readonly coverage: readonly CoverageRow[];
  /** Blocks whose coverage does not read: when any, no file is written (see `writePartition`). */
  readonly rejected: readonly RejectedBlock[];
}

/** This thread's DuckDB: in memory, used only to write Parquet files (no query runs on it). */
let connection: Promise<DuckDBConnection> | undefined;

/**
 * Writes a partition's rows and its blocks' coverage as Parquet files: the ETL's task on the
 * analytics' piscina pool, off the event loop of the thread that answers queries.
 */
export default async function writePartitionTask(task: EtlTask): Promise<PartitionTaskResult> {
  connection ??= DuckDBInstance.create(':memory:').then((db) => db.connect());
  return runEtlTask(await connection, task);
}

/** Writes a partition's files with `etl` (a DuckDB of the writer's own, in memory). */
export async function runEtlTask(etl: DuckDBConnection, task: EtlTask): Promise<PartitionTaskResult> {
  if (task.kind === 'merge') return mergePartitions(etl, task);
  const { rows, coverage, rejected } = await writePartition(etl, task.source, task.blocks, task.dataPath);
  if (rejected.length > 0) return { rows: 0, coverage: [], rejected };
  await writeCoverage(etl, task.streamId, coverage, task.coveragePath);
  return { rows, coverage, rejected };
}

/**
 * Writes the rows of several partitions' data files as one file, in the order given (DuckDB keeps
 * the insertion order: each file's rows, one file after the other), and their coverage as one
 * (by column name: coverage files written before `dropped_total` existed lack it). The files'
 * columns only: DuckDB would otherwise add one per `key=value` directory of their paths
 * (`process_id=…`, which the views take from the path), to be written into the merged file.
 */
async function mergePartitions(etl: DuckDBConnection, task: MergeTask): Promise<PartitionTaskResult> {
  const list = (files: readonly string[]) => `[${files.map(quoteLiteral).join(', ')}]`;
  const whole = task.wholeColumns ?? [];
  // TRY_CAST: a damaged record's NaN becomes NULL, not a merge that fails.
  const replace =
    whole.length === 0
      ? ''
      : ` REPLACE (${whole.map((c) => `TRY_CAST(${quoteIdentifier(c)} AS BIGINT) AS ${quoteIdentifier(c)}`).join(', ')})`;
  const written = await etl.run(
    `COPY (SELECT *${replace} FROM read_parquet(${list(task.dataFiles)}, hive_partitioning = false)) TO ${quoteLiteral(task.dataPath)} (${PARTITION_COPY_OPTIONS})`,
  );
  await etl.run(
    `COPY (SELECT * FROM read_parquet(${list(task.coverageFiles)}, union_by_name = true, hive_partitioning = false)) TO ${quoteLiteral(task.coveragePath)} (FORMAT parquet)`,
  );
  return { rows: Number(written.rowsChanged), coverage: [], rejected: [] };
}

/** The coverage of each block of a partition, as its own small Parquet file. */
async function writeCoverage(
  etl: DuckDBConnection,
  streamId: string,
  coverage: readonly CoverageRow[],
  file: string,
): Promise<void> {
  const values = coverage
    .map(
      (c) =>
        `(${quoteLiteral(streamId)}, ${quoteLiteral(c.blockId)}, ${c.objectCount}::BIGINT, ${c.firstSeq}::DOUBLE, ${c.endSeq}::DOUBLE, ${c.lostTotal}::DOUBLE, ${c.poisonedTotal}::DOUBLE, ${c.droppedTotal}::DOUBLE)`,
    )
    .join(', ');
  await etl.run(
    `COPY (SELECT * FROM (VALUES ${values}) AS c(stream_id, block_id, object_count, first_seq, end_seq, lost_total, poisoned_total, dropped_total)) TO ${quoteLiteral(file)} (FORMAT parquet)`,
  );
}
