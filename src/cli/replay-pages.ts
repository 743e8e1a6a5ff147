import { LayoutError } from '../errors.js';
import type { FieldDescription } from '../queues/field-types.js';
import { PAGE } from '../telemetry/analytics/paged.js';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { streamTableName } from '../telemetry/analytics/source-tables.js';
import { quoteIdentifier } from '../telemetry/analytics/sql.js';
import { printable } from './format.js';
import { nameList, type Playlist, recordedColumn } from './replay-recording.js';
import { ANY_TIME_SPAN, double, timedSql } from './replay-span.js';

/**
 * How far the play order has got, stream by stream (by index in the playlist's streams): the
 * messages played so far are a prefix of each stream in sequence order (see `playOrderSql`), so a
 * stream's position is its last message played and the play time it had.
 */
export interface PlayPosition {
  /** Per stream: the seq of its last message played; undefined while none was. */
  readonly seqs: readonly (number | undefined)[];
  /** Per stream: the play time of its last message played (see `playOrderSql`); -inf while none was. */
  readonly times: readonly number[];
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
    `field '${printable(field.name)}' is ${field.type === 'bytes' ? 'bytes' : /^[if]/.test(field.type) ? `an ${field.type}` : `a ${field.type}`} in the replayed layout: the recorded ${text === undefined ? 'NULL' : `'${printable(text.length > 40 ? `${text.slice(0, 40)}…` : text)}'`} is none`,
  );
}

/**
 * SQL of a message's play time (see `playOrderSql`): the greatest timed publish time of its
 * stream up to it (`timed`, a condition on the row: finite and within its recording's span, see
 * `TimeSpan`), NULL before the first; over rows ordered by `order` (its stream's sequence), in
 * windows of `partition` when rows of several streams are together.
 */
export function playTimeSql(order: string, timed: string, partition?: string): string {
  return `max(CASE WHEN ${timed} THEN publish_t END) OVER (${partition === undefined ? '' : `PARTITION BY ${partition} `}ORDER BY ${order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)`;
}

/** The condition on a playlist's rows that their publish time paces them (see `TimeSpan`). */
function timedOf(playlist: Playlist): string {
  return timedSql(playlist.span ?? ANY_TIME_SPAN);
}

/**
 * One page of the playlist in play order, after `after` (from the start when undefined), at most
 * `limit` messages. A row: `t` (its play time, as text), `s` (its stream's index in the
 * playlist's streams), `q` (its seq), then the stream's fields as text, in its layout's order
 * (NULL in the columns its layout has not).
 *
 * The play order keeps each stream in sequence order, the order its consumers read it in and the
 * order its messages are numbered in when a replay is compared with its recording (replay-tree.ts,
 * replay-memory.ts), and merges the streams by time: a message's play time is the greatest timed
 * publish time of its stream's messages up to it (-inf before the first; within the recording's
 * span, see `TimeSpan`). Publish times alone
 * would not do: on a stream several actors produce, a message stamped before another may be
 * claimed after it (a higher seq), and played by publish time it would take the other's number in
 * the replay, and every message between them (and its tree) would be compared with a neighbour's.
 * Nor would a time that is not a number (a damaged recording): it never sorts among the others.
 * The play time never goes back within a stream, so the merge is a sort by (play time, stream,
 * seq), and the messages of a stream that are played next follow its `after.seqs` position: each
 * stream's table is read from there, in seq order, `limit` rows at most. `cuts` (a window's end,
 * see `windowCuts`) keeps each stream's messages before the seq it gives, if it gives one.
 */
