import { ConfigError } from '../../errors.js';

/**
 * Log levels, numbered as micromegas numbers them (1 fatal … 6 trace): a level is recorded when
 * its number is at most the target's threshold. Threshold 0 (`off`) records nothing.
 */
export const LogLevel = {
  fatal: 1,
  error: 2,
  warn: 3,
  info: 4,
  debug: 5,
  trace: 6,
} as const;

/** A level's name. */
export type LogLevelName = keyof typeof LogLevel;
/** A level's number, as stored in an event's `level` field. */
export type LogLevelValue = (typeof LogLevel)[LogLevelName];
/** What a target's threshold can be set to: a level, or `off`. */
export type LevelSetting = LogLevelName | 'off';

/** The threshold of every target that was given none: info, as most loggers start. */
export const DEFAULT_THRESHOLD: number = LogLevel.info;

const NAMES: readonly string[] = ['off', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/** The threshold number of a setting; throws a `ConfigError` naming the known ones. */
export function thresholdOf(setting: LevelSetting): number {
  const index = NAMES.indexOf(setting);
  if (index < 0) {
    throw new ConfigError(`unknown log level '${String(setting)}' (known: ${NAMES.join(', ')})`);
  }
  return index;
}

/** The name of a threshold number (`off` … `trace`), for reading events and settings back. */
export function levelName(threshold: number): LevelSetting {
  return (NAMES[threshold] ?? 'off') as LevelSetting;
}
