import { createHash } from 'node:crypto';
import type { StreamRow } from '../lake/types.js';
import { RecordProperty } from '../persist/records.js';
import type { LayoutDescription, LayoutFieldType } from '../wire/index.js';
import { foldCase } from './sql.js';

/** A DuckDB column type, by its SQL name. */
export type ColumnType =
  | 'DOUBLE'
  | 'FLOAT'
  | 'TINYINT'
  | 'SMALLINT'
  | 'INTEGER'
  | 'BIGINT'
  | 'UTINYINT'
  | 'USMALLINT'
  | 'UINTEGER'
  | 'UBIGINT'
  | 'BOOLEAN'
  | 'VARCHAR'
  | 'BLOB';

/** Where a column's value comes from: a field of one part of the record. */
export interface ColumnSpec {
  readonly name: string;
  readonly type: ColumnType;
  /** Index of the record part (0: the record header) and the field's name in it. */
  readonly part: number;
  readonly field: string;
  /**
   * How the value is made (default `'field'`: the field as it is): `'string-ref'` reads a u32
   * string id and writes its text (from the block's own strings); `'log-properties'` writes a log
   * event's properties as a JSON object (the field names the event's first key); `'whole-f64'`
   * reads an f64 that holds a whole number (a sequence) and writes it as a BIGINT: a filter on it
   * is then one the Parquet statistics rule row groups out by (a DOUBLE the views cast is not).
   */
  readonly from?: 'field' | 'string-ref' | 'log-properties' | 'whole-f64';
}

/** A column resolved against a stream's layouts: where its bytes are in a record, and how many. */
export interface Column extends ColumnSpec {
  /** Byte offset of the field in a record. */
  readonly offset: number;
  /** Bytes of a fixed-width value; for a string or bytes field, its capacity. */
  readonly bytes: number;
  readonly fieldType: LayoutFieldType;
  /** For `'log-properties'`: the offsets in a record of each property's type, key, value and the two texts. */
  readonly properties?: LogPropertyOffsets;
}

/** Where a log event's properties are in a record (see `dorsal.LogEvent`). */
export interface LogPropertyOffsets {
  readonly types: readonly number[];
  readonly keys: readonly number[];
  readonly values: readonly number[];
  /** The two inline texts: u16 length, then UTF-8 bytes. */
  readonly texts: readonly number[];
  readonly textBytes: number;
}

/**
 * The table a persisted lake stream fills: `stream_<name>` for a spine stream (the envelope, then
 * the message's fields as columns), `timings` for a timing queue. What `decodeBlocks` writes into
 * a partition, column by column.
 */
export interface SourceTable {
  readonly table: string;
  readonly kind: 'messages' | 'timings' | 'log' | 'metrics' | 'spans';
  /** The spine stream's name, or the actor's (timings). */
  readonly name: string;
  readonly recordBytes: number;
  readonly layouts: readonly LayoutDescription[];
  readonly offsets: readonly number[];
  readonly columns: readonly Column[];
  /** How a block's dependencies are laid out (coverage, source drops, strings): see records.ts. */
  readonly dependencies: {
    readonly dependenciesLayouts: readonly LayoutDescription[];
    readonly properties: Readonly<Record<string, string>>;
  };
}

const FIELD_TYPES: Record<LayoutFieldType, ColumnType> = {
  f64: 'DOUBLE',
  f32: 'FLOAT',
  i8: 'TINYINT',
  i16: 'SMALLINT',
  i32: 'INTEGER',
  i64: 'BIGINT',
  u8: 'UTINYINT',
  u16: 'USMALLINT',
  u32: 'UINTEGER',
  u64: 'UBIGINT',
  bool: 'BOOLEAN',
  string: 'VARCHAR',
  bytes: 'BLOB',
};

