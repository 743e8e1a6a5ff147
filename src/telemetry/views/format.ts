/** Text for the views: HTML escaping, durations, counts, rates. */

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text safe inside HTML or SVG, in an element or a quoted attribute. */
export function esc(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/**
 * A duration in nanoseconds, in the unit that reads best: `830 ns`, `12.4 µs`, `3.07 ms`, `1.20 s`,
 * `1,500 s`. Rounded first, then the unit picked: 999.7 µs is `1.00 ms`, not `1.00e+3 µs`.
 *
 * Self-contained (no helper, no import): the page's script runs its source too (`page-assets.ts`).
 */
export function duration(ns: number): string {
  if (!Number.isFinite(ns)) return '—';
  if (Math.abs(Math.round(ns)) < 1_000) return `${Math.round(ns)} ns`;
  for (const [scale, unit] of [
    [1e3, 'µs'],
    [1e6, 'ms'],
    [1e9, 's'],
  ] as const) {
    const shown = (ns / scale).toPrecision(3);
    if (Math.abs(Number(shown)) < 1_000) return `${shown} ${unit}`;
  }
  // Past 999.5 s, whole seconds (toPrecision would write them as 1.50e+3).
  return `${Math.round(ns / 1e9).toLocaleString('en-US')} s`;
}

/** Seconds, as an axis reads them: `0.00 s`, `2.50 s`, `1,500 s` (rounded first, as `duration`). */
export function seconds(s: number): string {
  if (!Number.isFinite(s)) return '—';
  const shown = s.toPrecision(3);
  return Math.abs(Number(shown)) < 1_000 ? `${shown} s` : `${Math.round(s).toLocaleString('en-US')} s`;
}

/** A count with thousands separated: `1,234,567`. */
export function count(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
}

/**
 * A rate or a measure, short: `950`, `12.3k`, `4.56M`. Rounded first, then the unit picked:
 * 999,950 is `1.00M`, not `1.00e+3k`.
 */
export function short(n: number): string {
  if (!Number.isFinite(n)) return '—';
  if (Math.abs(Math.round(n)) >= 1e4) {
    for (const [scale, unit] of [
      [1e3, 'k'],
      [1e6, 'M'],
      [1e9, 'G'],
    ] as const) {
      const shown = (n / scale).toPrecision(3);
      if (Math.abs(Number(shown)) < 1_000) return `${shown}${unit}`;
    }
    return `${Math.round(n / 1e9).toLocaleString('en-US')}G`;
  }
  if (Math.abs(n) >= 100 || Number.isInteger(n)) return String(Math.round(n));
  return n.toPrecision(3);
}

/** Colours of series, in order; the same key gets the same colour on every chart of a page. */
export const PALETTE = [
  '#2f6fbd',
  '#d9822b',
  '#3a9a5b',
  '#b8434b',
  '#7a5cb0',
  '#8c6d3f',
  '#c25d9e',
  '#5f7a8a',
];

/** The colour of the `i`-th series. */
export function colour(i: number): string {
  return PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length] ?? '#555';
}
