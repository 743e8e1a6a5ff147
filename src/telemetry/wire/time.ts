/**
 * RFC 3339 times with nanoseconds. The lake stores every time normalized to UTC with exactly nine
 * fraction digits (`2025-01-02T03:04:05.123456789Z`): then text order is time order, and both
 * SQLite and PostgreSQL can range-scan the column without a date type of their own.
 */

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;
/** The first and last instants a time may be: the years 1678 to 2261 (see `rfc3339ToEpochNs`). */
export const MIN_EPOCH_NS = BigInt(Date.UTC(1678, 0, 1)) * NS_PER_MS;
export const MAX_EPOCH_NS = BigInt(Date.UTC(2262, 0, 1)) * NS_PER_MS - 1n;

/**
 * Parses an RFC 3339 time and returns nanoseconds since the Unix epoch, or `undefined` when the
 * text is not a valid time (bad calendar date, hour 24, missing offset) or is not in the years
 * 1678 to 2261 (`MIN_EPOCH_NS`, `MAX_EPOCH_NS`): the analytics' times are 64-bit nanoseconds
 * since the epoch (DuckDB's BIGINT and TIMESTAMP_NS, which hold a little more at each end, though
 * not every operation does), and one time past them failed every query over the lake.
 *
 * @example rfc3339ToEpochNs('1970-01-01T00:00:01.5Z') // 1_500_000_000n
 */
export function rfc3339ToEpochNs(text: string): bigint | undefined {
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  // A day that does not exist (Feb 30) rolls over into the next month: reject it.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return undefined;
  }
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const fraction = BigInt((m[7] ?? '').padEnd(9, '0'));
  const ns = BigInt(date.getTime() - offsetMinutes * 60_000) * NS_PER_MS + fraction;
  if (ns < MIN_EPOCH_NS || ns > MAX_EPOCH_NS) return undefined;
  return ns;
}

/**
 * Formats nanoseconds since the Unix epoch as RFC 3339 in UTC with nine fraction digits.
 *
 * @example formatRfc3339Ns(1_500_000_000n) // '1970-01-01T00:00:01.500000000Z'
 */
export function formatRfc3339Ns(epochNs: bigint): string {
  let seconds = epochNs / NS_PER_S;
  let fraction = epochNs % NS_PER_S;
  if (fraction < 0n) {
    fraction += NS_PER_S;
    seconds -= 1n;
  }
  const iso = new Date(Number(seconds) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  return `${iso.slice(0, 19)}.${fraction.toString().padStart(9, '0')}Z`;
}

/** Already normalized: UTC, nine fraction digits. */
const NORMALIZED = /^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{9}Z$/;
/** The date part (`YYYY-MM-DD`) of the last time normalized the long way: a valid day. */
let lastValidDay = '';

/** Normalizes an RFC 3339 time to UTC with nine fraction digits, or `undefined` if invalid. */
export function normalizeRfc3339(text: string): string | undefined {
  // Fast path, for what dorsal's sinks send: a normalized time on a day already validated (the
  // hour, minute and second ranges are in the pattern). ~20× cheaper than parsing.
  if (lastValidDay !== '' && text.startsWith(lastValidDay) && NORMALIZED.test(text)) return text;
  const ns = rfc3339ToEpochNs(text);
  if (ns === undefined) return undefined;
  const normalized = formatRfc3339Ns(ns);
  const day = normalized.slice(0, 10);
  // Every day from 1678 to 2261 is whole within the range: no time of it lies past.
  lastValidDay = day;
  return normalized;
}

let lastNowMs = Number.NaN;
let lastNow = '';

/** The current wall-clock time as RFC 3339 with nine fraction digits (millisecond resolution). */
export function nowRfc3339Ns(): string {
  const ms = Date.now();
  if (ms !== lastNowMs) {
    lastNow = formatRfc3339Ns(BigInt(ms) * NS_PER_MS);
    lastNowMs = ms;
  }
  return lastNow;
}
