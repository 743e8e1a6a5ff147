/**
 * The longest a Node timer waits as given, in ms (2^31 - 1, about 24.8 days): Node fires a
 * longer one (Infinity too) after 1 ms, with a warning.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What `isTimerMs` takes, as an error message says it. */
export const TIMER_MS_RANGE = `an integer from 1 to ${MAX_TIMER_MS} (ms)`;

/**
 * Whether `ms` is a time limit a timer can wait by: a whole number of milliseconds from 1 to
 * `MAX_TIMER_MS`. NaN would turn every comparison with it false, 0 or less stop everything at
 * once, and past the maximum the timer would fire at once.
 */
export function isTimerMs(ms: unknown): ms is number {
  return typeof ms === 'number' && Number.isSafeInteger(ms) && ms >= 1 && ms <= MAX_TIMER_MS;
}