export function playOrderSql(
  playlist: Playlist,
  after: PlayPosition | undefined,
  limit: number,
  cuts?: readonly (number | undefined)[],
): string {
  const widest = Math.max(0, ...playlist.layouts.map((l) => l.describe().fields.length));
  const branches = playlist.streams.map((name, s) => {
    const fields = playlist.layouts[s]!.describe().fields;
    const columns = Array.from({ length: widest }, (_, i) => {
      const field = fields[i];
      return `${field === undefined ? 'NULL::VARCHAR' : selectField(field, recordedColumn(playlist, s, field.name))} AS c${i}`;
    });
    const table = quoteIdentifier(streamTableName(name));
    const mine = `actor IN ${nameList(playlist.actors)}`;
    const last = after?.seqs[s];
    const since = last === undefined ? '' : ` AND seq > ${last}`;
    // The window's end, as the first seq of the stream past it (see `windowCuts`): a constant,
    // which the scan prunes row groups by.
    // And the stream's end where the recording went on past its counts (see `Playlist.ends`).
    const cut = Math.min(
      cuts?.[s] ?? Number.POSITIVE_INFINITY,
      playlist.ends?.[s] ?? Number.POSITIVE_INFINITY,
    );
    const until = cut === Number.POSITIVE_INFINITY ? '' : ` AND seq < ${cut}`;
    const playTime = `greatest(${double(after?.times[s] ?? Number.NEGATIVE_INFINITY)}, coalesce(${playTimeSql('q', timedOf(playlist))}, '-inf'::DOUBLE))`;
    const values = Array.from({ length: widest }, (_, i) => `, c${i}`).join('');
    return `SELECT ${playTime} AS t, s, q${values} FROM (SELECT publish_t, ${s} AS s, seq AS q${columns.map((c) => `, ${c}`).join('')} FROM ${table} WHERE ${mine}${since}${until} ORDER BY seq LIMIT ${limit})`;
  });
  const values = Array.from({ length: widest }, (_, i) => `, c${i}`).join('');
  // The time as text (see `playTimeOf`), ordered as the double it is.
  return `SELECT t::VARCHAR AS t_text, s, q${values} FROM (${branches.join(' UNION ALL ')}) ORDER BY t, s, q LIMIT ${limit}`;
}

/** A double selected as DuckDB's text of it, back as the double it is (NaN and ±inf too). */
function doubleOf(text: unknown): number {
  return fieldValue({ name: 'publish_t', type: 'f64', offset: 0 }, text) as number;
}

/**
 * A page's row's play time (see `playOrderSql`): selected as DuckDB's text of the double, exact
 * for every double; a number would not be through a server, whose JSON answer turns a NaN or ±inf
 * into null (read as 0).
 */
export function playTimeOf(row: readonly unknown[]): number {
  return doubleOf(row[0]);
}

/** Where the play order stands after `rows` (a page), from `after`. */
function advance(
  after: PlayPosition | undefined,
  streams: number,
  rows: readonly (readonly unknown[])[],
): PlayPosition {
  const seqs = after === undefined ? new Array<number | undefined>(streams).fill(undefined) : [...after.seqs];
  const times =
    after === undefined ? new Array<number>(streams).fill(Number.NEGATIVE_INFINITY) : [...after.times];
  for (const row of rows) {
    const s = Number(row[1]);
    seqs[s] = Number(row[2]);
    times[s] = playTimeOf(row);
  }
  return { seqs, times };
}

/**
 * The playlist's messages in play order, a page (one query) at a time; rows as `playOrderSql`
 * selects them. A server's row limit makes pages shorter, never cuts any.
 *
 * The play order is cut into windows that hold 4/5 of a page each, where each stream ends asked
 * once for every window (`windowCuts`), and each window is read in keyset pages bounded by its
 * ends as constant seqs: a page's query reads the rows of its window only. Keyset pages alone
 * sort every row after their start, and a bound asked at each page scans them: either way reading
 * a recording cost the square of its length (4 M messages: 65 s of queries against ~10; 8 M: 77 s
 * against 20). The last window has no end.
 */
export async function* playOrderPages(
  analytics: AnalyticsQuestions,
  playlist: Playlist,
  page = PAGE,
): AsyncGenerator<readonly (readonly unknown[])[]> {
  let after: PlayPosition | undefined;
  const windows = await windowCuts(analytics, playlist, page);
  // The last window has no end.
  for (const cuts of [...windows, undefined]) {
    for (;;) {
      const { rows, truncated } = await analytics.query(playOrderSql(playlist, after, page, cuts), {
        process: playlist.process,
        maxRows: page,
      });
      if (rows.length > 0) yield rows;
      if (rows.length > 0) after = advance(after, playlist.streams.length, rows);
      if (rows.length === 0 || (!truncated && rows.length < page)) break;
    }
  }
}

