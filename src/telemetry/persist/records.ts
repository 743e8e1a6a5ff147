import { defineMessage, type LayoutDescription, type MessageOfLayout } from '../../queues/index.js';

/**
 * What the persister writes into blocks, and how a lake stream says so, so that any reader can
 * decode a block without dorsal's code.
 *
 * Objects. A block's objects are records of one fixed size: the record's exact sequence in its
 * queue (`RecordHeader`, f64), then the slot's bytes as the queue holds them: for a spine stream
 * (tag `messages`) the tracking envelope then the message, for a timing queue (tag `timings`)
 * the timing record, for a thread's instrumentation queue (tag `log`, `metrics` or `spans`) the
 * event (`dorsal.LogEvent`, `dorsal.MetricEvent`, `dorsal.SpanEvent`). The stream's
 * `objectsLayouts` describe the parts in that order, and its properties say the record size
 * (`record_bytes`), where each part starts (`layout_offsets`) and which field is the record's
 * time (`time_field`).
 *
 * Dependencies. A block's dependencies are regions of records laid end to end: the stream's
 * `dependenciesLayouts` name each region's layout, and its property `dependencies_offsets` says
 * where each region starts (comma separated); a region runs to the next one's start, the last to
 * the end of the dependencies, and holds (its length ÷ its layout's size) records.
 * - Every stream: region 0 is one `BlockCoverage` at byte 0 (`dependencies_offsets` = `0`):
 *   which sequences of the source the block covers and how many the persister had lost by its
 *   end, so that for every source the records in the lake plus the last block's `lost_total`
 *   equal what was published since the persister attached.
 * - Instrumentation streams (`log`, `metrics`, `spans`): `dependenciesLayouts` =
 *   [BlockCoverage, SourceDrops, dorsal.StringEntry], `dependencies_offsets` = `0,32,48`: the
 *   coverage, then one `SourceDrops` (what the thread dropped of this stream's events before they
 *   reached its buffer, since the persister attached), then one `StringEntry` (u32 id, string
 *   text) per string id the block's events name, in id order: every `u32` field of an event named
 *   after a string (target, template, key0-3; name, unit; name) is an id among them, id 0 the
 *   empty string. Each block so decodes on its own. Event times (`t`) are ns since the stream's
 *   `clock_base_ns` property; the process's `dorsal.clock_base_ns` is the base of the messages'
 *   and timing records' times, and of every block's begin and end ticks: add the difference of
 *   the two to rebase an event exactly.
 */
export const RecordHeader = defineMessage('RecordHeader', {
  /** The record's exact sequence in its queue. */
  seq: 'f64',
});

export const BlockCoverage = defineMessage('BlockCoverage', {
  /** The first sequence this block accounts for (persisted or lost). */
  first_seq: 'f64',
  /** One past the last sequence it accounts for. */
  end_seq: 'f64',
  /** Records of this source the persister lost so far (lapped, or their writer died), all blocks up to this one. */
  lost_total: 'f64',
  /** Of those, records whose writer died half way. */
  poisoned_total: 'f64',
});
export type BlockCoverage = MessageOfLayout<typeof BlockCoverage>;

/**
 * What a thread dropped of one instrumentation stream's events at the source, never published
 * to its queue (so not in `BlockCoverage`), counted since the persister attached, up to the end
 * of the block.
 */
export const SourceDrops = defineMessage('SourceDrops', {
  /** Events dropped because one of their strings could not be interned (table full, or too long). */
  strings_total: 'f64',
  /** Spans not begun because 128 were already open on the thread (0 for logs and metrics). */
  depth_total: 'f64',
});
export type SourceDrops = MessageOfLayout<typeof SourceDrops>;

/** Int32 words of the record header. */
export const HEADER_WORDS = RecordHeader.size >> 2;

/** The property names a persisted stream carries (all values are strings, as the wire requires). */
export const RecordProperty = {
  /** Bytes per record. */
  RECORD_BYTES: 'record_bytes',
  /** Byte offset of each of `objectsLayouts` in a record, comma separated. */
  LAYOUT_OFFSETS: 'layout_offsets',
  /** Which layout's field gives each record's time, as `layout.field`. */
  TIME_FIELD: 'time_field',
  /** Byte offset of each region of `dependenciesLayouts` in a block's dependencies, comma separated. */
  DEPENDENCIES_OFFSETS: 'dependencies_offsets',
  /** Instrumentation streams: the clock base (ns, on the spine clock's line) of the events' times. */
  CLOCK_BASE_NS: 'clock_base_ns',
} as const;

/** Where each part of a record starts, for layouts laid one after the other after the header. */
export function recordShape(parts: readonly LayoutDescription[]): {
  readonly layouts: LayoutDescription[];
  readonly offsets: number[];
  readonly bytes: number;
} {
  const layouts = [RecordHeader.describe(), ...parts];
  const offsets = offsetsOf(layouts);
  return { layouts, offsets, bytes: offsets.at(-1)! + layouts.at(-1)!.size };
}

/** Where each of `layouts` starts when they are laid one after the other. */
export function offsetsOf(layouts: readonly LayoutDescription[]): number[] {
  const offsets: number[] = [];
  let at = 0;
  for (const layout of layouts) {
    offsets.push(at);
    at += layout.size;
  }
  return offsets;
}
