/** Row helpers of the queue section: every ratio is value ÷ baseline, both from the same run. */
import type { BenchRow } from '../types.js';

export const GROUP = 'queue';

export function row(name: string, value: number, unit: string, note?: string): BenchRow {
  return note === undefined ? { group: GROUP, name, value, unit } : { group: GROUP, name, value, unit, note };
}

/** `r` compared with `baseline` (value ÷ baseline value). */
export function against(r: BenchRow, baseline: BenchRow): BenchRow {
  return { ...r, baseline: baseline.name, ratio: r.value / baseline.value };
}

/** `r` with a target and whether this run met it. */
export function target(r: BenchRow, text: string, met: boolean): BenchRow {
  return { ...r, target: text, met };
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The element of `items` whose `key` is the median (the lower middle for an even count). */
export function medianBy<T>(items: readonly T[], key: (item: T) => number): T {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[(sorted.length - 1) >> 1]!;
}
