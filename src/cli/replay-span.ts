import { type AnalyticsQuestions, BLOCK_SPAN_SQL } from '../telemetry/analytics/questions.js';

/**
 * The publish times a process's messages can have, in ns since its start: from the earliest
 * begin to the latest end of its blocks of records, as its rows in the lake's metadata say (see
 * `BLOCK_SPAN_SQL`). The persister stamps each block with its records' first and last times, so
 * every recorded time lies within; one outside it (as one that is not a number) is damaged, in
 * the block's payload. Played by it, a time a few days late made a replay at speed 1 wait days for
 * the next message, and a first time near 0 of a process started long after, as long for each.
 */
export interface TimeSpan {
  readonly lo: number;
  readonly hi: number;
}

/** Every finite time: a process whose blocks say no time. */
export const ANY_TIME_SPAN: TimeSpan = { lo: Number.NEGATIVE_INFINITY, hi: Number.POSITIVE_INFINITY };

/** The span of a process's times (see `TimeSpan`, `BLOCK_SPAN_SQL`). */
export async function recordedSpan(analytics: AnalyticsQuestions, processId: string): Promise<TimeSpan> {
  const { rows } = await analytics.query(BLOCK_SPAN_SQL, { process: processId, maxRows: 1 });
  const [lo, hi] = [rows[0]?.[0], rows[0]?.[1]];
  if (typeof lo !== 'number' || typeof hi !== 'number' || !(lo <= hi)) return ANY_TIME_SPAN;
  return { lo, hi };
}

/** SQL for a double, from its shortest text (exact; NaN and ±Infinity too), not a DECIMAL's rounding. */
export function double(t: number): string {
  return `'${t}'::DOUBLE`;
}

/** SQL: whether `column` is a time of `span` (finite, within it); false for NULL. */
export function timedSql(span: TimeSpan, column = 'publish_t'): string {
  return `coalesce(isfinite(${column}) AND ${column} BETWEEN ${double(span.lo)} AND ${double(span.hi)}, false)`;
}

/** Whether `t` is a time of `span` (finite, within it). */
export function isTimed(t: number, span: TimeSpan): boolean {
  return Number.isFinite(t) && t >= span.lo && t <= span.hi;
}
