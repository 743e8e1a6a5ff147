import { DorsalError } from '../errors.js';
import { withUnrecorded } from '../telemetry/analytics/compat.js';
import { allRows } from '../telemetry/analytics/paged.js';
import { type AnalyticsQuestions, isTime, timed } from '../telemetry/analytics/questions.js';
import { quoteLiteral } from '../telemetry/analytics/sql.js';
import { printable } from './format.js';
import type { TraceWindow } from './trace-window.js';

/**
 * The SQL a trace is made of, over the analytics views of one process: each kind of event read
 * in pages, in time order, so that neither the answer (embedded or over HTTP, where the server
 * caps the rows of an answer) nor the file's writer holds more than a page at once.
 */

/** The kinds of event a trace holds that `--limit` counts. */
export type EventKind = 'handler_calls' | 'spans' | 'log_entries' | 'counter_samples';

/** The process, the window, and from when on events are left out. */
export interface TraceScope {
  readonly analytics: AnalyticsQuestions;
  readonly process: string;
  readonly window: TraceWindow;
  /** Events at or after this time (ns since the process's start) are left out; null: none. */
  readonly cutoffNs: number | null;
  /** Rows asked for per query. */
  readonly pageRows: number;
}

/** A DOUBLE literal that holds `n` exactly (a bare decimal literal would be a DECIMAL). */
function double(n: number): string {
  return `${quoteLiteral(String(n))}::DOUBLE`;
}

/**
 * The condition that an event at `column` (ns since the process's start) is in the trace. The
 * window applies to the time as the trace shows it, to the nanosecond (`Math.round`'s rounding):
 * a `--begin` copied from an event's `ts` keeps that event.
 */
function kept(column: string, window: TraceWindow, cutoffNs: number | null): string {
  const ns = `floor(${column} + 0.5)`;
  // A time that is no time (NaN, ±∞, or further than `timed` takes: a damaged recording) has no
  // place on a timeline, and would break the paging's order (NaN equals nothing in JS):
  // `countEvents` counts such events.
  const terms = [timed(column)];
  if (window.beginNs !== undefined) terms.push(`${ns} >= ${double(window.beginNs)}`);
  if (window.endNs !== undefined) terms.push(`${ns} < ${double(window.endNs)}`);
  if (cutoffNs !== null) terms.push(`${column} < ${double(cutoffNs)}`);
  return terms.join(' AND ');
}

/** True when an event at `t` is in the trace: the same test as `kept`, for times read back. */
export function isKept(t: number, scope: Pick<TraceScope, 'window' | 'cutoffNs'>): boolean {
  const { beginNs, endNs } = scope.window;
  const ns = Math.round(t);
  return (
    isTime(t) &&
    (beginNs === undefined || ns >= beginNs) &&
    (endNs === undefined || ns < endNs) &&
    (scope.cutoffNs === null || t < scope.cutoffNs)
  );
}

/**
 * The time column of each kind's view, and what else must be a time for an event to be placed: a
 * handler call's end and origin too (a slice of 1e16 µs, or none to measure latency by).
 */
const EVENT_TIMES: readonly [EventKind, string, string, string][] = [
  ['handler_calls', 'timings', 'start_t', `${timed('end_t')} AND ${timed('origin_t')}`],
  ['spans', 'thread_spans', 'begin_ns', 'true'],
  ['log_entries', 'log_entries', 'time_ns', 'true'],
  ['counter_samples', 'measures', 'time_ns', 'true'],
];

/** `EVENT_TIMES`' other times of handler calls. */
const CALL_TIMED = EVENT_TIMES[0]![3];

/** How many events of each kind the window holds, and how many a trace of at most `limit` keeps. */
export interface EventCounts {
  readonly inWindow: Readonly<Record<EventKind, number>>;
  readonly kept: Readonly<Record<EventKind, number>>;
  /** The time from which events are left out to keep to the limit (null: none is). */
  readonly cutoffNs: number | null;
  /** Events of the process whose times are no time (see `timed`): no trace can place them. */
  readonly untimed: number;
}

/**
 * Counts the window's events; when there are more than `limit`, the trace keeps the earliest ones:
 * every event before the time of the first one past the limit.
 */
