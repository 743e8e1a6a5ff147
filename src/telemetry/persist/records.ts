import { defineMessage, type LayoutDescription, type MessageOfLayout } from '../../queues/index.js';

/**
 * What the persister writes into blocks, and how a lake stream says so, so that any reader can
 * decode a block without dorsal's code.
 *
 * A block's objects are records of one fixed size: the message's exact sequence in its queue
 * (f64), then the slot's bytes as the queue holds them: for a spine stream the tracking envelope
 * then the message, for a timing queue the timing record. The stream's properties give the record
 * size and where each part starts; its `objectsLayouts` describe the parts, in that order.
 *
 * A block's dependencies hold one `BlockCoverage`: which sequences of the source the block covers
 * and how many the persister had lost by its end, so that for every source the records in the
 * lake plus the last block's `lost` equal what was published since the persister attached.
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
} as const;

/** Where each part of a record starts, for layouts laid one after the other after the header. */
export function recordShape(parts: readonly LayoutDescription[]): {
  readonly layouts: LayoutDescription[];
  readonly offsets: number[];
  readonly bytes: number;
} {
  const layouts = [RecordHeader.describe(), ...parts];
  const offsets: number[] = [];
  let at = 0;
  for (const layout of layouts) {
    offsets.push(at);
    at += layout.size;
  }
  return { layouts, offsets, bytes: at };
}
