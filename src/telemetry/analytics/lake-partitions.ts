import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeDirectoriesSync } from '../../directories.js';
import { LakeNotFoundError } from '../errors.js';
import type { Lake } from '../lake/lake.js';
import { forgetGoneProcesses, type SweptLake } from './gone-processes.js';
import { lakeCacheDir } from './lake-cache-dir.js';
import { movePartitionFiles } from './local-partitions.js';
import {
  looksWhole,
  type PartitionFiles,
  type PartitionRow,
  type PartitionStore,
  partitionPaths,
} from './partitions.js';

/**
 * Partitions kept in the lake, as micromegas keeps its views: their Parquet files in the lake's
 * blob storage (`views/{view}/process_id={process}/{partition}.parquet`), their rows in its
 * metadata database. Any number of analytics over one lake share them; each keeps a local copy
 * of the files it read in its cache directory, fetched once: in the lake's own subdirectory of it
 * (`lakeCacheDir`), which no other lake's analytics (nor an older dorsal) writes or sweeps.
 */
export class LakePartitionStore implements PartitionStore {
  private readonly lake: Lake;
  /** The lake's own subdirectory of the cache directory, where its copies are. */
  readonly cacheDir: string;

  constructor(lake: Lake, cacheDir: string) {
    this.lake = lake;
    this.cacheDir = lakeCacheDir(cacheDir, lake.identity);
  }

  /** The process's partitions; the cached copies of any other (merged or deleted by another analytics) are removed. */
  async list(processId: string): Promise<PartitionRow[]> {
    const rows = await this.lake.metadata.listPartitions(processId);
    this.forgetOthers(processId, rows);
    return rows;
  }

  /** Stores the files in blob storage, then the row; the local files become the cache's copies. */
  async save(row: PartitionRow, files: PartitionFiles): Promise<void> {
    const paths = partitionPaths(row);
    for (const [from, to] of [
      [files.data, paths.data],
      [files.coverage, paths.coverage],
    ] as const) {
      await this.lake.blobs.putIfAbsent(to, readFileSync(from));
    }
    await this.lake.metadata.insertPartition(row);
    movePartitionFiles(files, paths, this.cacheDir);
  }

  /** The cached copies, fetched from blob storage when missing or not whole; undefined if the blobs are gone. */
  async localFiles(row: PartitionRow): Promise<PartitionFiles | undefined> {
    const paths = partitionPaths(row);
    const local = { data: join(this.cacheDir, paths.data), coverage: join(this.cacheDir, paths.coverage) };
    for (const [blob, file, bytes] of [
      [paths.data, local.data, row.dataBytes],
      [paths.coverage, local.coverage, row.coverageBytes],
    ] as const) {
      if (looksWhole(file, bytes)) continue;
      let content: Uint8Array;
      try {
        content = await this.lake.blobs.get(blob);
      } catch (error) {
        if (error instanceof LakeNotFoundError) return undefined;
        throw error;
      }
      makeDirectoriesSync(dirname(file));
      // A name of its own: two processes sharing the cache may fetch the same file at once.
      const part = `${file}.${process.pid}-${randomUUID()}.part`;
      writeFileSync(part, content);
      renameSync(part, file);
      if (!looksWhole(file, bytes)) return undefined;
    }
    return local;
  }

  /**
   * Removes the cached copies of the process's partitions that `rows` does not hold: another
   * analytics over the lake merged them away, and only the one that deletes a partition removes
   * its own copies, so a cache would otherwise keep every small partition it ever read. A query
   * still reading one fails on the missing file and looks at the lake again (see `Analytics.query`).
   */
  private forgetOthers(processId: string, rows: readonly PartitionRow[]): void {
    const listed = new Set(rows.map((row) => `${row.partitionId}.parquet`));
    const views = join(this.cacheDir, 'views');
    if (!existsSync(views)) return;
    for (const view of readdirSync(views)) {
      const dir = join(views, view, `process_id=${processId}`);
      if (!existsSync(dir)) continue;
      for (const file of readdirSync(dir)) {
        if (file.endsWith('.parquet') && !listed.has(file)) rmSync(join(dir, file), { force: true });
      }
    }
  }

  /**
   * Removes the cached copies of the processes the lake no longer lists: retention deleted them and
   * their partitions (rows and files), and `list` is never asked for them again.
   */
  forgetGoneProcesses(lake: SweptLake): Promise<string[]> {
    return forgetGoneProcesses(this.cacheDir, lake);
  }

  /** Deletes the row, then the blobs (recorded as garbage meanwhile, as retention does), then the copies. */
  async delete(row: PartitionRow): Promise<void> {
    const paths = await this.lake.metadata.deletePartitions([row.partitionId]);
    if (paths.length > 0) {
      await this.lake.blobs.delete(paths);
      await this.lake.metadata.forgetGarbage(paths);
    }
    const local = partitionPaths(row);
    rmSync(join(this.cacheDir, local.data), { force: true });
    rmSync(join(this.cacheDir, local.coverage), { force: true });
  }
}
