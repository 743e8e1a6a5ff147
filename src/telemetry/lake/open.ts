import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LakeConfigError } from '../errors.js';
import { type DirectoryBlobOptions, DirectoryBlobStore } from './directory-blobs.js';
import { redact } from './lake-url.js';
import { PostgresMetadataStore, type PostgresStoreOptions } from './postgres-store.js';
import { type S3BlobOptions, S3BlobStore } from './s3-blobs.js';
import { SqliteMetadataStore } from './sqlite-store.js';
import type { BlobStore, MetadataStore } from './types.js';

/** Default data directory of the embedded lake. */
export const DEFAULT_DATA_DIR = './dorsal-data';

/** Name of the SQLite file inside the data directory. */
export const SQLITE_FILE = 'lake.sqlite';

/**
 * Where a lake lives. Nothing given: SQLite + blobs in `./dorsal-data`. `db` and `blobs`, when
 * given, override each part: `postgres://…` (or `postgresql://…`, with `?schema=`) or
 * `sqlite:path`/a file path; `s3://bucket/prefix?endpoint=…` or `file:path`/a directory.
 */
export interface LakeLocation {
  /** Data directory of the embedded lake (default `./dorsal-data`). */
  readonly data?: string;
  /** Metadata database URL or SQLite file path (default `{data}/lake.sqlite`). */
  readonly db?: string;
  /** Blob store URL or directory (default `{data}`; payloads go under `{data}/blobs`). */
  readonly blobs?: string;
  readonly s3?: S3BlobOptions;
  readonly directory?: DirectoryBlobOptions;
  readonly postgres?: PostgresStoreOptions;
}

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;

export { redact } from './lake-url.js';

/** The path of `sqlite:…`/`file:…` (`scheme` in lower case; the value's in any case). */
export function localPath(value: string, scheme: string): string {
  if (value.slice(scheme.length + 1).startsWith('//')) {
    const url = `file:${value.slice(scheme.length + 1)}`;
    try {
      return fileURLToPath(url);
    } catch (error) {
      throw new LakeConfigError(`${redact(value)} is no local file URL (${(error as Error).message})`);
    }
  }
  const path = value.slice(scheme.length + 1);
  return isAbsolute(path) ? path : resolve(path);
}

/**
 * The SQLite file a location's metadata database is (undefined: it is PostgreSQL); an
 * unsupported URL is a `LakeConfigError`.
 */
export function sqliteFileOf(location: LakeLocation = {}): string | undefined {
  const db = location.db ?? join(location.data ?? DEFAULT_DATA_DIR, SQLITE_FILE);
  const scheme = SCHEME.exec(db)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return undefined;
  if (scheme === 'sqlite' || scheme === 'file') return localPath(db, scheme);
  // A one-letter "scheme" is a Windows drive letter.
  if (scheme !== undefined && scheme.length > 1) {
    throw new LakeConfigError(
      `unsupported metadata database URL ${redact(db)}: use postgres://… or a SQLite file path`,
    );
  }
  return resolve(db);
}

/** Chooses the metadata store for a location. */
export function openMetadataStore(location: LakeLocation = {}): MetadataStore {
  const file = sqliteFileOf(location);
  if (file !== undefined) return new SqliteMetadataStore(file);
  return new PostgresMetadataStore(location.db!, location.postgres);
}

/**
 * The local directories a location's lake lies in (its data directory, its SQLite file's, its
 * blob directory's), resolved: what an answer to a client should not show. A URL that names no
 * local file adds nothing (nor does one that is no lake's: opening it says why).
 */
export function localLakeDirectories(location: LakeLocation = {}): string[] {
  const dirs = [resolve(location.data ?? DEFAULT_DATA_DIR)];
  try {
    const file = sqliteFileOf(location);
    if (file !== undefined) dirs.push(dirname(file));
  } catch {}
  const blobs = location.blobs;
  const scheme = blobs === undefined ? undefined : SCHEME.exec(blobs)?.[1]?.toLowerCase();
  if (blobs !== undefined && (scheme === undefined || scheme.length === 1)) dirs.push(resolve(blobs));
  if (blobs !== undefined && scheme === 'file') {
    try {
      dirs.push(localPath(blobs, scheme));
    } catch {}
  }
  // Resolved again: a `file:` URL keeps its trailing slash, which error messages do not.
  return [...new Set(dirs.map((dir) => resolve(dir)))];
}

/** Chooses the blob store for a location. */
export function openBlobStore(location: LakeLocation = {}): BlobStore {
  const blobs = location.blobs ?? location.data ?? DEFAULT_DATA_DIR;
  const scheme = SCHEME.exec(blobs)?.[1]?.toLowerCase();
  if (scheme === 's3') return S3BlobStore.fromUrl(blobs, location.s3);
  if (scheme === 'file') return new DirectoryBlobStore(localPath(blobs, scheme), location.directory);
  if (scheme !== undefined && scheme.length > 1) {
    throw new LakeConfigError(
      `unsupported blob store URL ${redact(blobs)}: use s3://bucket/prefix or a directory`,
    );
  }
  return new DirectoryBlobStore(resolve(blobs), location.directory);
}
