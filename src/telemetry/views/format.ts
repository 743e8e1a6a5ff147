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

/** A duration in nanoseconds, in the unit that reads best: `830 ns`, `12.4 µs`, `3.07 ms`, `1.20 s`. */
export function duration(ns: number): string {
  if (!Number.isFinite(ns)) return '—';
  const abs = Math.abs(ns);
  if (abs < 1_000) return `${Math.round(ns)} ns`;
  if (abs < 1_000_000) return `${(ns / 1_000).toPrecision(3)} µs`;
  if (abs < 1_000_000_000) return `${(ns / 1_000_000).toPrecision(3)} ms`;
  return `${(ns / 1_000_000_000).toPrecision(3)} s`;
}

/** A count with thousands separated: `1,234,567`. */
export function count(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
}

/** A rate or a measure, short: `950`, `12.3k`, `4.56M`. */
export function short(n: number): string {
  if (!Number.isFinite(n)) return '—';
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toPrecision(3)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toPrecision(3)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toPrecision(3)}k`;
  if (abs >= 100 || Number.isInteger(n)) return String(Math.round(n));
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
