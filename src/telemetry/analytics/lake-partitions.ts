import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LakeNotFoundError } from '../errors.js';
import type { Lake } from '../lake/lake.js';
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
 * of the files it read in its cache directory, fetched once.
 */
export class LakePartitionStore implements PartitionStore {
  private readonly lake: Lake;
  private readonly cacheDir: string;

  constructor(lake: Lake, cacheDir: string) {
    this.lake = lake;
    this.cacheDir = cacheDir;
  }

  list(processId: string): Promise<PartitionRow[]> {
    return this.lake.metadata.listPartitions(processId);
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
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.part`, content);
      renameSync(`${file}.part`, file);
      if (!looksWhole(file, bytes)) return undefined;
    }
    return local;
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