/**
 * Each finite play time of stream `s` of the playlist (`play_t`: the greatest finite publish
 * time of the stream up to the message, see `playOrderSql`) with the message's `seq`.
 */
function playTimesSql(playlist: Playlist, s: number): string {
  const table = quoteIdentifier(streamTableName(playlist.streams[s]!));
  return `SELECT seq, ${playTimeSql('seq', timedOf(playlist))} AS play_t FROM ${table} WHERE actor IN ${nameList(playlist.actors)} QUALIFY play_t IS NOT NULL`;
}

/** Windows asked for at most: the query of their cuts answers one list of a cut per stream and window. */
const MAX_WINDOWS = 2000;

/**
 * The play order cut into windows of 4/5 of a page each (`windowCuts`), and where each window
 * ends in each stream (`cuts[window][stream]`): the first seq of the stream in a later window
 * (a play time never goes back, so the window holds the stream's messages before it), undefined
 * where none is (the rest of the stream is in the window). One query, one sort of the play
 * order, whatever the number of windows and streams: the ends are not sent back as literals
 * (2,000 ends over a few streams passed a server's 64 KiB of SQL), nor asked at each page (a
 * bound asked at each page scanned the rest of the recording every time). Messages before their
 * stream's first finite time have no play time yet: they come first, before every cut.
 */
async function windowCuts(
  analytics: AnalyticsQuestions,
  playlist: Playlist,
  page: number,
): Promise<(number | undefined)[][]> {
  // 4/5 of a page each: a window of a whole page would take a second query for what is left of it.
  const windows = Math.min(MAX_WINDOWS, Math.ceil(playlist.total / (page * 0.8)));
  if (windows < 2) return [];
  const branches = playlist.streams.map(
    (_, s) => `SELECT play_t, ${s} AS s, seq FROM (${playTimesSql(playlist, s)})`,
  );
  // The step from the real count (not the playlist's): `windows` windows at most, whatever it says.
  const step = `greatest(1, ceil(count(*) OVER () / ${windows}))::BIGINT`;
  const { rows } = await analytics.query(
    `SELECT list([s, w, seq] ORDER BY s, w) FROM (SELECT s, w, min(seq)::DOUBLE AS seq FROM (SELECT s, seq, (row_number() OVER (ORDER BY play_t, s, seq) - 1) // ${step} AS w FROM (${branches.join(' UNION ALL ')})) GROUP BY s, w)`,
    { process: playlist.process, maxRows: 1 },
  );
  const firstOf = playlist.streams.map(() => new Map<number, number>());
  let last = -1;
  for (const triple of (rows[0]?.[0] ?? []) as readonly (readonly unknown[])[]) {
    const w = Number(triple[1]);
    firstOf[Number(triple[0])]?.set(w, Number(triple[2]));
    last = Math.max(last, w);
  }
  // Window w ends where window w + 1 (or the first later one with messages of the stream) begins.
  const cuts = Array.from({ length: Math.max(0, last) }, () =>
    playlist.streams.map((): number | undefined => undefined),
  );
  for (let s = 0; s < playlist.streams.length; s++) {
    let next: number | undefined;
    for (let w = last; w >= 1; w--) {
      next = firstOf[s]!.get(w) ?? next;
      cuts[w - 1]![s] = next;
    }
  }
  return cuts;
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

/**
 * How many of the playlist's messages have a publish time that is not a number (NaN or ±inf), or
 * one outside the recording's span (see `TimeSpan`): a damaged recording. They are played all the
 * same, each when its stream's order comes to it, unpaced (see `playOrderSql`); the replay says
 * how many.
 */
export async function countUntimed(analytics: AnalyticsQuestions, playlist: Playlist): Promise<number> {
  const branches = playlist.streams.map(
    (name) =>
      `SELECT count(*) AS n FROM ${quoteIdentifier(streamTableName(name))} WHERE actor IN ${nameList(playlist.actors)} AND NOT ${timedOf(playlist)}`,
  );
  const { rows } = await analytics.query(`SELECT sum(n)::DOUBLE FROM (${branches.join(' UNION ALL ')})`, {
    process: playlist.process,
    maxRows: 1,
  });
  return Number(rows[0]?.[0] ?? 0);
}