/** Envelope columns of a stream table, from the record header and the Tracking part. */
const ENVELOPE: readonly ColumnSpec[] = [
  { name: 'seq', type: 'BIGINT', part: 0, field: 'seq', from: 'whole-f64' },
  { name: 'origin_t', type: 'DOUBLE', part: 1, field: 'origin_t' },
  { name: 'publish_t', type: 'DOUBLE', part: 1, field: 'publish_t' },
  { name: 'actor_id', type: 'USMALLINT', part: 1, field: 'actor' },
  { name: 'parent_stream_id', type: 'USMALLINT', part: 1, field: 'parent_stream' },
  { name: 'parent_seq', type: 'BIGINT', part: 1, field: 'parent_seq', from: 'whole-f64' },
];

const TIMING: readonly ColumnSpec[] = [
  { name: 'seq', type: 'BIGINT', part: 1, field: 'seq', from: 'whole-f64' },
  { name: 'origin_t', type: 'DOUBLE', part: 1, field: 'origin_t' },
  { name: 'publish_t', type: 'DOUBLE', part: 1, field: 'publish_t' },
  { name: 'start_t', type: 'DOUBLE', part: 1, field: 'start_t' },
  { name: 'end_t', type: 'DOUBLE', part: 1, field: 'end_t' },
  { name: 'stream_id', type: 'USMALLINT', part: 1, field: 'stream' },
  { name: 'actor_id', type: 'USMALLINT', part: 1, field: 'actor' },
];

/** The raw tables of instrumentation streams, under the views `log_entries`, `measures`, `thread_spans`. */
const LOG: readonly ColumnSpec[] = [
  { name: 'seq', type: 'DOUBLE', part: 0, field: 'seq' },
  { name: 't', type: 'DOUBLE', part: 1, field: 't' },
  { name: 'span', type: 'DOUBLE', part: 1, field: 'span' },
  { name: 'level', type: 'UTINYINT', part: 1, field: 'level' },
  { name: 'flags', type: 'UTINYINT', part: 1, field: 'flags' },
  { name: 'target', type: 'VARCHAR', part: 1, field: 'target', from: 'string-ref' },
  { name: 'message', type: 'VARCHAR', part: 1, field: 'template', from: 'string-ref' },
  { name: 'properties', type: 'VARCHAR', part: 1, field: 'key0', from: 'log-properties' },
];
const METRIC: readonly ColumnSpec[] = [
  { name: 'seq', type: 'DOUBLE', part: 0, field: 'seq' },
  { name: 't', type: 'DOUBLE', part: 1, field: 't' },
  { name: 'value', type: 'DOUBLE', part: 1, field: 'value' },
  { name: 'span', type: 'DOUBLE', part: 1, field: 'span' },
  { name: 'kind', type: 'UTINYINT', part: 1, field: 'kind' },
  { name: 'name', type: 'VARCHAR', part: 1, field: 'name', from: 'string-ref' },
  { name: 'unit', type: 'VARCHAR', part: 1, field: 'unit', from: 'string-ref' },
];
const SPAN: readonly ColumnSpec[] = [
  { name: 'seq', type: 'DOUBLE', part: 0, field: 'seq' },
  { name: 't', type: 'DOUBLE', part: 1, field: 't' },
  { name: 'id', type: 'DOUBLE', part: 1, field: 'id' },
  { name: 'parent', type: 'DOUBLE', part: 1, field: 'parent' },
  { name: 'depth', type: 'USMALLINT', part: 1, field: 'depth' },
  { name: 'kind', type: 'UTINYINT', part: 1, field: 'kind' },
  { name: 'flags', type: 'UTINYINT', part: 1, field: 'flags' },
  { name: 'name', type: 'VARCHAR', part: 1, field: 'name', from: 'string-ref' },
];
const INSTRUMENTATION = {
  log: { table: '_log_events', layout: 'dorsal.LogEvent', columns: LOG },
  metrics: { table: '_metric_events', layout: 'dorsal.MetricEvent', columns: METRIC },
  spans: { table: '_span_events', layout: 'dorsal.SpanEvent', columns: SPAN },
} as const;

/** Column names every stream table has besides the message's fields (and the analytics add). */
const RESERVED = new Set([
  'process_id',
  'stream',
  'actor',
  'parent_stream',
  'publish_time',
  ...ENVELOPE.map((c) => c.name),
]);

