import type { DropReport } from '../wire/index.js';
import { BLOB_PATH_SQL, type RawRow } from './rows.js';
import { type ApiKeyRow, type DropReportRow, type PartitionRow, partitionBlobPaths } from './types.js';

/**
 * The statements behind API keys, drop reports and retention, shared by both metadata stores
 * (SQLite's placeholders are `?`, PostgreSQL's `$1`, `$2`…: each statement names its parameters
 * once, in order). Retention deletes blocks, partitions and drop reports in batches of `LIMIT`
 * rows, oldest first, through their insert-time indexes; streams and processes a window of ids at a time (a
 * cursor over the primary key), so that a batch reads at most `LIMIT` rows however many old ones
 * are still in use.
 */

export const API_KEY_COLUMNS = 'name, key_hash, created_time, revoked_time';
export const DROP_COLUMNS = 'report_id, process_id, time, counts, total, insert_time';
export const PARTITION_COLUMNS =
  'partition_id, view_name, process_id, stream_id, block_ids, row_count, data_path, data_bytes, coverage_path, coverage_bytes, insert_time, first_block_insert_time, file_schema';

/** The statements, with placeholders made by `p(i)` (1-based). */
export function adminSql(p: (i: number) => string) {
  return {
    insertApiKey: `INSERT INTO api_keys (${API_KEY_COLUMNS}) VALUES (${p(1)}, ${p(2)}, ${p(3)}, NULL) ON CONFLICT DO NOTHING`,
    findApiKey: `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ${p(1)}`,
    findApiKeyByName: `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE name = ${p(1)}`,
    listApiKeys: `SELECT ${API_KEY_COLUMNS} FROM api_keys ORDER BY created_time, name`,
    /** Parameters: the time, then the name. */
    revokeApiKey: `UPDATE api_keys SET revoked_time = COALESCE(revoked_time, ${p(1)}) WHERE name = ${p(2)}`,
    countApiKeys: 'SELECT COUNT(*) AS n FROM api_keys',
    /**
     * Inserted only while its process is there (retention may have deleted it since it was known).
     * SQLite's: one writer at a time; PostgreSQL's also locks the process row (see its store).
     */
    insertDropReport: `INSERT INTO sink_drops (${DROP_COLUMNS}) SELECT ${[1, 2, 3, 4].map((i) => `CAST(${p(i)} AS TEXT)`).join(', ')}, CAST(${p(5)} AS BIGINT), CAST(${p(6)} AS TEXT) WHERE EXISTS (SELECT 1 FROM processes WHERE process_id = ${p(7)}) ON CONFLICT DO NOTHING`,
    listDropReports: `SELECT ${DROP_COLUMNS} FROM sink_drops ORDER BY time, report_id`,
    listProcessDropReports: `SELECT ${DROP_COLUMNS} FROM sink_drops WHERE process_id = ${p(1)} ORDER BY time, report_id`,
    /** The oldest block rows, deleted; returns their blob paths. */
    deleteOldBlocks: `DELETE FROM blocks WHERE block_id IN (SELECT block_id FROM blocks WHERE insert_time < ${p(1)} ORDER BY insert_time LIMIT ${p(2)}) RETURNING ${BLOB_PATH_SQL} AS path, block_id`,
    insertGarbage: `INSERT INTO blob_garbage (path, block_id, since) VALUES (${p(1)}, ${p(2)}, ${p(3)}) ON CONFLICT DO NOTHING`,
    listGarbage: `SELECT path FROM blob_garbage ORDER BY since, path LIMIT ${p(1)}`,
    forgetGarbage: `DELETE FROM blob_garbage WHERE path = ${p(1)}`,
    insertStreamSweep: `INSERT INTO stream_sweeps (directory, since) VALUES (${p(1)}, ${p(2)}) ON CONFLICT DO NOTHING`,
    listStreamSweeps: `SELECT directory FROM stream_sweeps ORDER BY since, directory LIMIT ${p(1)}`,
    forgetStreamSweep: `DELETE FROM stream_sweeps WHERE directory = ${p(1)}`,
    /**
     * Up to `n` stream ids spread evenly by rank in id order (every id when there are fewer):
     * rank r is taken when r·n mod count < n, which `n` ranks of every `count` are. Parameters:
     * n, n.
     */
    sampleStreamIds: `SELECT stream_id FROM (SELECT stream_id, row_number() OVER (ORDER BY stream_id) - 1 AS r, COUNT(*) OVER () AS c FROM streams) ranked WHERE (r * ${p(1)}) % c < ${p(2)} ORDER BY stream_id`,
    /** The last id of the next window of streams: the `LIMIT` ids after the cursor, in id order. */
    streamWindowEnd: `SELECT MAX(stream_id) AS last FROM (SELECT stream_id FROM streams WHERE stream_id > ${p(1)} ORDER BY stream_id LIMIT ${p(2)}) w`,
    /** Parameters: the window (after, last], the cutoff. */
    deleteEmptyStreams: `DELETE FROM streams WHERE stream_id > ${p(1)} AND stream_id <= ${p(2)} AND insert_time < ${p(3)} AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.stream_id = streams.stream_id)`,
    processWindowEnd: `SELECT MAX(process_id) AS last FROM (SELECT process_id FROM processes WHERE process_id > ${p(1)} ORDER BY process_id LIMIT ${p(2)}) w`,
    /**
     * Parameters: the window (after, last], the cutoff (named once each, in a row of their own). A
     * process's drop reports refer to it as its streams do: it is kept while one newer than the
     * cutoff is there (retention deletes the older ones first).
     */
    deleteEmptyProcesses: `DELETE FROM processes WHERE process_id IN (SELECT pr.process_id FROM (SELECT CAST(${p(1)} AS TEXT) AS lower, CAST(${p(2)} AS TEXT) AS upper, CAST(${p(3)} AS TEXT) AS cutoff) w JOIN processes pr ON pr.process_id > w.lower AND pr.process_id <= w.upper AND pr.insert_time < w.cutoff WHERE NOT EXISTS (SELECT 1 FROM streams s WHERE s.process_id = pr.process_id) AND NOT EXISTS (SELECT 1 FROM sink_drops d WHERE d.process_id = pr.process_id AND d.insert_time >= w.cutoff))`,
    deleteDropReports: `DELETE FROM sink_drops WHERE report_id IN (SELECT report_id FROM sink_drops WHERE insert_time < ${p(1)} LIMIT ${p(2)})`,
    insertPartition: `INSERT INTO partitions (${PARTITION_COLUMNS}) VALUES (${Array.from({ length: 13 }, (_, i) => p(i + 1)).join(', ')}) ON CONFLICT DO NOTHING`,
    listPartitions: `SELECT ${PARTITION_COLUMNS} FROM partitions WHERE process_id = ${p(1)} ORDER BY insert_time, partition_id`,
    /** One partition's row, deleted; returns its two paths. */
    deletePartition: `DELETE FROM partitions WHERE partition_id = ${p(1)} RETURNING partition_id, data_path, coverage_path`,
    /**
     * The partitions of blocks retention deletes (one inserted before the cutoff), deleted; returns
     * their paths. Parameters: cutoff, limit, cutoff, limit, limit. A row without
     * `first_block_insert_time` (inserted into a migrated lake by a dorsal of schema version 4 still
     * running) goes by its own insert time, through that index: those of the first kind inserted
     * before the cutoff are all of the first kind (a partition is made after its blocks).
     */
    deleteOldPartitions: `DELETE FROM partitions WHERE partition_id IN (SELECT partition_id FROM (SELECT partition_id FROM partitions WHERE first_block_insert_time < ${p(1)} ORDER BY first_block_insert_time LIMIT ${p(2)}) dated UNION ALL SELECT partition_id FROM (SELECT partition_id FROM partitions WHERE insert_time < ${p(3)} AND first_block_insert_time IS NULL ORDER BY insert_time LIMIT ${p(4)}) undated LIMIT ${p(5)}) RETURNING partition_id, data_path, coverage_path`,
  };
}

