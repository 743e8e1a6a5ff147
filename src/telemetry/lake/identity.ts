import { resolve } from 'node:path';
import { DEFAULT_DATA_DIR, type LakeLocation, localPath, sqliteFileOf } from './open.js';

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;

/**
 * What tells a lake from another, as a location names it: its metadata database (a SQLite file's
 * absolute path, or a PostgreSQL server, database and schema, without credentials) and its blob
 * store (a directory's absolute path, or an S3 bucket, prefix and endpoint). Two locations that
 * name one lake differently (a relative path, from another directory) give the same text; two
 * lakes give two. An unsupported URL is a `LakeConfigError`, as when the lake is opened.
 */
export function lakeIdentity(location: LakeLocation = {}): string {
  return JSON.stringify([metadataIdentity(location), blobsIdentity(location)]);
}

function metadataIdentity(location: LakeLocation): string {
  const file = sqliteFileOf(location);
  if (file !== undefined) return `sqlite:${file}`;
  const url = new URL(location.db!);
  const schema = url.searchParams.get('schema') ?? 'public';
  return `postgres://${url.host}${url.pathname}?schema=${schema}`;
}

function blobsIdentity(location: LakeLocation): string {
  const blobs = location.blobs ?? location.data ?? DEFAULT_DATA_DIR;
  const scheme = SCHEME.exec(blobs)?.[1]?.toLowerCase();
  if (scheme === 's3') {
    const url = new URL(blobs);
    const endpoint = url.searchParams.get('endpoint') ?? location.s3?.endpoint ?? '';
    return `s3://${url.hostname}${decodeURIComponent(url.pathname)}?endpoint=${endpoint}`;
  }
  if (scheme === 'file') return `file:${localPath(blobs, scheme)}`;
  return `file:${resolve(blobs)}`;
}
