import {
  BIGINT,
  BLOB,
  BOOLEAN,
  DOUBLE,
  type DuckDBConnection,
  type DuckDBDataChunk,
  DuckDBTableFunction,
  type DuckDBType,
  FLOAT,
  INTEGER,
  SMALLINT,
  TINYINT,
  UBIGINT,
  UINTEGER,
  USMALLINT,
  UTINYINT,
  VARCHAR,
} from '@duckdb/node-api';
import bindings from '@duckdb/node-bindings';
import { PropertyType } from '../instrumentation/events.js';
import { type Dependencies, decodeDependencies } from '../persist/read.js';
import type { Column, ColumnType, LogPropertyOffsets, SourceTable } from './source-tables.js';
import { quoteLiteral } from './sql.js';

const TYPES: Record<ColumnType, DuckDBType> = {
  DOUBLE,
  FLOAT,
  TINYINT,
  SMALLINT,
  INTEGER,
  BIGINT,
  UTINYINT,
  USMALLINT,
  UINTEGER,
  UBIGINT,
  BOOLEAN,
  VARCHAR,
  BLOB,
};

/**
 * The `COPY` options of a partition's data file. Row groups of 32,768 rows, not DuckDB's 122,880:
 * a query for a few rows (a message tree, found by `origin_t`; one message, by `seq`) decodes the
 * row groups their Parquet statistics cannot rule out, whole, so a smaller group reads less for
 * it (one tree out of 1 M messages: 33 → 19 ms for the two views it reads), while scans of every row
 * (percentiles, the slowest trees) were not measurably slower.
 */
export const PARTITION_COPY_OPTIONS = 'FORMAT parquet, ROW_GROUP_SIZE 32768';

/** A block's decompressed parts, as the ETL reads them. */
export interface BlockParts {
  readonly blockId: string;
  readonly objectCount: number;
  readonly dependencies: Uint8Array;
  readonly objects: Uint8Array;
}

/** What a block's coverage says (see BlockCoverage), with its id and record count. */
export interface CoverageRow {
  readonly blockId: string;
  readonly objectCount: number;
  readonly firstSeq: number;
  readonly endSeq: number;
  readonly lostTotal: number;
  readonly poisonedTotal: number;
  /** Instrumentation: events its thread dropped before they were published, so far (see SourceDrops). */
  readonly droppedTotal: number;
}

/** Rows per data chunk: DuckDB's vector size. */
const ROWS_PER_CHUNK = 2048;

/** True when the platform stores numbers little-endian (the queues write in platform order). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A partition being written: what the `dorsal_records(job)` table function scans. */
interface ScanJob {
  readonly columns: readonly Column[];
  readonly recordBytes: number;
  readonly blocks: readonly BlockParts[];
  /** Each block's dependencies, decoded when its first record is read (its strings). */
  readonly dependencies: (Dependencies | undefined)[];
  readonly source: SourceTable;
  /** Where the scan is: block, then record in it. */
  block: number;
  record: number;
}

const jobs = new Map<number, ScanJob>();
let nextJob = 1;
const withRecordsFunction = new WeakSet<DuckDBConnection>();

/**
 * Decodes the records of `blocks` and writes them as a Parquet file at `path`; returns the rows
 * written and each block's coverage.
 *
 * Columnar, streamed, and without a JavaScript value per cell: DuckDB's Parquet writer scans a
 * table function that fills each 2048-row chunk column by column, a fixed-width field's bytes
 * gathered from the records and copied into its vector at once (DuckDB stores numbers as the
 * queues do, in platform order). Only string and bytes fields go through a value each. No table
 * is built on the way: an appender would cost more than the Parquet writer itself.
 */
