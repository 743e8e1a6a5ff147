import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** A short digest of a lake's identity (`lakeIdentity`): 16 hex digits. */
export function lakeDigest(identity: string): string {
  return createHash('sha256').update(identity).digest('hex').slice(0, 16);
}

/**
 * The directory, inside an analytics cache directory, where the copies of one lake's partitions
 * are kept (`{cacheDir}/lake-{digest}/views/…`) and swept: of that lake's own, so that no sweep
 * sees another lake's copies (a cache directory shared by several lakes' analytics) nor those an
 * older dorsal wrote in `{cacheDir}/views` (left alone: they may be deleted by hand).
 */
export function lakeCacheDir(cacheDir: string, identity: string): string {
  return join(cacheDir, `lake-${lakeDigest(identity)}`);
}