export async function countEvents(
  analytics: AnalyticsQuestions,
  process: string,
  window: TraceWindow,
  limit: number,
): Promise<EventCounts> {
  const events = EVENT_TIMES.map(
    ([kind, view, column, also]) =>
      `SELECT '${kind}' AS kind, ${column} AS t FROM ${view} WHERE ${kept(column, window, null)} AND ${also}`,
  ).join(' UNION ALL ');
  const rows = await allRows(
    analytics,
    { process },
    `WITH e AS (${events}), cut AS (SELECT t FROM e ORDER BY t LIMIT 1 OFFSET ${limit})
     SELECT kind, count(*)::DOUBLE, count(*) FILTER (WHERE coalesce(t < (SELECT t FROM cut), true))::DOUBLE,
       (SELECT t FROM cut) FROM e GROUP BY kind ORDER BY kind`,
  );
  const zero = () => ({ handler_calls: 0, spans: 0, log_entries: 0, counter_samples: 0 });
  const inWindow: Record<EventKind, number> = zero();
  const keptCounts: Record<EventKind, number> = zero();
  let cutoffNs: number | null = null;
  for (const [kind, total, keptCount, cut] of rows) {
    inWindow[kind as EventKind] = Number(total);
    keptCounts[kind as EventKind] = Number(keptCount);
    if (cut !== null) cutoffNs = Number(cut);
  }
  const untimed = await analytics.query(
    `SELECT count(*)::DOUBLE FROM (${EVENT_TIMES.map(([, view, column, also]) => `SELECT ${timed(column)} AND ${also} AS placed FROM ${view}`).join(' UNION ALL ')})
     WHERE NOT placed`,
    { process, maxRows: 1 },
  );
  return { inWindow, kept: keptCounts, cutoffNs, untimed: Number(untimed.rows[0]?.[0] ?? 0) };
}

/** A thread or actor that has events in the window, and its first event's time. */
export interface TrackSource {
  readonly actor: string | null;
  readonly thread: string | null;
  readonly firstNs: number;
}

/** The actors and threads with events in the scope, the earliest first. */
export async function trackSources(scope: TraceScope): Promise<TrackSource[]> {
  const { window, cutoffNs } = scope;
  const rows = await allRows(
    scope.analytics,
    { process: scope.process },
    `SELECT actor, thread, min(t) AS first FROM (
       SELECT actor, NULL::VARCHAR AS thread, start_t AS t FROM timings WHERE ${kept('start_t', window, cutoffNs)} AND ${CALL_TIMED}
       UNION ALL SELECT actor, thread, begin_ns FROM thread_spans WHERE ${kept('begin_ns', window, cutoffNs)}
       UNION ALL SELECT actor, thread, time_ns FROM log_entries WHERE ${kept('time_ns', window, cutoffNs)}
       UNION ALL SELECT actor, thread, time_ns FROM measures WHERE ${kept('time_ns', window, cutoffNs)}
     ) GROUP BY ALL ORDER BY first, actor, thread`,
  );
  return rows.map(([actor, thread, first]) => ({
    actor: actor === null ? null : String(actor),
    thread: thread === null ? null : String(thread),
    firstNs: Number(first),
  }));
}

/**
 * Rows of a query in pages, in the order of all their columns, the first being the event's time.
 * `select(after, page)` returns the SQL of one page: `after` is a condition on the time column
 * and `page` the `ORDER BY ALL LIMIT … OFFSET …` that cuts it. A page starts at the last time
 * seen, skipping the rows at that time already read: the order is total, so they come first.
 */
async function* paged(
  scope: TraceScope,
  timeColumn: string,
  select: (after: string, page: string) => string,
): AsyncGenerator<readonly unknown[]> {
  let after = 'true';
  let skip = 0;
  let lastT: number | null = null;
  for (;;) {
    const page = `ORDER BY ALL LIMIT ${scope.pageRows} OFFSET ${skip}`;
    const { rows, truncated } = await scope.analytics.query(select(after, page), {
      process: scope.process,
      maxRows: scope.pageRows,
    });
    for (const row of rows) {
      const t = Number(row[0]);
      if (t === lastT) skip++;
      else {
        lastT = t;
        skip = 1;
      }
      yield row;
    }
    if (rows.length === 0 || (rows.length < scope.pageRows && !truncated)) return;
    after = `${timeColumn} >= ${double(lastT!)}`;
  }
}