/**
 * The table name of a spine stream's typed table. An identifier cannot hold a NUL (DuckDB's
 * parser ends it there): one in a name (any writer's, through ingestion) becomes U+FFFD.
 */
export function streamTableName(stream: string): string {
  return `stream_${stream.replaceAll('\0', '\uFFFD')}`;
}

/**
 * The column a message field becomes: its name, or `field_<name>` where it would clash with the
 * envelope's (in any case: SQL's names ignore it) or is empty (a writer other than a spine may
 * describe one: the identifier "" failed every query over its process).
 */
export function fieldColumnName(field: string): string {
  return field === '' || RESERVED.has(foldCase(field)) ? `field_${field}` : field;
}

/**
 * The columns of a message's fields, in order: `fieldColumnName`'s, the later of two that SQL would
 * take for one (they differ in case only, in a layout a writer other than a spine described: its
 * partitions could not be written) with `_2`, `_3`… after it.
 */
export function fieldColumnNames(fields: readonly string[]): string[] {
  const bases = fields.map(fieldColumnName);
  // A name made up for one is none of the fields' own.
  const taken = new Set(bases.map(foldCase));
  const used = new Set<string>();
  return bases.map((base) => {
    let name = base;
    if (used.has(foldCase(base))) {
      for (let n = 2; taken.has(foldCase(name)); n++) name = `${base}_${n}`;
      taken.add(foldCase(name));
    }
    used.add(foldCase(name));
    return name;
  });
}

/**
 * The version of what a partition's files hold: raise it with any change of it (a column's name,
 * type or values, the coverage file), and every partition written before is made again from its
 * blocks at its next look. `fileSchemaOf` also sees a change of the columns made without a raise,
 * in partitions that say their schema; those of lakes from before partitions said (their row's
 * `file_schema` is null) are known as format 1 only, and made again only by a raise.
 */
export const PARTITION_FORMAT = 1;

/**
 * What a partition of `table` written by this dorsal holds, as its row records it (micromegas'
 * `file_schema_hash`): the partition format, then a digest of the table's name and columns. A
 * partition whose row says another is not read: one written by an older dorsal (a lower format,
 * or the same with other columns) is made again from its blocks, and let go of once that is done;
 * one of a newer dorsal (a higher format) is left to it, and this one makes its own of the same
 * blocks.
 */
export function fileSchemaOf(table: SourceTable): string {
  const columns = table.columns.map((c) => [c.name, c.type, c.from ?? 'field', c.part, c.field]);
  const digest = createHash('sha256')
    .update(JSON.stringify([table.table, table.kind, columns]))
    .digest('hex')
    .slice(0, 16);
  return `${PARTITION_FORMAT}:${digest}`;
}

/** The partition format a file schema (see `fileSchemaOf`) names, or NaN if it names none. */
export function partitionFormatOf(fileSchema: string): number {
  const format = fileSchema.slice(0, fileSchema.indexOf(':'));
  return /^[0-9]{1,9}$/.test(format) ? Number(format) : Number.NaN;
}

