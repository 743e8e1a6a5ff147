import { LayoutError } from '../errors.js';
import type { FieldDescription } from '../queues/field-types.js';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { fieldColumnName, streamTableName } from '../telemetry/analytics/source-tables.js';
import { quoteIdentifier } from '../telemetry/analytics/sql.js';
import { keysetPagesOf } from './paged.js';
import { nameList, type Playlist } from './replay-recording.js';

/** Where a page of the play order ends: the last message's publish time, stream (index) and seq. */
export interface PlayKey {
  /** A DOUBLE in the stream tables (ns on the recording's clock), read from its text: exact, NaN and ±inf too. */
  readonly t: number;
  readonly s: number;
  readonly q: number;
}

/**
 * A field's value as SQL selects it for replay: as text, exact where JSON would round or fail
 * (and one type for every stream's columns, which share the columns of a page).
 */
function selectField(field: FieldDescription): string {
  const column = quoteIdentifier(fieldColumnName(field.name));
  switch (field.type) {
    case 'f64':
    case 'f32':
      // DuckDB prints the shortest text that reads back as the same double (and nan, inf).
      return `${column}::DOUBLE::VARCHAR`;
    case 'bytes':
      return `hex(${column})`;
    default:
      return `${column}::VARCHAR`;
  }
}

/** A decimal number as DuckDB prints one (an integer, or a DOUBLE's shortest text). */
const DECIMAL = /^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
/** An integer's text, exactly (what a BIGINT, UBIGINT or smaller integer column prints). */
const INTEGER = /^-?\d+$/;

/**
 * A selected value back as the layout takes it. A text that is no value of the field's type (a
 * recorded NaN or 1.5 for an i64, a recorded string or `1` for a bool, a NULL: the replayed layout
 * typed the field otherwise than the recording) is a `LayoutError` naming the field and the
 * recorded text, never a value made up for it (a bool `false`, an integer `0`).
 */
export function fieldValue(field: FieldDescription, value: unknown): unknown {
  const text = value === null || value === undefined ? undefined : String(value);
  switch (field.type) {
    case 'f64':
    case 'f32':
      if (text === 'nan') return Number.NaN;
      if (text === 'inf') return Infinity;
      if (text === '-inf') return -Infinity;
      if (text !== undefined && DECIMAL.test(text)) return Number(text);
      break;
    case 'i64':
    case 'u64':
      if (text !== undefined && INTEGER.test(text)) return BigInt(text);
      break;
    case 'bytes':
      if (text !== undefined && /^(?:[0-9a-f]{2})*$/i.test(text))
        return Uint8Array.from(Buffer.from(text, 'hex'));
      break;
    case 'bool':
      if (text === 'true') return true;
      if (text === 'false') return false;
      break;
    case 'string':
      return text ?? '';
    default:
      // The layout's check says whether it is an integer in the field's range.
      if (text !== undefined && DECIMAL.test(text)) return Number(text);
  }
  throw new LayoutError(
    `field '${field.name}' is ${field.type === 'bytes' ? 'bytes' : /^[if]/.test(field.type) ? `an ${field.type}` : `a ${field.type}`} in the replayed layout: the recorded ${text === undefined ? 'NULL' : `'${text.length > 40 ? `${text.slice(0, 40)}…` : text}'`} is none`,
  );
}

/**
 * One page of the playlist in play order: publish time, then stream (its index in the sorted
 * streams), then seq, merged across the streams' tables, after `after` (from the start when
 * undefined), at most `limit` messages. A row: `t`, `s`, `q`, then the stream's
 * fields as text, in its layout's order (NULL in the columns its layout has not). Each stream's
 * condition is the keyset's, rewritten for its constant `s`, so that each table is read from
 * the page's start only.
 */
export function playOrderSql(playlist: Playlist, after: PlayKey | undefined, limit: number): string {
  const widest = Math.max(0, ...playlist.layouts.map((l) => l.describe().fields.length));
  const branches = playlist.streams.map((name, s) => {
    const fields = playlist.layouts[s]!.describe().fields;
    const columns = Array.from({ length: widest }, (_, i) => {
      const field = fields[i];
      return `${field === undefined ? 'NULL::VARCHAR' : selectField(field)} AS c${i}`;
    });
    // The shortest text that reads back as the same double (NaN, Infinity too), read as a double
    // (not as a DECIMAL, whose conversion may round to a neighbour).
    const t = `'${after?.t}'::DOUBLE`;
    const since =
      after === undefined
        ? ''
        : s > after.s
          ? ` AND publish_t >= ${t}`
          : s === after.s
            ? ` AND (publish_t > ${t} OR (publish_t = ${t} AND seq > ${after.q}))`
            : ` AND publish_t > ${t}`;
    return `SELECT * FROM (SELECT publish_t AS t, ${s} AS s, seq AS q${columns.map((c) => `, ${c}`).join('')} FROM ${quoteIdentifier(streamTableName(name))} WHERE actor IN ${nameList(playlist.actors)}${since} ORDER BY publish_t, seq LIMIT ${limit})`;
  });
  const values = Array.from({ length: widest }, (_, i) => `, c${i}`).join('');
  // The time as text (see `publishTimeOf`), ordered as the double it is.
  return `SELECT t::VARCHAR AS t_text, s, q${values} FROM (${branches.join(' UNION ALL ')}) ORDER BY t, s, q LIMIT ${limit}`;
}

/**
 * A page's row's publish time: selected as DuckDB's text of the double, exact for every double;
 * a number would not be through a server, whose JSON answer turns a NaN or ±inf into null (read
 * as 0: the next page started over from the first positive time, and the paging went round).
 */
export function publishTimeOf(row: readonly unknown[]): number {
  return fieldValue({ name: 'publish_t', type: 'f64', offset: 0 }, row[0]) as number;
}

/** The key of a page's row (see `playOrderSql`). */
export function playKeyOf(row: readonly unknown[]): PlayKey {
  return { t: publishTimeOf(row), s: Number(row[1]), q: Number(row[2]) };
}

/**
 * The playlist's messages in play order, a page (one query) at a time; rows as `playOrderSql`
 * selects them. A server's row limit makes pages shorter, never cuts any.
 */
export function playOrderPages(
  analytics: AnalyticsQuestions,
  playlist: Playlist,
): AsyncGenerator<readonly (readonly unknown[])[]> {
  return keysetPagesOf(
    analytics,
    playlist.process,
    (after: PlayKey | undefined, limit) => playOrderSql(playlist, after, limit),
    playKeyOf,
  );
}

/** A row's message: its stream's fields, as its layout takes them. */
export function rowValue(
  fields: readonly FieldDescription[],
  row: readonly unknown[],
): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  for (let i = 0; i < fields.length; i++) value[fields[i]!.name] = fieldValue(fields[i]!, row[i + 3]);
  return value;
}
