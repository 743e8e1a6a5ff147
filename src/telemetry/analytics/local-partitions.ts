import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeDirectoriesSync } from '../../directories.js';
import { forgetGoneProcesses, type SweptLake } from './gone-processes.js';
import {
  looksWhole,
  type PartitionFiles,
  type PartitionRow,
  type PartitionStore,
  partitionPaths,
} from './partitions.js';

/**
 * Partitions kept in a local directory only: the Parquet files under `views/…` and, per process,
 * a JSON list of rows. For one analytics process over a lake it can rebuild from at any time.
 */
export class LocalPartitionStore implements PartitionStore {
  private readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async list(processId: string): Promise<PartitionRow[]> {
    const file = this.rowsFile(processId);
    if (!existsSync(file)) return [];
    const rows = JSON.parse(readFileSync(file, 'utf8')) as StoredRow[];
    // Rows written before they said when their first block was inserted: their own insert time;
    // before they said what their files hold: null.
    return rows.map((row) => ({
      ...row,
      firstBlockInsertTime: row.firstBlockInsertTime ?? row.insertTime,
      fileSchema: row.fileSchema ?? null,
    }));
  }

  async save(row: PartitionRow, files: PartitionFiles): Promise<void> {
    movePartitionFiles(files, partitionPaths(row), this.root);
    await this.writeRows(row.processId, [...(await this.list(row.processId)), row]);
  }

  async localFiles(row: PartitionRow): Promise<PartitionFiles | undefined> {
    const paths = partitionPaths(row);
    const data = join(this.root, paths.data);
    const coverage = join(this.root, paths.coverage);
    return looksWhole(data, row.dataBytes) && looksWhole(coverage, row.coverageBytes)
      ? { data, coverage }
      : undefined;
  }

  async delete(row: PartitionRow): Promise<void> {
    const rows = (await this.list(row.processId)).filter((r) => r.partitionId !== row.partitionId);
    await this.writeRows(row.processId, rows);
    const paths = partitionPaths(row);
    rmSync(join(this.root, paths.data), { force: true });
    rmSync(join(this.root, paths.coverage), { force: true });
  }

  /** Removes the partitions (rows and files) of the processes the lake no longer lists. */
  forgetGoneProcesses(lake: SweptLake): Promise<string[]> {
    return forgetGoneProcesses(this.root, lake, join(this.root, 'partitions'));
  }

  private rowsFile(processId: string): string {
    return join(this.root, 'partitions', `${processId}.json`);
  }

  private async writeRows(processId: string, rows: readonly PartitionRow[]): Promise<void> {
    const file = this.rowsFile(processId);
    makeDirectoriesSync(dirname(file));
    writeFileSync(`${file}.tmp`, JSON.stringify(rows));
    renameSync(`${file}.tmp`, file);
  }
}

/** A row as a row list holds it: those of earlier versions lack `firstBlockInsertTime` and `fileSchema`. */
type StoredRow = Omit<PartitionRow, 'firstBlockInsertTime' | 'fileSchema'> & {
  readonly firstBlockInsertTime?: string;
  readonly fileSchema?: string | null;
};

/** Moves a partition's local files to their paths under `root`. */
export function movePartitionFiles(files: PartitionFiles, paths: PartitionFiles, root: string): void {
  for (const [from, to] of [
    [files.data, paths.data],
    [files.coverage, paths.coverage],
  ] as const) {
    const target = join(root, to);
    makeDirectoriesSync(dirname(target));
    moveFile(from, target);
  }
}

/** Moves a file (a rename, or a copy where the two paths are on different file systems). */
function moveFile(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    copyFileSync(from, to);
  }
}
