import { LakeConfigError } from '../errors.js';
import type { BlockHeader, ProcessInfo, StreamInfo } from '../wire/index.js';
import {
  type BlockFilter,
  type BlockRow,
  blobPath,
  type ProcessRow,
  type StreamFilter,
  type StreamRow,
} from './types.js';

/**
 * Mapping between records and table rows, shared by both metadata stores. Column order here is
 * the order of the tables in `schema.ts`.
 */

/** A row as a driver returns it (PostgreSQL gives BIGINT as text). */
export type RawRow = Readonly<Record<string, unknown>>;

export const PROCESS_COLUMNS =
  'process_id, exe, username, host, start_time, start_ticks, clock, parent_process_id, properties, insert_time';
export const STREAM_COLUMNS =
  'stream_id, process_id, tags, dependencies_layouts, objects_layouts, properties, insert_time';
export const BLOCK_COLUMNS =
  'block_id, stream_id, process_id, begin_time, begin_ticks, end_time, end_ticks, object_count, payload_size, insert_time, blob_path';

/**
 * The blob path of a `blocks` row in SQL: the rows of lakes before schema version 3 have none
 * and their payload is at `blobPath` (see types.ts).
 */
export const BLOB_PATH_SQL =
  "COALESCE(blob_path, 'blobs/' || process_id || '/' || stream_id || '/' || block_id)";

/** Parameters of an insert into `processes`, in column order. */
export function processParams(p: ProcessInfo, insertTime: string): unknown[] {
  return [
    p.processId,
    p.exe,
    p.username,
    p.host,
    p.startTime,
    p.startTicks,
    JSON.stringify(p.clock),
    p.parentProcessId ?? null,
    JSON.stringify(p.properties),
    insertTime,
  ];
}

/** Parameters of an insert into `streams`, in column order. */
export function streamParams(s: StreamInfo, insertTime: string): unknown[] {
  return [
    s.streamId,
    s.processId,
    JSON.stringify(s.tags),
    JSON.stringify(s.dependenciesLayouts),
    JSON.stringify(s.objectsLayouts),
    JSON.stringify(s.properties),
    insertTime,
  ];
}

/** Parameters of an insert into `blocks`, in column order. */
export function blockParams(
  b: BlockHeader,
  payloadSize: number,
  insertTime: string,
  path: string,
): unknown[] {
  return [
    b.blockId,
    b.streamId,
    b.processId,
    b.beginTime,
    b.beginTicks,
    b.endTime,
    b.endTicks,
    b.objectCount,
    payloadSize,
    insertTime,
    path,
  ];
}

const str = (row: RawRow, key: string): string => String(row[key]);
const num = (row: RawRow, key: string): number => Number(row[key]);
const json = <T>(row: RawRow, key: string): T => JSON.parse(String(row[key])) as T;

/** A `processes` row as a record. */
export function toProcessRow(row: RawRow): ProcessRow {
  const parent = row.parent_process_id;
  return {
    processId: str(row, 'process_id'),
    exe: str(row, 'exe'),
    host: str(row, 'host'),
    username: str(row, 'username'),
    startTime: str(row, 'start_time'),
    startTicks: num(row, 'start_ticks'),
    clock: json(row, 'clock'),
    ...(parent === null || parent === undefined ? {} : { parentProcessId: String(parent) }),
    properties: json(row, 'properties'),
    insertTime: str(row, 'insert_time'),
  };
}

/** A `streams` row as a record. */
export function toStreamRow(row: RawRow): StreamRow {
  return {
    streamId: str(row, 'stream_id'),
    processId: str(row, 'process_id'),
    tags: json(row, 'tags'),
    dependenciesLayouts: json(row, 'dependencies_layouts'),
    objectsLayouts: json(row, 'objects_layouts'),
    properties: json(row, 'properties'),
    insertTime: str(row, 'insert_time'),
  };
}

/** A `blocks` row as a record. */
export function toBlockRow(row: RawRow): BlockRow {
  const blockId = str(row, 'block_id');
  const streamId = str(row, 'stream_id');
  const processId = str(row, 'process_id');
  const path = row.blob_path;
  return {
    blockId,
    streamId,
    processId,
    beginTime: str(row, 'begin_time'),
    beginTicks: num(row, 'begin_ticks'),
    endTime: str(row, 'end_time'),
    endTicks: num(row, 'end_ticks'),
    objectCount: num(row, 'object_count'),
    payloadSize: num(row, 'payload_size'),
    insertTime: str(row, 'insert_time'),
    blobPath: path === null || path === undefined ? blobPath(processId, streamId, blockId) : String(path),
  };
}

/** A WHERE clause with placeholders built by `placeholder(i)` (1-based), and its parameters. */
export interface Where {
  readonly sql: string;
  readonly params: unknown[];
}

/** WHERE for listing streams; the tag test is done by the caller on the decoded rows. */
export function streamWhere(filter: StreamFilter, placeholder: (i: number) => string): Where {
  const params: unknown[] = [];
  const clauses: string[] = [];
  if (filter.processId !== undefined) {
    params.push(filter.processId);
    clauses.push(`process_id = ${placeholder(params.length)}`);
  }
  return { sql: clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

/** WHERE … ORDER BY … LIMIT for listing blocks. */
export function blockWhere(filter: BlockFilter, placeholder: (i: number) => string): Where {
  const params: unknown[] = [];
  const clauses: string[] = [];
  const add = (sql: string, value: unknown): void => {
    params.push(value);
    clauses.push(sql.replace('?', placeholder(params.length)));
  };
  if (filter.processId !== undefined) add('process_id = ?', filter.processId);
  if (filter.streamId !== undefined) add('stream_id = ?', filter.streamId);
  if (filter.from !== undefined) add('end_time >= ?', filter.from);
  if (filter.to !== undefined) add('begin_time < ?', filter.to);
  let sql = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
  sql += ' ORDER BY begin_time, block_id';
  if (filter.limit !== undefined) {
    if (!Number.isSafeInteger(filter.limit) || filter.limit < 0) {
      throw new LakeConfigError(`block listing limit must be a non-negative integer, got ${filter.limit}`);
    }
    sql += ` LIMIT ${filter.limit}`;
  }
  return { sql, params };
}
