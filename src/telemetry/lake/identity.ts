import { realpathSync } from 'node:fs';
import { basename, dirname, join, normalize, resolve } from 'node:path';
import { parse } from 'pg-connection-string';
import { LakeConfigError } from '../errors.js';
import { decodedPath } from './lake-url.js';
import { DEFAULT_DATA_DIR, type LakeLocation, localPath, redact, sqliteFileOf } from './open.js';

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;

/**
 * What tells a lake from another, as a location names it: its metadata database (a SQLite file's
 * canonical path, or a PostgreSQL server, port, database, user, schema and options, as pg reads
 * them, with its defaults, without the password) and its blob store (a directory's canonical path,
 * or an S3 bucket, prefix and endpoint). Two locations that name one lake differently (a relative
 * path, a symbolic link, a trailing slash, `./`, the default port written or not, a host in
 * capitals) give the same text; two lakes give two. An unsupported or unparsable URL is a
 * `LakeConfigError`, as when the lake is opened.
 */
export function lakeIdentity(location: LakeLocation = {}): string {
  return JSON.stringify([metadataIdentity(location), blobsIdentity(location)]);
}

function metadataIdentity(location: LakeLocation): string {
  const file = sqliteFileOf(location);
  if (file !== undefined) return `sqlite:${canonicalPath(file)}`;
  const db = location.db!;
  let parsed: ReturnType<typeof parse>;
  let schema: string;
  try {
    parsed = parse(db);
    schema = new URL(db).searchParams.get('schema') ?? 'public';
  } catch (error) {
    throw new LakeConfigError(`${redact(db)} is no valid PostgreSQL URL (${(error as Error).name})`);
  }
  // pg's defaults (`pg/lib/connection-parameters.js`): the environment's, then its own.
  const env = process.env;
  const user = parsed.user || env.PGUSER || env.USER || env.USERNAME || '';
  const host = parsed.host || env.PGHOST || 'localhost';
  const port = Number(parsed.port || env.PGPORT || 5432);
  const database = parsed.database || env.PGDATABASE || user;
  return `postgres:${JSON.stringify({
    host: host.startsWith('/') ? canonicalPath(host) : host.toLowerCase(),
    port,
    database,
    user,
    schema,
    options: parsed.options ?? '',
  })}`;
}

function blobsIdentity(location: LakeLocation): string {
  const blobs = location.blobs ?? location.data ?? DEFAULT_DATA_DIR;
  const scheme = SCHEME.exec(blobs)?.[1]?.toLowerCase();
  if (scheme === 's3') {
    let url: URL;
    let endpoint: string;
    try {
      url = new URL(blobs);
      endpoint = url.searchParams.get('endpoint') ?? location.s3?.endpoint ?? '';
      if (endpoint !== '') endpoint = new URL(endpoint).href.replace(/\/+$/, '');
    } catch (error) {
      throw new LakeConfigError(`${redact(blobs)} is no valid S3 URL (${(error as Error).name})`);
    }
    const prefix = decodedPath(url, 'S3').replace(/\/+$/, '');
    return `s3://${url.hostname.toLowerCase()}${prefix}?endpoint=${endpoint}`;
  }
  if (scheme === 'file') return `file:${canonicalPath(localPath(blobs, scheme))}`;
  return `file:${canonicalPath(resolve(blobs))}`;
}

/**
 * An absolute path, normalized, without a trailing slash, its symbolic links resolved as far as
 * it exists (a lake's file may not be there yet: its nearest existing directory is resolved).
 */
function canonicalPath(path: string): string {
  const absolute = resolve(normalize(path));
  try {
    return realpathSync(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(canonicalPath(parent), basename(absolute));
  }
}