/** A handler call, with the handler call that produced its message (when the trace holds it). */
export interface HandlerCallRow {
  readonly startT: number;
  readonly actor: string;
  readonly stream: string;
  readonly seq: number;
  readonly endT: number;
  readonly originT: number;
  readonly publishT: number;
  readonly parent: { readonly stream: string; readonly seq: number } | null;
  /** The producing call: its actor and extent; null for an ingress message or one not in the lake. */
  readonly producer: { readonly actor: string; readonly startT: number; readonly endT: number } | null;
}

/**
 * The handler calls of the scope, in start order, each joined with the call that produced its
 * message: one row per call, since a process's actors have unique names (the System refuses two
 * alike), so that an actor handles a message (stream, seq) once.
 */
export async function* handlerCalls(scope: TraceScope): AsyncGenerator<HandlerCallRow> {
  const rows = paged(
    scope,
    'start_t',
    (after, page) => `WITH page AS (
        SELECT start_t, actor, stream, seq, end_t, origin_t, publish_t FROM timings
        WHERE ${kept('start_t', scope.window, scope.cutoffNs)} AND ${CALL_TIMED} AND ${after} ${page})
      SELECT c.start_t, c.actor, c.stream, c.seq::DOUBLE, c.end_t, c.origin_t, c.publish_t,
        m.parent_stream, m.parent_seq::DOUBLE, p.actor, p.start_t, p.end_t
      FROM page c
      LEFT JOIN messages m ON m.stream = c.stream AND m.seq = c.seq
      LEFT JOIN timings p ON p.actor = m.actor AND p.stream = m.parent_stream AND p.seq = m.parent_seq
        AND ${timed('p.end_t')} AND ${timed('p.origin_t')}
      ORDER BY ALL`,
  );
  for await (const r of rows) {
    yield {
      startT: Number(r[0]),
      actor: String(r[1]),
      stream: String(r[2]),
      seq: Number(r[3]),
      endT: Number(r[4]),
      originT: Number(r[5]),
      publishT: Number(r[6]),
      parent: r[7] === null ? null : { stream: String(r[7]), seq: Number(r[8]) },
      producer: r[9] === null ? null : { actor: String(r[9]), startT: Number(r[10]), endT: Number(r[11]) },
    };
  }
}

/** A span of the scope with its thread and actor. */
export interface SpanRow {
  readonly beginNs: number;
  readonly actor: string | null;
  readonly thread: string;
  readonly spanId: number;
  readonly name: string;
  readonly depth: number;
  readonly endNs: number | null;
  readonly async: boolean;
  readonly closedByParent: boolean;
}

/** The spans of the scope, in begin order. */
export async function* spans(scope: TraceScope): AsyncGenerator<SpanRow> {
  const rows = paged(
    scope,
    'begin_ns',
    (after, page) =>
      `SELECT begin_ns, actor, thread, span_id, name, depth, end_ns, async, closed_by_parent FROM thread_spans
       WHERE ${kept('begin_ns', scope.window, scope.cutoffNs)} AND ${after} ${page}`,
  );
  for await (const r of rows) {
    yield {
      beginNs: Number(r[0]),
      actor: r[1] === null ? null : String(r[1]),
      thread: String(r[2]),
      spanId: Number(r[3]),
      name: String(r[4]),
      depth: Number(r[5]),
      // An end that is no number (a damaged recording) is drawn as no end.
      endNs: r[6] === null || !isTime(Number(r[6])) ? null : Number(r[6]),
      async: r[7] === true,
      closedByParent: r[8] === true,
    };
  }
}

/** A log entry of the scope with its thread and actor. */
export interface LogRow {
  readonly timeNs: number;
  readonly actor: string | null;
  readonly thread: string;
  readonly level: string;
  readonly target: string;
  readonly message: string;
  readonly properties: Readonly<Record<string, unknown>>;
}

