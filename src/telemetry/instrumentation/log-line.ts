import { ConfigError } from '../../errors.js';
import { utf8Length } from '../../queues/codec.js';
import { threadWriter } from './binding.js';
import { LogFlags, MAX_PROPERTIES, MAX_STRING_BYTES, MAX_TEXT_BYTES, PropertyType } from './events.js';
import { LogLevel, type LogLevelName } from './levels.js';
import { LEVEL, type PropertyValue, SPAN, T, TARGET, TEMPLATE } from './log-writer.js';
import type { Logger } from './logger.js';
import { encodeText, storeFields, storeTexts } from './properties.js';
import type { ThreadWriter } from './thread-writer.js';

const { NONE, NUMBER, BOOLEAN, STRING } = PropertyType;

/** The values of a log line's properties, one per key, in the keys' order. */
export type LogLineValues<K extends readonly string[]> = { -readonly [I in keyof K]: PropertyValue };

/**
 * A log line prepared once (see `Logger.line`): a call records one entry with these values as
 * its properties, or nothing when its level is filtered out.
 */
export type LogLine<K extends readonly string[]> = (...values: LogLineValues<K>) => void;

/**
 * What a prepared line fixed where it was made, and its strings' ids in the table of the thread
 * writer it last wrote through (known by its `generation`, not held: a closed writer's buffers
 * are not kept alive by a line): a line is made once and called on any thread; a thread that
 * binds other buffers has another table, and the line interns its strings there on its next call.
 */
class PreparedLine {
  readonly logger: Logger;
  readonly level: number;
  readonly template: string;
  readonly keys: readonly string[];
  readonly count: number;
  /** The `generation` of the writer the ids below are of; -1: none yet. */
  generation = -1;
  /** Bit i: key i found no room in the table (an entry that keeps its value is dropped). */
  unbound = 0;
  targetId = 0;
  templateId = 0;
  key0 = 0;
  key1 = 0;
  key2 = 0;
  key3 = 0;
  /** The UTF-8 bytes of an entry's texts (the first from 0, the second from MAX_TEXT_BYTES), encoded before the claim. */
  readonly textBytes = Buffer.alloc(2 * MAX_TEXT_BYTES);

  constructor(logger: Logger, level: number, template: string, keys: readonly string[]) {
    this.logger = logger;
    this.level = level;
    this.template = template;
    this.keys = keys;
    this.count = keys.length;
  }

  /**
   * Interns the line's strings in `writer`'s table; false if the target or the template could not
   * be (the table is full). A key that finds no room is marked `unbound`: as for an object's
   * property, only an entry that keeps a value of it is dropped.
   */
  bind(writer: ThreadWriter): boolean {
    const strings = writer.strings;
    const targetId = strings.intern(this.logger.target);
    const templateId = strings.intern(this.template);
    if (targetId < 0 || templateId < 0) return false;
    const keys = this.keys.map((key) => strings.intern(key));
    this.unbound = keys.reduce((bits, id, i) => (id < 0 ? bits | (1 << i) : bits), 0);
    [this.key0 = 0, this.key1 = 0, this.key2 = 0, this.key3 = 0] = keys.map((id) => Math.max(id, 0));
    this.targetId = targetId;
    this.templateId = templateId;
    this.generation = writer.generation;
    return true;
  }

  /** Encodes `text` as the entry's text number `index`; its flags (TEXT_CUT or 0) and byte length. */
  encode(index: number, text: string): number {
    const length = encodeText(this.textBytes, index === 0 ? 0 : MAX_TEXT_BYTES, text);
    if (index === 0) this.length0 = length < 0 ? ~length : length;
    else this.length1 = length < 0 ? ~length : length;
    return length < 0 ? LogFlags.TEXT_CUT : 0;
  }

  length0 = 0;
  length1 = 0;
  /** What `resolveLine` made of a call's values: each property's type and number, the entry's flags and texts. */
  type0: number = NONE;
  type1: number = NONE;
  type2: number = NONE;
  type3: number = NONE;
  value0 = 0;
  value1 = 0;
  value2 = 0;
  value3 = 0;
  flags = 0;
  texts = 0;
}

/** A value's property type: what the slot's `type<i>` says, before the texts are counted. */
function typeOf(value: unknown): number {
  if (typeof value === 'number') return NUMBER;
  if (typeof value === 'boolean') return BOOLEAN;
  if (typeof value === 'string') return STRING;
  return NONE;
}

/** What the slot's `value<i>` holds for a value of `type` (a text's index is set by the caller). */
function numberOf(value: unknown, type: number): number {
  if (type === NUMBER) return value as number;
  if (type === BOOLEAN) return value === true ? 1 : 0;
  return 0;
}

/**
 * Types `line`'s values `v0`…`v3` (the first `line.count` of them) into its fields, texts encoded,
 * before the claim. A text past the entry's two, or a value of another type (undefined, an
 * object), is left out and the entry says so, as `writeLog` does; its key is left out too. False:
 * a value is kept whose key found no room in the table (drop the entry, as `writeLog` does).
 */
