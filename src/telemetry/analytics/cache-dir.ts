import { join, resolve } from 'node:path';
import { realPathOf } from '../../directories.js';
import { LakeConfigError } from '../errors.js';
import { DirectoryBlobStore } from '../lake/directory-blobs.js';
import type { Lake } from '../lake/lake.js';

/**
 * Refuses an analytics cache directory that is the lake's blob directory. The partitions' files
 * are kept in the lake under `views/…` and copied into the cache under the same path: there the
 * copies would be the lake's own files, and the cache removes a copy it takes as stale (a partition
 * another analytics merged away, or is saving as this one lists): a removal from the lake.
 */
export function checkAnalyticsCacheDir(lake: Lake, cacheDir: string): void {
  const blobs = lake.blobs;
  if (!(blobs instanceof DirectoryBlobStore)) return;
  // As the cache uses them: joined as text (`path.join` takes `a/..` away whatever `a` is), then
  // resolved (a `..` after a link, read by the kernel, named another directory than its writes).
  if (realPathOf(resolve(cacheDir)) !== realPathOf(resolve(blobs.root))) return;
  throw new LakeConfigError(
    `the analytics cache directory ${cacheDir} is the lake's blob directory, whose partition files the cache would take as its copies and remove: give the analytics a directory of their own (${join(cacheDir, 'analytics')}, say)`,
  );
}
