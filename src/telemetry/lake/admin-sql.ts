import type { DropReport } from '../wire/index.js';
import type { RawRow } from './rows.js';
import type { ApiKeyRow, DropReportRow } from './types.js';

/**
 * The statements behind API keys, drop reports and retention, shared by both metadata stores
 * (SQLite's placeholders are `?`, PostgreSQL's `$1`, `$2`…: each statement names its parameters
 * once, in order). Retention deletes in batches of
 * `LIMIT` rows, oldest first, through the `insert_time` indexes.
 */

export const API_KEY_COLUMNS = 'name, key_hash, created_time, revoked_time';
export const DROP_COLUMNS = 'report_id, process_id, time, counts, total, insert_time';

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
    insertDropReport: `INSERT INTO sink_drops (${DROP_COLUMNS}) VALUES (${[1, 2, 3, 4, 5, 6].map(p).join(', ')}) ON CONFLICT DO NOTHING`,
    listDropReports: `SELECT ${DROP_COLUMNS} FROM sink_drops ORDER BY time, report_id`,
    listProcessDropReports: `SELECT ${DROP_COLUMNS} FROM sink_drops WHERE process_id = ${p(1)} ORDER BY time, report_id`,
    /** The oldest block rows, deleted; returns what names their blobs. */
    deleteOldBlocks: `DELETE FROM blocks WHERE block_id IN (SELECT block_id FROM blocks WHERE insert_time < ${p(1)} ORDER BY insert_time LIMIT ${p(2)}) RETURNING process_id, stream_id, block_id`,
    insertGarbage: `INSERT INTO blob_garbage (path, block_id, since) VALUES (${p(1)}, ${p(2)}, ${p(3)}) ON CONFLICT DO NOTHING`,
    /** Garbage whose block was stored again since (a re-send): its blob is a live row's again. */
    forgetRevivedGarbage: `DELETE FROM blob_garbage WHERE EXISTS (SELECT 1 FROM blocks b WHERE b.block_id = blob_garbage.block_id AND 'blobs/' || b.process_id || '/' || b.stream_id || '/' || b.block_id = blob_garbage.path)`,
    listGarbage: `SELECT path FROM blob_garbage ORDER BY since, path LIMIT ${p(1)}`,
    forgetGarbage: `DELETE FROM blob_garbage WHERE path = ${p(1)}`,
    deleteEmptyStreams: `DELETE FROM streams WHERE stream_id IN (SELECT s.stream_id FROM streams s WHERE s.insert_time < ${p(1)} AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.stream_id = s.stream_id) LIMIT ${p(2)})`,
    deleteEmptyProcesses: `DELETE FROM processes WHERE process_id IN (SELECT r.process_id FROM processes r WHERE r.insert_time < ${p(1)} AND NOT EXISTS (SELECT 1 FROM streams s WHERE s.process_id = r.process_id) LIMIT ${p(2)})`,
    deleteDropReports: `DELETE FROM sink_drops WHERE report_id IN (SELECT report_id FROM sink_drops WHERE insert_time < ${p(1)} LIMIT ${p(2)})`,
  };
}

/** Parameters of an insert into `sink_drops`, in column order. */
export function dropParams(report: DropReport, insertTime: string): unknown[] {
  const total = Object.values(report.counts).reduce((sum, n) => sum + n, 0);
  return [report.reportId, report.processId, report.time, JSON.stringify(report.counts), total, insertTime];
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

/** The blob path of a block row returned by `deleteOldBlocks`. */
export function garbagePath(row: RawRow): string {
  return `blobs/${String(row.process_id)}/${String(row.stream_id)}/${String(row.block_id)}`;
}
