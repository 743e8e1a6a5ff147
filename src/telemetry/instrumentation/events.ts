import { defineMessage, type MessageOfLayout } from '../../queues/index.js';

/**
 * The fixed-size events of a thread's instrumentation buffers, one layout per kind, and the
 * entry that carries an interned string in a block's dependencies. A reader decodes them from
 * their descriptions (`Layout.describe()`) alone; these constants say what the numbers mean.
 *
 * Every time is in nanoseconds since the buffer's clock base (`clockBaseNs` of its descriptor,
 * on the spine clock's line). Every `u32` named after a string (target, template, key, name,
 * unit) is an id in the thread's string table; id 0 is always the empty string.
 *
 * One layout per kind, not one for all: span events are the most frequent (two per span) and
 * need 32 bytes; a log with its properties needs 184. Each kind pays only for its own fields.
 */

/** A log entry: level, target, message template, the span it was logged in, up to 4 properties. */
export const LogEvent = defineMessage('dorsal.LogEvent', {
  t: 'f64',
  /** Id of the innermost span open on the thread when logged; 0 outside any span. */
  span: 'f64',
  value0: 'f64',
  value1: 'f64',
  value2: 'f64',
  value3: 'f64',
  target: 'u32',
  template: 'u32',
  key0: 'u32',
  key1: 'u32',
  key2: 'u32',
  key3: 'u32',
  /** Inline string values: property i of type STRING holds its text in `text<value i>`. */
  text0: { type: 'string', bytes: 48 },
  text1: { type: 'string', bytes: 48 },
  level: 'u8',
  /** LogFlags. */
  flags: 'u8',
  /** PropertyType of property i; NONE for an unused slot. */
  type0: 'u8',
  type1: 'u8',
  type2: 'u8',
  type3: 'u8',
});
export type LogEvent = MessageOfLayout<typeof LogEvent>;

/** A measure: a float or integer value with a name and a unit. */
export const MetricEvent = defineMessage('dorsal.MetricEvent', {
  t: 'f64',
  /** A float, or an integer (exact up to 2^53) for kind INTEGER. */
  value: 'f64',
  /** Id of the innermost span open on the thread when measured; 0 outside any span. */
  span: 'f64',
  name: 'u32',
  unit: 'u32',
  /** MetricKind. */
  kind: 'u8',
});
export type MetricEvent = MessageOfLayout<typeof MetricEvent>;

/** One end of a span: its begin or its end. */
export const SpanEvent = defineMessage('dorsal.SpanEvent', {
  t: 'f64',
  /** Unique in the thread's buffer (and across restarts of the thread on the same buffer); from 1. */
  id: 'f64',
  /** The span that was open around this one when it began; 0 for none. */
  parent: 'f64',
  name: 'u32',
  /** Spans open around this one when it began (0: a top-level span). */
  depth: 'u16',
  /** SpanKind. */
  kind: 'u8',
  /** SpanFlags. */
  flags: 'u8',
});
export type SpanEvent = MessageOfLayout<typeof SpanEvent>;

/** Longest interned string, in UTF-8 bytes. */
export const MAX_STRING_BYTES = 250;

/** One interned string, as a block ships it among its dependencies. */
export const StringEntry = defineMessage('dorsal.StringEntry', {
  id: 'u32',
  text: { type: 'string', bytes: MAX_STRING_BYTES },
});
export type StringEntry = MessageOfLayout<typeof StringEntry>;

/** Properties a log event holds, and inline string values among them. */
export const MAX_PROPERTIES = 4;
export const MAX_TEXT_PROPERTIES = 2;
/** Longest inline string value, in UTF-8 bytes: a longer one is cut (flag CUT). */
export const MAX_TEXT_BYTES = 48;

/** `type<i>` of a log event. */
export const PropertyType = {
  NONE: 0,
  /** `value<i>` is the number. */
  NUMBER: 1,
  /** `value<i>` is 1 (true) or 0 (false). */
  BOOLEAN: 2,
  /** `value<i>` is 0 or 1: the text is in `text0` or `text1`. */
  STRING: 3,
} as const;

/** Bits of a log event's `flags`. */
export const LogFlags = {
  /** Some properties were left out: more than 4, more than 2 strings, or a value of another type. */
  PROPERTIES_LEFT_OUT: 1,
  /** A string value was cut to MAX_TEXT_BYTES (at a character boundary). */
  TEXT_CUT: 2,
} as const;

/** A metric event's `kind`. */
export const MetricKind = { FLOAT: 1, INTEGER: 2 } as const;

/** A span event's `kind`. Thread spans nest (a stack per thread); async spans may overlap. */
export const SpanKind = { BEGIN: 1, END: 2, ASYNC_BEGIN: 3, ASYNC_END: 4 } as const;

/** Bits of a span event's `flags`. */
export const SpanFlags = {
  /** An END the thread wrote for a span its code never ended: an outer span ended first. */
  CLOSED_BY_PARENT: 1,
} as const;

/** Fields of each event that hold string ids: what a block's dependencies must resolve. */
export const STRING_ID_FIELDS = {
  logs: ['target', 'template', 'key0', 'key1', 'key2', 'key3'],
  metrics: ['name', 'unit'],
  spans: ['name'],
} as const;