/** The log entries of the scope, in time order. */
export async function* logEntries(scope: TraceScope): AsyncGenerator<LogRow> {
  const rows = paged(
    scope,
    'time_ns',
    (after, page) =>
      `SELECT time_ns, actor, thread, level, target, message, properties::VARCHAR FROM log_entries
       WHERE ${kept('time_ns', scope.window, scope.cutoffNs)} AND ${after} ${page}`,
  );
  for await (const r of rows) {
    yield {
      timeNs: Number(r[0]),
      actor: r[1] === null ? null : String(r[1]),
      thread: String(r[2]),
      level: String(r[3]),
      target: String(r[4] ?? ''),
      message: String(r[5] ?? ''),
      properties: parseObject(r[6]),
    };
  }
}

/** A measure of the scope with its thread and actor. */
export interface MeasureRow {
  readonly timeNs: number;
  readonly actor: string | null;
  readonly thread: string;
  readonly name: string;
  readonly unit: string;
  readonly value: number;
}

/** The measures of the scope, in time order. */
export async function* measures(scope: TraceScope): AsyncGenerator<MeasureRow> {
  const rows = paged(
    scope,
    'time_ns',
    (after, page) =>
      `SELECT time_ns, actor, thread, name, unit, value FROM measures
       WHERE ${kept('time_ns', scope.window, scope.cutoffNs)} AND ${after} ${page}`,
  );
  for await (const r of rows) {
    yield {
      timeNs: Number(r[0]),
      actor: r[1] === null ? null : String(r[1]),
      thread: String(r[2]),
      name: String(r[3]),
      unit: String(r[4] ?? ''),
      value: Number(r[5]),
    };
  }
}

/**
 * What was lost, per stream and consumer (`losses` rows with anything lost, poisoned or dropped):
 * by the persister (missing from the recording), or by an actor (lapped: handled by nobody there).
 */
export interface LossRow {
  readonly stream: string;
  readonly consumer: string;
  /** `persister` (missing from the recording), `actor` (handled by nobody there) or `observer`. */
  readonly countedBy: string;
  readonly lost: number;
  readonly poisoned: number;
  readonly dropped: number;
  /** Apart from `lost`: records neither in the lake nor counted lost in it (see the `losses` view). */
  readonly unrecorded: number;
}

/** The streams of the process that lost anything: a trace of them misses slices and arrows. */
export async function losses(analytics: AnalyticsQuestions, process: string): Promise<LossRow[]> {
  const ask = (unrecorded: string) =>
    allRows(
      analytics,
      { process },
      `SELECT stream, consumer, counted_by, lost::DOUBLE, poisoned::DOUBLE, dropped::DOUBLE, ${unrecorded} AS u FROM losses
       WHERE lost + poisoned + dropped + ${unrecorded} > 0 ORDER BY ALL`,
    );
  const rows = await withUnrecorded(ask);
  return rows.map(([stream, consumer, countedBy, lost, poisoned, dropped, unrecorded]) => ({
    stream: String(stream),
    consumer: String(consumer),
    countedBy: String(countedBy),
    lost: Number(lost),
    poisoned: Number(poisoned),
    dropped: Number(dropped),
    unrecorded: Number(unrecorded),
  }));
}

/** The process's start, in nanoseconds since the epoch. */
export async function processStartNs(analytics: AnalyticsQuestions, process: string): Promise<bigint> {
  const { rows } = await analytics.query('SELECT start_ns::VARCHAR FROM processes', { process, maxRows: 1 });
  const start = rows[0]?.[0] ?? '0';
  // The lake's own answer is always digits; a server's that is not (a proxy's, another program's)
  // is said, not a SyntaxError of BigInt's with its stack.
  if (typeof start !== 'string' || !/^-?\d{1,20}$/.test(start)) {
    throw new DorsalError(
      'DORSAL_REMOTE',
      `the process's start (start_ns) was answered as ${printable(JSON.stringify(start) ?? String(start)).slice(0, 80)}, not a whole number of ns: that is not what a dorsal serve answers`,
    );
  }
  return BigInt(start);
}

function parseObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'string') return {};
  try {
    const parsed = JSON.parse(value) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}
