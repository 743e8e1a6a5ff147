import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lakeDigest } from '../telemetry/analytics/lake-cache-dir.js';
import { lakeIdentity } from '../telemetry/lake/identity.js';
import { type LakeOptions, lakeLocation } from './options.js';

/**
 * Where a server keeps its analytics' partitions: `--analytics-cache`, or in the embedded lake's
 * directory, or a directory of its own per lake, named by a digest of the lake's identity
 * (`lakeIdentity`: absolute paths, `--data` included), so that two lakes never get one directory.
 */
export function analyticsCacheDir(options: LakeOptions & { readonly analyticsCache?: string }): string {
  if (options.analyticsCache !== undefined) return options.analyticsCache;
  if (options.db === undefined && options.blobs === undefined) return join(options.data, 'analytics');
  return join(tmpdir(), 'dorsal-analytics', lakeDigest(lakeIdentity(lakeLocation(options))));
}