export async function writePartition(
  connection: DuckDBConnection,
  source: SourceTable,
  blocks: readonly BlockParts[],
  path: string,
): Promise<{ rows: number; coverage: CoverageRow[]; rejected: RejectedBlock[] }> {
  // A block whose coverage does not read (damaged bytes that lz4 and CBOR let through, or a
  // client's malformed block) fails nothing: it is named, and nothing is written.
  const coverage: CoverageRow[] = [];
  const rejected: RejectedBlock[] = [];
  for (const block of blocks) {
    try {
      coverage.push(checkedCoverage(coverageOf(block, source)));
    } catch (error) {
      rejected.push({
        blockId: block.blockId,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
  if (rejected.length > 0) return { rows: 0, coverage: [], rejected };
  registerRecordsFunction(connection);
  const id = nextJob++;
  jobs.set(id, {
    columns: source.columns,
    recordBytes: source.recordBytes,
    blocks,
    dependencies: [],
    source,
    block: 0,
    record: 0,
  });
  try {
    await connection.run(
      `COPY (SELECT * FROM dorsal_records(${id})) TO ${quoteLiteral(path)} (${PARTITION_COPY_OPTIONS})`,
    );
  } finally {
    jobs.delete(id);
  }
  let rows = 0;
  for (const block of blocks) rows += recordsOf(block, source.recordBytes);
  return { rows, coverage, rejected };
}

/** A block `writePartition` wrote nothing for, and why: its dependencies do not hold its coverage. */
export interface RejectedBlock {
  readonly blockId: string;
  readonly error: string;
}

/** A coverage whose counts are all numbers (a NaN or a missing region fails the coverage file and `losses`). */
function checkedCoverage(row: CoverageRow): CoverageRow {
  for (const field of ['firstSeq', 'endSeq', 'lostTotal', 'poisonedTotal', 'droppedTotal'] as const) {
    const value = row[field];
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new Error(`its dependencies hold no readable coverage (${field} is ${String(value)})`);
  }
  return row;
}

/** Records a block holds: its object count, bounded by its bytes. */
function recordsOf(block: BlockParts, recordBytes: number): number {
  return Math.min(block.objectCount, Math.floor(block.objects.byteLength / recordBytes));
}

/** Registers `dorsal_records(job)` on a connection, once. */
function registerRecordsFunction(connection: DuckDBConnection): void {
  if (withRecordsFunction.has(connection)) return;
  const fn = DuckDBTableFunction.create({
    name: 'dorsal_records',
    parameterTypes: [INTEGER],
    bindFunction: (bind) => {
      const job = jobs.get(Number(bind.getParameter(0)));
      if (job === undefined) return bind.setError('dorsal_records: no such job');
      for (const column of job.columns) bind.addResultColumn(column.name, TYPES[column.type]);
      bind.setBindData(job);
    },
    initFunction: () => {},
    mainFunction: (info, chunk) => {
      const job = info.bindData as ScanJob;
      try {
        fillNext(job, chunk);
      } catch (error) {
        chunk.rowCount = 0;
        info.setError(`dorsal_records: ${error instanceof Error ? error.message : String(error)}`);
      }
    },
  });
  connection.registerTableFunction(fn);
  withRecordsFunction.add(connection);
}

/** Fills `chunk` with the job's next records (up to 2048, within one block); 0 rows when done. */
function fillNext(job: ScanJob, chunk: DuckDBDataChunk): void {
  while (job.block < job.blocks.length && job.record >= recordsOf(job.blocks[job.block]!, job.recordBytes)) {
    job.block++;
    job.record = 0;
  }
  if (job.block >= job.blocks.length) {
    chunk.rowCount = 0;
    return;
  }
  const block = job.blocks[job.block]!;
  const count = Math.min(ROWS_PER_CHUNK, recordsOf(block, job.recordBytes) - job.record);
  job.dependencies[job.block] ??= decodeDependencies(job.source.dependencies, ownBuffer(block.dependencies));
  const strings = stringsOf(job.dependencies[job.block]!);
  fillChunk(chunk, job.columns, block.objects, job.recordBytes, job.record, count, strings);
  job.record += count;
}

const UTF8 = new TextDecoder('utf-8', { fatal: false });
const UTF8_OUT = new TextEncoder();

/** Bytes of a `duckdb_string_t` (duckdb.h): a u32 length, then 12 bytes inline or a prefix and a pointer. */
const STRING_T_BYTES = 16;
/** Longest string or blob a `duckdb_string_t` holds inline. */
const STRING_T_INLINE = 12;

/** Sets `count` rows of `chunk` from the records `first…` of `objects`. */
function fillChunk(
  chunk: DuckDBDataChunk,
  columns: readonly Column[],
  objects: Uint8Array,
  recordBytes: number,
  first: number,
  count: number,
  strings: BlockStrings,
): void {
  chunk.rowCount = count;
  const source = new DataView(objects.buffer, objects.byteOffset, objects.byteLength);
  const start = first * recordBytes;
  for (let c = 0; c < columns.length; c++) {
    const column = columns[c]!;
    const vector = bindings.data_chunk_get_vector(chunk.chunk, c);
    const at = start + column.offset;
    if (column.from === 'string-ref') {
      fillComputed(vector, count, (r) => strings.utf8(source.getUint32(at + r * recordBytes, LITTLE_ENDIAN)));
      continue;
    }
    if (column.from === 'log-properties') {
      const base = start;
      fillComputed(vector, count, (r) =>
        logProperties(column.properties!, objects, source, base + r * recordBytes, strings),
      );
      continue;
    }
    if (column.fieldType === 'string' || column.fieldType === 'bytes') {
      fillSized(vector, column, objects, source, at, recordBytes, count);
      continue;
    }
    if (column.from === 'whole-f64') wholeToInt64(source, at, recordBytes, scratch, count);
    else copyStrided(source, at, recordBytes, scratch, column.bytes, count);
    bindings.copy_data_to_vector(vector, 0, scratch.buffer, 0, count * column.bytes);
  }
}

/**
 * Copies `count` f64 values that hold whole numbers (sequences: below 2^53), `stride` apart from
 * `at`, end to end into `target` as little-endian int64s, without a BigInt per value: the low
 * word is the value modulo 2^32 (what `>>> 0` takes), the high word what is left (two's
 * complement for a negative one). A damaged record's: a fraction is cut, NaN and ±Infinity are
 * -1 (no sequence: a parent of that number is found nowhere, where 0 would link to the first
 * message), and past ±2^63 the value wraps around (the views' cast of a DOUBLE refused such values).
 */
export function wholeToInt64(
  source: DataView,
  at: number,
  stride: number,
  target: Uint8Array,
  count: number,
): void {
  const out = new DataView(target.buffer, target.byteOffset, target.byteLength);
  for (let r = 0, base = at, o = 0; r < count; r++, base += stride, o += 8) {
    const value = source.getFloat64(base, true);
    const whole = Number.isFinite(value) ? Math.trunc(value) : -1;
    out.setUint32(o, whole >>> 0, true);
    out.setUint32(o + 4, Math.floor(whole / 4294967296) >>> 0, true);
  }
}

/**
 * A string or bytes column. A value of at most 12 bytes that needs no checking (bytes, or an ASCII
 * string) is written inline as DuckDB's `duckdb_string_t`, with the rest of its chunk, in one
 * copy; a longer one is assigned after it (DuckDB copies it to the vector's heap); a string with
 * bytes above 0x7f is decoded first, so that what reaches DuckDB is valid UTF-8 whatever the block
 * holds (an invalid sequence becomes U+FFFD).
 */
function fillSized(
  vector: ReturnType<typeof bindings.data_chunk_get_vector>,
  column: Column,
  objects: Uint8Array,
  source: DataView,
  at: number,
  recordBytes: number,
  count: number,
): void {
  const isString = column.fieldType === 'string';
  const entries = new DataView(stringScratch.buffer);
  stringScratch.fill(0, 0, count * STRING_T_BYTES);
  let later = 0;
  for (let r = 0, base = at; r < count; r++, base += recordBytes) {
    const from = isString ? base + 2 : base;
    const length = isString
      ? Math.min(source.getUint16(base, LITTLE_ENDIAN), column.bytes - 2)
      : column.bytes;
    let plain = length <= STRING_T_INLINE;
    for (let i = 0; plain && isString && i < length; i++) plain = objects[from + i]! < 0x80;
    if (plain) {
      entries.setUint32(r * STRING_T_BYTES, length, LITTLE_ENDIAN);
      stringScratch.set(objects.subarray(from, from + length), r * STRING_T_BYTES + 4);
    } else {
      laterRows[later++] = r;
    }
  }
  bindings.copy_data_to_vector(vector, 0, stringScratch.buffer, 0, count * STRING_T_BYTES);
  for (let i = 0; i < later; i++) {
    const r = laterRows[i]!;
    const base = at + r * recordBytes;
    if (!isString) {
      bindings.vector_assign_string_element_len(vector, r, objects.subarray(base, base + column.bytes));
      continue;
    }
    const length = Math.min(source.getUint16(base, LITTLE_ENDIAN), column.bytes - 2);
    const bytes = objects.subarray(base + 2, base + 2 + length);
    let ascii = true;
    for (let k = 0; ascii && k < length; k++) ascii = bytes[k]! < 0x80;
    if (ascii) bindings.vector_assign_string_element_len(vector, r, bytes);
    else bindings.vector_assign_string_element_len(vector, r, UTF8_OUT.encode(UTF8.decode(bytes)));
  }
}

/**
 * A column whose values are made per row (a string id's text, a log event's properties): each
 * value of at most 12 bytes inline with the rest of its chunk in one copy, longer ones assigned.
 * What `produce` returns is valid UTF-8 (made by a TextEncoder).
 */
function fillComputed(
  vector: ReturnType<typeof bindings.data_chunk_get_vector>,
  count: number,
  produce: (row: number) => Uint8Array,
): void {
  const entries = new DataView(stringScratch.buffer);
  stringScratch.fill(0, 0, count * STRING_T_BYTES);
  let later = 0;
  for (let r = 0; r < count; r++) {
    const bytes = produce(r);
    if (bytes.length <= STRING_T_INLINE) {
      entries.setUint32(r * STRING_T_BYTES, bytes.length, LITTLE_ENDIAN);
      stringScratch.set(bytes, r * STRING_T_BYTES + 4);
    } else {
      laterRows[later] = r;
      laterValues[later++] = bytes;
    }
  }
  bindings.copy_data_to_vector(vector, 0, stringScratch.buffer, 0, count * STRING_T_BYTES);
  for (let i = 0; i < later; i++)
    bindings.vector_assign_string_element_len(vector, laterRows[i]!, laterValues[i]!);
  laterValues.fill(EMPTY, 0, later);
}

const EMPTY = new Uint8Array(0);
const laterValues: Uint8Array[] = new Array<Uint8Array>(ROWS_PER_CHUNK).fill(EMPTY);

/** A block's strings by id, as UTF-8, each encoded once. */
interface BlockStrings {
  utf8(id: number): Uint8Array;
  text(id: number): string;
}

const stringsCache = new WeakMap<Dependencies, BlockStrings>();

function stringsOf(dependencies: Dependencies): BlockStrings {
  let found = stringsCache.get(dependencies);
  if (found !== undefined) return found;
  const texts = dependencies.strings ?? new Map<number, string>();
  const encoded = new Map<number, Uint8Array>();
  const text = (id: number) => texts.get(id) ?? (id === 0 ? '' : `<string ${id} not in its block>`);
  found = {
    text,
    utf8: (id) => {
      let bytes = encoded.get(id);
      if (bytes === undefined) {
        bytes = UTF8_OUT.encode(text(id));
        encoded.set(id, bytes);
      }
      return bytes;
    },
  };
  stringsCache.set(dependencies, found);
  return found;
}

/** A log event's properties as a JSON object: numbers, booleans and the inline texts, by key. */
function logProperties(
  at: LogPropertyOffsets,
  objects: Uint8Array,
  source: DataView,
  base: number,
  strings: BlockStrings,
): Uint8Array {
  let json = '';
  for (let i = 0; i < at.types.length; i++) {
    const type = objects[base + at.types[i]!]!;
    if (type === PropertyType.NONE) continue;
    const key = JSON.stringify(strings.text(source.getUint32(base + at.keys[i]!, LITTLE_ENDIAN)));
    const value = source.getFloat64(base + at.values[i]!, LITTLE_ENDIAN);
    let text: string;
    if (type === PropertyType.NUMBER)
      text = Number.isFinite(value) ? String(value) : JSON.stringify(String(value));
    else if (type === PropertyType.BOOLEAN) text = value === 1 ? 'true' : 'false';
    else {
      const where = base + at.texts[value === 0 ? 0 : 1]!;
      const length = Math.min(source.getUint16(where, LITTLE_ENDIAN), at.textBytes);
      text = JSON.stringify(UTF8.decode(objects.subarray(where + 2, where + 2 + length)));
    }
    json += `${json === '' ? '' : ','}${key}:${text}`;
  }
  return json === '' ? EMPTY_OBJECT : UTF8_OUT.encode(`{${json}}`);
}

const EMPTY_OBJECT = new TextEncoder().encode('{}');

/** One column of one chunk, gathered from the records before it is copied into its vector. */
const scratch = new Uint8Array(ROWS_PER_CHUNK * 8);
const stringScratch = new Uint8Array(ROWS_PER_CHUNK * STRING_T_BYTES);
const laterRows = new Uint32Array(ROWS_PER_CHUNK);

/** Copies `count` values of `width` bytes, `stride` apart from `at` in `source`, end to end into `target`. */
function copyStrided(
  source: DataView,
  at: number,
  stride: number,
  target: Uint8Array,
  width: number,
  count: number,
): void {
  const out = new DataView(target.buffer, target.byteOffset, target.byteLength);
  switch (width) {
    case 8:
      // Two 32-bit words, not a float64: a NaN's payload must come through unchanged.
      for (let r = 0, base = at, o = 0; r < count; r++, base += stride, o += 8) {
        out.setUint32(o, source.getUint32(base, true), true);
        out.setUint32(o + 4, source.getUint32(base + 4, true), true);
      }
      return;
    case 4:
      for (let r = 0, base = at, o = 0; r < count; r++, base += stride, o += 4) {
        out.setUint32(o, source.getUint32(base, true), true);
      }
      return;
    case 2:
      for (let r = 0, base = at, o = 0; r < count; r++, base += stride, o += 2) {
        out.setUint16(o, source.getUint16(base, true), true);
      }
      return;
    default:
      for (let r = 0, base = at; r < count; r++, base += stride) target[r] = source.getUint8(base);
  }
}

function coverageOf(block: BlockParts, source: SourceTable): CoverageRow {
  const { coverage, dropped } = decodeDependencies(source.dependencies, ownBuffer(block.dependencies));
  return {
    blockId: block.blockId,
    objectCount: block.objectCount,
    firstSeq: coverage.first,
    endSeq: coverage.end,
    lostTotal: coverage.lost,
    poisonedTotal: coverage.poisoned,
    droppedTotal: dropped === undefined ? 0 : dropped.strings + dropped.depth,
  };
}

/** The bytes in a buffer of their own, from byte 0: the layouts read at offsets from the buffer's start. */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength)
    return bytes.buffer as ArrayBuffer;
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
