/**
 * The lake's schema, as numbered migrations shared by SQLite and PostgreSQL. The tables are the
 * stable interface readers build on: a later migration adds columns at the end, never reorders or
 * renames. Times are normalized RFC 3339 text (text order is time order); JSON columns hold the
 * clock, properties, tags and layouts.
 */

/** Name of the table recording applied migrations. */
export const VERSION_TABLE = 'dorsal_schema_version';

/** Migrations in order; migration `i` brings the schema to version `i + 1`. */
export const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE processes (
      process_id TEXT PRIMARY KEY,
      exe TEXT NOT NULL,
      username TEXT NOT NULL,
      host TEXT NOT NULL,
      start_time TEXT NOT NULL,
      start_ticks BIGINT NOT NULL,
      clock TEXT NOT NULL,
      parent_process_id TEXT,
      properties TEXT NOT NULL,
      insert_time TEXT NOT NULL
    )`,
    `CREATE TABLE streams (
      stream_id TEXT PRIMARY KEY,
      process_id TEXT NOT NULL,
      tags TEXT NOT NULL,
      dependencies_layouts TEXT NOT NULL,
      objects_layouts TEXT NOT NULL,
      properties TEXT NOT NULL,
      insert_time TEXT NOT NULL
    )`,
    'CREATE INDEX streams_process ON streams (process_id)',
    `CREATE TABLE blocks (
      block_id TEXT PRIMARY KEY,
      stream_id TEXT NOT NULL,
      process_id TEXT NOT NULL,
      begin_time TEXT NOT NULL,
      begin_ticks BIGINT NOT NULL,
      end_time TEXT NOT NULL,
      end_ticks BIGINT NOT NULL,
      object_count INTEGER NOT NULL,
      payload_size BIGINT NOT NULL,
      insert_time TEXT NOT NULL
    )`,
    'CREATE INDEX blocks_stream_time ON blocks (stream_id, begin_time)',
    'CREATE INDEX blocks_process_time ON blocks (process_id, begin_time)',
  ],
  [
    // API keys, stored as the SHA-256 of the key: the lake never holds a key itself.
    `CREATE TABLE api_keys (
      name TEXT PRIMARY KEY,
      key_hash TEXT NOT NULL UNIQUE,
      created_time TEXT NOT NULL,
      revoked_time TEXT
    )`,
    // Blobs whose rows retention deleted, until the blobs are deleted too (see retention.ts).
    `CREATE TABLE blob_garbage (
      path TEXT PRIMARY KEY,
      block_id TEXT NOT NULL,
      since TEXT NOT NULL
    )`,
    // What sinks dropped, as they reported it: one row per report.
    `CREATE TABLE sink_drops (
      report_id TEXT PRIMARY KEY,
      process_id TEXT NOT NULL,
      time TEXT NOT NULL,
      counts TEXT NOT NULL,
      total BIGINT NOT NULL,
      insert_time TEXT NOT NULL
    )`,
    'CREATE INDEX sink_drops_process ON sink_drops (process_id)',
    'CREATE INDEX sink_drops_insert_time ON sink_drops (insert_time)',
    'CREATE INDEX blocks_insert_time ON blocks (insert_time)',
  ],
  [
    // Where each block's payload is: a name of its own per write (see uniqueBlobPath), so that
    // no write ever replaces a file a row points at. NULL in the rows of earlier versions: their
    // payload is at blobs/{process_id}/{stream_id}/{block_id}.
    'ALTER TABLE blocks ADD COLUMN blob_path TEXT',
  ],
  [
    // The analytics' partitions: Parquet files in blob storage (see partitionBlobPaths) made from
    // blocks of one stream, just in time; `block_ids` (a JSON list) says which. Derived data: a
    // partition can always be deleted and made again from its blocks.
    `CREATE TABLE partitions (
      partition_id TEXT PRIMARY KEY,
      view_name TEXT NOT NULL,
      process_id TEXT NOT NULL,
      stream_id TEXT NOT NULL,
      block_ids TEXT NOT NULL,
      row_count BIGINT NOT NULL,
      data_path TEXT NOT NULL,
      data_bytes BIGINT NOT NULL,
      coverage_path TEXT NOT NULL,
      coverage_bytes BIGINT NOT NULL,
      insert_time TEXT NOT NULL
    )`,
    'CREATE INDEX partitions_process ON partitions (process_id)',
    'CREATE INDEX partitions_insert_time ON partitions (insert_time)',
  ],
  [
    // When the earliest of a partition's blocks was inserted: retention deletes the partition with
    // that block, as micromegas retires a partition with the insert times of its source data (by
    // its own insert time, one made long after its blocks outlived them). The rows of earlier
    // versions take their own insert time, as retention took it then.
    'ALTER TABLE partitions ADD COLUMN first_block_insert_time TEXT',
    'UPDATE partitions SET first_block_insert_time = insert_time',
    'CREATE INDEX partitions_first_block_insert_time ON partitions (first_block_insert_time)',
  ],
  [
    // What a partition's files hold: the partition format and the columns of the dorsal that
    // wrote it (see `fileSchemaOf`). One of another is made again from its blocks, as micromegas
    // rebuilds a partition whose `file_schema_hash` is not its view's. NULL in the rows of
    // earlier versions: files this dorsal reads as they are.
    'ALTER TABLE partitions ADD COLUMN file_schema TEXT',
  ],
  [
    // The blob directories of streams retention deleted, until it has swept them of blobs no row
    // names (a crash between a payload's write and its row, see `applyRetention`): recorded with
    // the stream's deletion, in its transaction, so that a pass stopped between the two leaves
    // the sweep to the next one, as `blob_garbage` does for blobs.
    `CREATE TABLE stream_sweeps (
      directory TEXT PRIMARY KEY,
      since TEXT NOT NULL
    )`,
  ],
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The tables the migrations create, by name. */
export const LAKE_TABLES: readonly string[] = MIGRATIONS.flat().flatMap((sql) => {
  const name = /^\s*CREATE TABLE (\w+)/.exec(sql)?.[1];
  return name === undefined ? [] : [name];
});