function resolveLine(line: PreparedLine, v0: unknown, v1: unknown, v2: unknown, v3: unknown): boolean {
  const count = line.count;
  let flags = 0;
  let texts = 0;
  let t0 = count > 0 ? typeOf(v0) : NONE;
  if (t0 === STRING) {
    if (texts < 2) flags |= line.encode(texts++, v0 as string);
    else t0 = NONE;
  }
  let t1 = count > 1 ? typeOf(v1) : NONE;
  if (t1 === STRING) {
    if (texts < 2) flags |= line.encode(texts++, v1 as string);
    else t1 = NONE;
  }
  let t2 = count > 2 ? typeOf(v2) : NONE;
  if (t2 === STRING) {
    if (texts < 2) flags |= line.encode(texts++, v2 as string);
    else t2 = NONE;
  }
  let t3 = count > 3 ? typeOf(v3) : NONE;
  if (t3 === STRING) {
    if (texts < 2) flags |= line.encode(texts++, v3 as string);
    else t3 = NONE;
  }
  const unbound = line.unbound;
  if (
    unbound !== 0 &&
    (((unbound & 1) !== 0 && t0 !== NONE) ||
      ((unbound & 2) !== 0 && t1 !== NONE) ||
      ((unbound & 4) !== 0 && t2 !== NONE) ||
      ((unbound & 8) !== 0 && t3 !== NONE))
  )
    return false;
  if (
    (t0 === NONE && count > 0) ||
    (t1 === NONE && count > 1) ||
    (t2 === NONE && count > 2) ||
    (t3 === NONE && count > 3)
  )
    flags |= LogFlags.PROPERTIES_LEFT_OUT;
  line.type0 = t0;
  line.type1 = t1;
  line.type2 = t2;
  line.type3 = t3;
  // A text's value is its index among the entry's texts: the first text is 0, the second 1.
  line.value0 = t0 === STRING ? 0 : numberOf(v0, t0);
  line.value1 = t1 === STRING ? (t0 === STRING ? 1 : 0) : numberOf(v1, t1);
  line.value2 = t2 === STRING ? (t0 === STRING || t1 === STRING ? 1 : 0) : numberOf(v2, t2);
  line.value3 = t3 === STRING ? texts - 1 : numberOf(v3, t3);
  line.flags = flags;
  line.texts = texts;
  return true;
}

/**
 * Writes the entry `resolveLine` typed into `line`'s fields through `writer`: the same slot as
 * `writeLog`'s, its keys interned once. Kept small, so that V8 inlines the claim and the commit.
 */
function writeLine(line: PreparedLine, writer: ThreadWriter): void {
  const views = writer.logViews;
  const logs = writer.logs;
  writer.properties.written(logs.sequence);
  const texts = line.texts;
  // In place: nothing between the claim and the commit can throw.
  const at = logs.claim();
  views.f64[(at + T) >> 3] = writer.clock.now();
  views.f64[(at + SPAN) >> 3] = writer.currentSpan();
  views.u32[(at + TARGET) >> 2] = line.targetId;
  views.u32[(at + TEMPLATE) >> 2] = line.templateId;
  views.u8[at + LEVEL] = line.level;
  const { type0, type1, type2, type3 } = line;
  storeFields(
    views,
    at,
    line.value0,
    line.value1,
    line.value2,
    line.value3,
    type0 === NONE ? 0 : line.key0,
    type1 === NONE ? 0 : line.key1,
    type2 === NONE ? 0 : line.key2,
    type3 === NONE ? 0 : line.key3,
    type0,
    type1,
    type2,
    type3,
    line.flags,
  );
  storeTexts(views, at, line.textBytes, texts > 0 ? line.length0 : 0, texts > 1 ? line.length1 : 0);
  logs.commit();
}

/**
 * Makes `logger`'s prepared line of `level`, `template` and `keys` (see `Logger.line`): refuses
 * at once what every call would drop (an unknown level, more than 4 keys, a key twice, a string
 * longer than the string table takes).
 */
export function prepareLine<K extends readonly string[]>(
  logger: Logger,
  level: LogLevelName,
  template: string,
  keys: K,
): LogLine<K> {
  const value = Object.hasOwn(LogLevel, level) ? LogLevel[level] : undefined;
  if (value === undefined)
    throw new ConfigError(
      `unknown log level '${String(level)}' (known: ${Object.keys(LogLevel).join(', ')})`,
    );
  if (typeof template !== 'string')
    throw new ConfigError(`a log line's template must be a string, got ${typeof template}`);
  if (!Array.isArray(keys)) throw new ConfigError("a log line's keys must be an array of strings");
  const names: readonly unknown[] = keys;
  if (names.length > MAX_PROPERTIES)
    throw new ConfigError(`a log line takes at most ${MAX_PROPERTIES} keys, got ${names.length}`);
  for (const [i, key] of names.entries()) {
    if (typeof key !== 'string' || key === '')
      throw new ConfigError(
        `a log line's key ${i} must be a non-empty string, got ${typeof key === 'string' ? "''" : typeof key}`,
      );
    if (names.indexOf(key) !== i) throw new ConfigError(`a log line's key '${key}' is given twice`);
  }
  const strings = [template, ...(names as readonly string[])];
  for (const text of strings) {
    if (utf8Length(text) > MAX_STRING_BYTES)
      throw new ConfigError(
        `a log line's template and keys take at most ${MAX_STRING_BYTES} UTF-8 bytes each: '${text.slice(0, 40)}…' is longer`,
      );
  }
  const line = new PreparedLine(logger, value, template, strings.slice(1));
  const write = (v0?: unknown, v1?: unknown, v2?: unknown, v3?: unknown): void => {
    if (logger.thresholds[logger.slot]! < value) return;
    const writer = threadWriter();
    if ((line.generation !== writer.generation && !line.bind(writer)) || !resolveLine(line, v0, v1, v2, v3)) {
      writer.strings.countDroppedForString('logs');
      return;
    }
    writeLine(line, writer);
  };
  return write as unknown as LogLine<K>;
}
