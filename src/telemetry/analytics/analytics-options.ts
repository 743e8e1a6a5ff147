import { ConfigError } from '../../errors.js';
import { MAX_TIMER_MS } from '../../timer-ms.js';
import type { AnalyticsOptions } from './analytics.js';

/** The bounds of each numeric option of `Analytics.open`, and whether it must be whole. */
const BOUNDS = {
  maxRows: { min: 1, max: 10_000_000, whole: true },
  // A client reads an answer as one JavaScript string, which holds 512 Mi characters at most.
  maxBytes: { min: 1024, max: 256 * 1024 * 1024, whole: true },
  timeoutMs: { min: 1, max: 3_600_000, whole: true },
  etlThreads: { min: 0, max: 64, whole: true },
  freshnessMs: { min: 0, max: 3_600_000, whole: false },
  unreadableRetryMs: { min: 0, max: MAX_TIMER_MS, whole: false },
  goneProcessSweepMs: { min: 0, max: MAX_TIMER_MS, whole: false },
} as const satisfies Partial<Record<keyof AnalyticsOptions, { min: number; max: number; whole: boolean }>>;

/**
 * Refuses an option of `Analytics.open` whose value it cannot use, with a `ConfigError` naming it:
 * a cache directory that is not a path, a number out of its range (or not a number: NaN would
 * turn every comparison with it false, a negative time-out make every query time out).
 */
export function checkAnalyticsOptions(options: AnalyticsOptions): void {
  if (typeof options.cacheDir !== 'string' || options.cacheDir.length === 0) {
    throw new ConfigError(
      `analytics option 'cacheDir' must be a directory's path, got ${String(options.cacheDir)}`,
    );
  }
  for (const [name, { min, max, whole }] of Object.entries(BOUNDS)) {
    const value: unknown = options[name as keyof typeof BOUNDS];
    if (value === undefined) continue;
    if (
      typeof value !== 'number' ||
      Number.isNaN(value) ||
      value < min ||
      value > max ||
      (whole && !Number.isInteger(value))
    ) {
      throw new ConfigError(
        `analytics option '${name}' must be ${whole ? 'an integer' : 'a number'} from ${min} to ${max}, got ${String(value)}`,
      );
    }
  }
}
