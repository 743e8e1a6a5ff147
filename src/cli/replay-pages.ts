import { LayoutError } from '../errors.js';
import type { FieldDescription } from '../queues/field-types.js';
import { PAGE } from '../telemetry/analytics/paged.js';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { streamTableName } from '../telemetry/analytics/source-tables.js';
import { quoteIdentifier } from '../telemetry/analytics/sql.js';
import { nameList, type Playlist, recordedColumn } from './replay-recording.js';

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
function selectField(field: FieldDescription, recordedColumn: string): string {
  const column = quoteIdentifier(recordedColumn);
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
export function playOrderSql(
  playlist: Playlist,
  after: PlayKey | undefined,
  limit: number,
  before?: number,
): string {
  const widest = Math.max(0, ...playlist.layouts.map((l) => l.describe().fields.length));
  const branches = playlist.streams.map((name, s) => {
    const fields = playlist.layouts[s]!.describe().fields;
    const columns = Array.from({ length: widest }, (_, i) => {
      const field = fields[i];
      return `${field === undefined ? 'NULL::VARCHAR' : selectField(field, recordedColumn(playlist, s, field.name))} AS c${i}`;
    });
    // The shortest text that reads back as the same double (NaN, Infinity too), read as a double
    // (not as a DECIMAL, whose conversion may round to a neighbour).
    const t = `'${after?.t}'::DOUBLE`;
    // `publish_t >= t` first, alone: a range the scan can prune row groups by (the OR cannot).
    const since =
      after === undefined
        ? ''
        : s > after.s
          ? ` AND publish_t >= ${t}`
          : s === after.s
            ? ` AND publish_t >= ${t} AND (publish_t > ${t} OR (publish_t = ${t} AND seq > ${after.q}))`
            : ` AND publish_t > ${t}`;
    const until = before === undefined ? '' : ` AND publish_t < '${before}'::DOUBLE`;
    return `SELECT * FROM (SELECT publish_t AS t, ${s} AS s, seq AS q${columns.map((c) => `, ${c}`).join('')} FROM ${quoteIdentifier(streamTableName(name))} WHERE actor IN ${nameList(playlist.actors)}${since}${until} ORDER BY publish_t, seq LIMIT ${limit})`;
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
 *
 * The play order is cut into windows of publish time that hold 4/5 of a page each (every
 * step-th of its sorted times, asked once: `windowEnds`), and each window is read in keyset pages
 * bounded by its end: a page's query sorts the rows of its window only. Keyset pages alone sort
 * every row after their start, and reading a recording cost the square of its length (4 M
 * messages: 65 s of queries against ~10). The last window has no end: the infinite and NaN times
 * sort last.
 */
export async function* playOrderPages(
  analytics: AnalyticsQuestions,
  playlist: Playlist,
  page = PAGE,
): AsyncGenerator<readonly (readonly unknown[])[]> {
  let after: PlayKey | undefined;
  for (const before of [...(await windowEnds(analytics, playlist, page)), undefined]) {
    for (;;) {
      const { rows, truncated } = await analytics.query(playOrderSql(playlist, after, page, before), {
        process: playlist.process,
        maxRows: page,
      });
      if (rows.length > 0) yield rows;
      const last = rows.at(-1);
      if (last !== undefined) after = playKeyOf(last);
      if (last === undefined || (!truncated && rows.length < page)) break;
    }
  }
}

/** Windows asked for at most: the query of their ends answers one list of as many times. */
const MAX_WINDOWS = 2000;

/**
 * Where the play order's windows end: finite publish times (distinct, ascending) that cut it into
 * parts of about `page` messages, from one query (the time of every `step`th finite time, in
 * order). None for a recording of a page or less.
 *
 * One sort of the recording's times, not `quantile_disc` with a list of fractions: that one
 * cost its rows times its fractions (2 M rows, 2,000 fractions: 25 s, the sort 0.2 s; 20 M rows,
 * 500 fractions: 58 s, past a query's 30 s, the sort 1.5 s), and holds every time in memory
 * outside DuckDB's memory limit, where a sort spills.
 */
async function windowEnds(
  analytics: AnalyticsQuestions,
  playlist: Playlist,
  page: number,
): Promise<number[]> {
  // 4/5 of a page each: a window of a whole page would take a second query for what is left of it.
  const windows = Math.min(MAX_WINDOWS, Math.ceil(playlist.total / (page * 0.8)));
  if (windows < 2) return [];
  const branches = playlist.streams.map(
    (name) =>
      `SELECT publish_t FROM ${quoteIdentifier(streamTableName(name))} WHERE actor IN ${nameList(playlist.actors)} AND isfinite(publish_t)`,
  );
  // The step from the real count (not the playlist's): `windows` ends at most, whatever it says.
  const step = `greatest(1, ceil(count(*) OVER () / ${windows}))::BIGINT`;
  // As text: exact through a server's JSON answer, as the pages' keys are (see `publishTimeOf`).
  const { rows } = await analytics.query(
    `SELECT list(publish_t::VARCHAR ORDER BY publish_t) FROM (SELECT publish_t FROM (${branches.join(' UNION ALL ')}) QUALIFY row_number() OVER (ORDER BY publish_t) % ${step} = 0)`,
    { process: playlist.process, maxRows: 1 },
  );
  const ends = (rows[0]?.[0] ?? []) as readonly unknown[];
  const times = ends.map((text) => publishTimeOf([text]));
  // A window of one instant's messages (ties) is read whole: the same end twice adds nothing.
  return times.filter((t, i) => i === 0 || t > times[i - 1]!);
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
