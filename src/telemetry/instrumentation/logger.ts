import { onRebind } from './binding.js';
import { processContext } from './context.js';
import { type LevelSetting, LogLevel, type LogLevelName, levelName, thresholdOf } from './levels.js';
import { type LogLine, prepareLine } from './log-line.js';
import { type Properties, writeLog } from './log-writer.js';

/**
 * The logger of one target in this thread. Every level call first reads the target's threshold
 * from the process's level table and returns at once when the level is filtered out: one plain
 * load from shared memory and a compare, inlined at the call site.
 *
 * The load is plain, not `Atomics.load`: it races with `setLevel` in another thread, which the
 * language allows (an aligned Int32 read is never torn; it returns some value stored there) and
 * which only delays when a new threshold is seen (the language even lets a compiler reuse one
 * load across a loop that touches no other shared memory). An SC load would cost ~6 ns per call.
 *
 * @example
 * const log = logger('strategy');
 * log.info('order sent', { qty: 10, side: 'buy' });
 * if (log.enabled('debug')) log.debug('book', { depth: book.depth() });
 */
export class Logger {
  readonly target: string;
  /** @internal the process's thresholds and this target's slot in them. */
  thresholds: Int32Array;
  /** @internal */
  slot: number;
  /** @internal the target's id in this thread's string table (-1: not interned yet). */
  targetId = -1;
  /** @internal the last template logged and its id: a call site that repeats it skips the lookup. */
  lastTemplate = '';
  /** @internal the empty string is id 0 in every table. */
  lastTemplateId = 0;

  /** @internal use `logger(target)`. */
  constructor(target: string) {
    this.target = target;
    const levels = processContext().levels;
    this.thresholds = levels.thresholds;
    this.slot = levels.slotOf(target);
  }

  fatal(template: string, properties?: Properties): void {
    if (this.thresholds[this.slot]! < 1) return;
    writeLog(this, 1, template, properties);
  }

  error(template: string, properties?: Properties): void {
    if (this.thresholds[this.slot]! < 2) return;
    writeLog(this, 2, template, properties);
  }

  warn(template: string, properties?: Properties): void {
    if (this.thresholds[this.slot]! < 3) return;
    writeLog(this, 3, template, properties);
  }

  info(template: string, properties?: Properties): void {
    if (this.thresholds[this.slot]! < 4) return;
    writeLog(this, 4, template, properties);
  }

  debug(template: string, properties?: Properties): void {
    if (this.thresholds[this.slot]! < 5) return;
    writeLog(this, 5, template, properties);
  }

  trace(template: string, properties?: Properties): void {
    if (this.thresholds[this.slot]! < 6) return;
    writeLog(this, 6, template, properties);
  }

  /**
   * A log line prepared once, for a hot path: its level, template and property keys are fixed
   * here, and a call passes only the values, one per key, in order. It records the entry
   * `logger[level](template, { [key]: value, … })` records, its properties in the keys' order
   * (an object's `for…in` puts integer-like keys first), without reading an object: ~20 %
   * cheaper with two properties, and a call site allocates nothing, where an object literal is
   * allocated at every call. Filtered out, a call costs a load and a compare, as a level
   * call does. Refused at once (`ConfigError`): an unknown level, more than 4 keys, a key twice,
   * a template or key over 250 bytes.
   *
   * @example
   * const orderSent = log.line('info', 'order sent', ['qty', 'side']);
   * orderSent(10, 'buy');
   */
  line<const K extends readonly string[]>(level: LogLevelName, template: string, keys: K): LogLine<K> {
    return prepareLine(this, level, template, keys);
  }

  /** Whether `level` is recorded for this target now: guard work done only to build properties. */
  enabled(level: LogLevelName): boolean {
    return this.thresholds[this.slot]! >= LogLevel[level];
  }

  /** @internal points the logger at this thread's current level table and string table. */
  rebind(): void {
    const levels = processContext().levels;
    this.thresholds = levels.thresholds;
    this.slot = levels.slotOf(this.target);
    this.targetId = -1;
    this.lastTemplate = '';
    this.lastTemplateId = 0;
  }
}

/** This thread's loggers, one per target. */
const loggers = new Map<string, Logger>();
onRebind(() => {
  for (const logger of loggers.values()) logger.rebind();
});

/**
 * The logger of `target` in this thread (the same object for the same target). Keep it in a
 * constant: a call on it that is filtered out costs a load and a compare.
 */
export function logger(target: string): Logger {
  let found = loggers.get(target);
  if (found === undefined) {
    found = new Logger(String(target));
    loggers.set(target, found);
  }
  return found;
}

/** Levels by target, for a one-off call: `log.info('strategy', 'order sent', { qty: 10 })`. */
export interface TargetLog {
  fatal(target: string, template: string, properties?: Properties): void;
  error(target: string, template: string, properties?: Properties): void;
  warn(target: string, template: string, properties?: Properties): void;
  info(target: string, template: string, properties?: Properties): void;
  debug(target: string, template: string, properties?: Properties): void;
  trace(target: string, template: string, properties?: Properties): void;
}

/**
 * Logging by target name: each call looks the target's logger up (a Map lookup, ~10 ns more
 * than a call on `logger(target)`).
 */
export const log: TargetLog = {
  fatal: (target, template, properties) => logger(target).fatal(template, properties),
  error: (target, template, properties) => logger(target).error(template, properties),
  warn: (target, template, properties) => logger(target).warn(template, properties),
  info: (target, template, properties) => logger(target).info(template, properties),
  debug: (target, template, properties) => logger(target).debug(template, properties),
  trace: (target, template, properties) => logger(target).trace(template, properties),
};

/**
 * Sets the level up to which `target` is recorded (`'*'`: every target not set by name), in
 * every thread whose buffers share this thread's level table (the threads of a process whose
 * buffers came from `createThreadBuffers`). The default is `info`.
 *
 * @example
 * setLevel('strategy', 'debug');
 * setLevel('*', 'warn');
 * setLevel('noisy', 'off');
 */
export function setLevel(target: string, level: LevelSetting): void {
  processContext().levels.set(String(target), thresholdOf(level));
}

/** The level up to which `target` is recorded now (`'*'`: the default). */
export function levelOf(target: string): LevelSetting {
  return levelName(processContext().levels.threshold(String(target)));
}