/**
 * Parameters of an insert into `sink_drops`: in column order, then its process's id (see
 * `insertDropReport`). The total is summed and bound as a BigInt: counts may each reach 2^53 - 1,
 * so their sum may not be a safe JS number; 16 of them (the wire's most) fit the BIGINT column.
 */
export function dropParams(report: DropReport, insertTime: string): unknown[] {
  const total = Object.values(report.counts).reduce((sum, n) => sum + BigInt(n), 0n);
  return [
    report.reportId,
    report.processId,
    report.time,
    JSON.stringify(report.counts),
    total,
    insertTime,
    report.processId,
  ];
}

/** Parameters of an insert into `partitions`, in column order. */
export function partitionParams(row: PartitionRow): unknown[] {
  const paths = partitionBlobPaths(row);
  return [
    row.partitionId,
    row.view,
    row.processId,
    row.streamId,
    JSON.stringify(row.blockIds),
    row.rowCount,
    paths.data,
    row.dataBytes,
    paths.coverage,
    row.coverageBytes,
    row.insertTime,
    row.firstBlockInsertTime,
    row.fileSchema,
  ];
}

/** A `partitions` row as a record. */
export function toPartitionRow(row: RawRow): PartitionRow {
  return {
    partitionId: String(row.partition_id),
    view: String(row.view_name),
    processId: String(row.process_id),
    streamId: String(row.stream_id),
    blockIds: JSON.parse(String(row.block_ids)) as string[],
    rowCount: Number(row.row_count),
    dataBytes: Number(row.data_bytes),
    coverageBytes: Number(row.coverage_bytes),
    insertTime: String(row.insert_time),
    firstBlockInsertTime: String(row.first_block_insert_time ?? row.insert_time),
    fileSchema: row.file_schema === null || row.file_schema === undefined ? null : String(row.file_schema),
  };
}

/** The garbage paths of deleted partition rows: both files of each. */
export function partitionGarbage(rows: readonly RawRow[]): { path: string; id: string }[] {
  return rows.flatMap((row) => [
    { path: String(row.data_path), id: String(row.partition_id) },
    { path: String(row.coverage_path), id: String(row.partition_id) },
  ]);
}

/** An `api_keys` row as a record. */
export function toApiKeyRow(row: RawRow): ApiKeyRow {
  const revoked = row.revoked_time;
  return {
    name: String(row.name),
    keyHash: String(row.key_hash),
    createdTime: String(row.created_time),
    ...(revoked === null || revoked === undefined ? {} : { revokedTime: String(revoked) }),
  };
}

/** A `sink_drops` row as a record. */
export function toDropReportRow(row: RawRow): DropReportRow {
  return {
    reportId: String(row.report_id),
    processId: String(row.process_id),
    time: String(row.time),
    counts: JSON.parse(String(row.counts)) as Record<string, number>,
    total: Number(row.total),
    insertTime: String(row.insert_time),
  };
}