/** The table a persisted lake stream fills, or undefined for a stream the analytics do not read. */
export function sourceTableOf(stream: StreamRow): SourceTable | undefined {
  const recordBytes = Number(stream.properties[RecordProperty.RECORD_BYTES]);
  const offsets = (stream.properties[RecordProperty.LAYOUT_OFFSETS] ?? '').split(',').map(Number);
  const layouts = stream.objectsLayouts;
  if (!(recordBytes > 0) || offsets.length !== layouts.length) return undefined;
  // Each part of a record inside the record: a client's stream record may say otherwise, and its
  // blocks would fail the decoding of every query over the lake.
  if (!offsets.every((o, i) => Number.isSafeInteger(o) && o >= 0 && o + layouts[i]!.size <= recordBytes))
    return undefined;
  const dependencies = { dependenciesLayouts: stream.dependenciesLayouts, properties: stream.properties };
  if (stream.tags.includes('messages') && layouts.length === 3) {
    const name = stream.properties.name ?? stream.streamId;
    const names = fieldColumnNames(layouts[2]!.fields.map((f) => f.name));
    const fields = layouts[2]!.fields.map(
      (f, i): ColumnSpec => ({
        name: names[i]!,
        type: FIELD_TYPES[f.type],
        part: 2,
        field: f.name,
      }),
    );
    const columns = resolve([...ENVELOPE, ...fields], layouts, offsets);
    if (columns === undefined) return undefined;
    return {
      table: streamTableName(name),
      kind: 'messages',
      name,
      recordBytes,
      layouts,
      offsets,
      columns,
      dependencies,
    };
  }
  for (const kind of ['log', 'metrics', 'spans'] as const) {
    const spec = INSTRUMENTATION[kind];
    if (!stream.tags.includes(kind) || layouts.length !== 2 || layouts[1]!.name !== spec.layout) continue;
    const columns = resolve(spec.columns, layouts, offsets);
    if (columns === undefined) return undefined;
    return {
      table: spec.table,
      kind,
      name: stream.properties.thread ?? stream.streamId,
      recordBytes,
      layouts,
      offsets,
      columns,
      dependencies,
    };
  }
  if (stream.tags.includes('timings') && layouts.length === 2) {
    const columns = resolve(TIMING, layouts, offsets);
    if (columns === undefined) return undefined;
    return {
      table: 'timings',
      kind: 'timings',
      name: stream.properties.actor ?? stream.streamId,
      recordBytes,
      layouts,
      offsets,
      columns,
      dependencies,
    };
  }
  return undefined;
}

/** Widths of the fixed-width field types, in bytes. */
const WIDTHS: Partial<Record<LayoutFieldType, number>> = {
  f64: 8,
  f32: 4,
  i8: 1,
  i16: 2,
  i32: 4,
  i64: 8,
  u8: 1,
  u16: 2,
  u32: 4,
  u64: 8,
  bool: 1,
};

/**
 * Each column's place in a record, from the stream's layouts; undefined when a field is missing
 * or lies outside its part (a stream written by another version: its blocks are not read).
 */
function resolve(
  specs: readonly ColumnSpec[],
  layouts: readonly LayoutDescription[],
  offsets: readonly number[],
): Column[] | undefined {
  const columns: Column[] = [];
  for (const spec of specs) {
    const layout = layouts[spec.part];
    const field = layout?.fields.find((f) => f.name === spec.field);
    if (layout === undefined || field === undefined) return undefined;
    const bytes =
      WIDTHS[field.type] ?? (field.type === 'string' ? (field.bytes ?? 0) + 2 : (field.bytes ?? 0));
    if (!(field.offset >= 0 && field.offset + bytes <= layout.size)) return undefined;
    if (spec.from === 'string-ref' && field.type !== 'u32') return undefined;
    if (spec.from === 'whole-f64' && field.type !== 'f64') return undefined;
    const column: Column = {
      ...spec,
      offset: offsets[spec.part]! + field.offset,
      bytes,
      fieldType: field.type,
    };
    if (spec.from !== 'log-properties') {
      columns.push(column);
      continue;
    }
    const at = (name: string) => {
      const found = layout.fields.find((x) => x.name === name);
      return found === undefined ? Number.NaN : offsets[spec.part]! + found.offset;
    };
    const properties: LogPropertyOffsets = {
      types: [0, 1, 2, 3].map((i) => at(`type${i}`)),
      keys: [0, 1, 2, 3].map((i) => at(`key${i}`)),
      values: [0, 1, 2, 3].map((i) => at(`value${i}`)),
      texts: [0, 1].map((i) => at(`text${i}`)),
      textBytes: layout.fields.find((x) => x.name === 'text0')?.bytes ?? 0,
    };
    if (
      [...properties.types, ...properties.keys, ...properties.values, ...properties.texts].some(
        (n) => !Number.isFinite(n),
      )
    ) {
      return undefined;
    }
    columns.push({ ...column, properties });
  }
  return columns;
}
