import { type BufferViews, utf8Length } from '../../queues/codec.js';
import { CachedId } from './cached-id.js';
import {
  LogEvent,
  LogFlags,
  MAX_PROPERTIES,
  MAX_TEXT_BYTES,
  MAX_TEXT_PROPERTIES,
  PropertyType,
} from './events.js';
import type { Properties } from './log-writer.js';
import type { StringInterner } from './string-table.js';

/** Where a log event's property fields sit in its slot: each kind of field is an array of 4. */
const VALUE0 = LogEvent.offsetOf('value0');
const KEY0 = LogEvent.offsetOf('key0');
const TYPE0 = LogEvent.offsetOf('type0');
const TEXT0 = LogEvent.offsetOf('text0');
const TEXT1 = LogEvent.offsetOf('text1');
const FLAGS = LogEvent.offsetOf('flags');
const NONE = PropertyType.NONE;
// The stores below index each kind as an array: the layout must keep them side by side.
for (let i = 1; i < MAX_PROPERTIES; i++) {
  const name = (field: string) => `${field}${i}` as keyof LogEvent & string;
  if (
    LogEvent.offsetOf(name('value')) !== VALUE0 + 8 * i ||
    LogEvent.offsetOf(name('key')) !== KEY0 + 4 * i ||
    LogEvent.offsetOf(name('type')) !== TYPE0 + i
  ) {
    throw new Error('LogEvent: its property fields are no longer laid out as arrays');
  }
}

/**
 * Resolves a log entry's properties (each key interned, each value typed) and then stores them
 * into the entry's claimed slot. Bounded: the first 4 properties, at most 2 of them strings; the
 * rest are left out and the event says so (`flags`).
 *
 * String values are inline, not interned: a value is data (an order id, an error's text), often
 * of unbounded variety, and would fill the thread's append-only table, after which every event
 * with a new string would be dropped. Inline, a value costs its bytes in this event only and no
 * lookup; it is cut at 48 bytes, on a whole character. Keys are interned: they are as static as
 * the template.
 *
 * Every property field of the slot is stored, unused ones as zeros (a slot holds whatever the
 * previous lap left there); an unused text gets length 0. An entry without properties skips the
 * stores when its slot already holds zeros there (a writer of this thread left it so a lap ago): ~8 ns of
 * the ~60 of such an entry.
 */
export class PropertyWriter {
  private readonly strings: StringInterner;
  /** The last key of each slot and its id. */
  private readonly keys: readonly CachedId[] = [
    new CachedId(),
    new CachedId(),
    new CachedId(),
    new CachedId(),
  ];
  /** What `resolve` found, per property slot: key id, type, value. */
  private readonly keyIds = new Uint32Array(MAX_PROPERTIES);
  private readonly types = new Uint8Array(MAX_PROPERTIES);
  private readonly values = new Float64Array(MAX_PROPERTIES);
  /** The UTF-8 bytes of the entry's texts (the first from 0, the second from MAX_TEXT_BYTES), encoded before the claim. */
  private readonly textBytes = Buffer.alloc(2 * MAX_TEXT_BYTES);
  private length0 = 0;
  private length1 = 0;
  private count = 0;
  /** Scratch slots that may hold something other than zeros (0 to `filled`). */
  private filled = 0;
  private texts = 0;
  private flags = 0;
  /**
   * Per slot of the logs queue: 1 when a writer left its property fields zero (0: unknown).
   * Shared by the thread's writers (see `free`): each writes into the same slots.
   */
  private readonly clean: Uint8Array;
  private readonly slotMask: number;
  /** True while `resolve` reads an entry's properties: a getter among them may log meanwhile. */
  private resolving = false;
  /** The writer of the entries logged while this one resolves (made on first need). */
  private inner: PropertyWriter | undefined;

  /** `clean`: one byte per slot of the logs queue, zeros, shared by the thread's writers. */
  constructor(strings: StringInterner, clean: Uint8Array) {
    this.strings = strings;
    this.clean = clean;
    this.slotMask = clean.length - 1;
  }

  /**
   * This writer, or, while it resolves an entry's properties and one of their getters logs, a
   * writer for that nested entry: its scratch holds the outer entry's values. One level is kept;
   * deeper entries (a getter of the nested entry's properties logs too) get a writer of their own.
   */
  free(): PropertyWriter {
    if (!this.resolving) return this;
    this.inner ??= new PropertyWriter(this.strings, this.clean);
    return this.inner.resolving ? new PropertyWriter(this.strings, this.clean) : this.inner;
  }

  /** Resolves `properties`; false if a key could not be interned (drop the entry). */
  resolve(properties: Properties | undefined): boolean {
    this.resolving = true;
    try {
      return this.read(properties);
    } finally {
      this.resolving = false;
    }
  }

  private read(properties: Properties | undefined): boolean {
    let n = 0;
    let texts = 0;
    let flags = 0;
    if (properties !== undefined && properties !== null) {
      for (const key in properties) {
        if (n === MAX_PROPERTIES) {
          flags |= LogFlags.PROPERTIES_LEFT_OUT;
          break;
        }
        const value = properties[key];
        let type: number;
        let number: number;
        if (typeof value === 'number') {
          type = PropertyType.NUMBER;
          number = value;
        } else if (typeof value === 'boolean') {
          type = PropertyType.BOOLEAN;
          number = value ? 1 : 0;
        } else if (typeof value === 'string' && texts < MAX_TEXT_PROPERTIES) {
          type = PropertyType.STRING;
          number = texts;
          const length = encodeText(this.textBytes, texts === 0 ? 0 : MAX_TEXT_BYTES, value);
          if (length < 0) flags |= LogFlags.TEXT_CUT;
          if (texts++ === 0) this.length0 = length < 0 ? ~length : length;
          else this.length1 = length < 0 ? ~length : length;
        } else {
          flags |= LogFlags.PROPERTIES_LEFT_OUT;
          continue;
        }
        const keyId = this.keys[n]!.of(this.strings, key);
        if (keyId < 0) return false;
        this.keyIds[n] = keyId;
        this.types[n] = type;
        this.values[n] = number;
        n++;
        if (n > this.filled) this.filled = n;
      }
    }
    // Every slot past this entry's that holds something, as zeros: an earlier entry, or one
    // dropped half-way (a key not interned, a getter that threw), may have filled it.
    for (let i = n; i < this.filled; i++) {
      this.keyIds[i] = 0;
      this.types[i] = PropertyType.NONE;
      this.values[i] = 0;
    }
    this.filled = n;
    this.count = n;
    this.texts = texts;
    this.flags = flags;
    return true;
  }

  /**
   * Stores what `resolve` found into the log event of sequence `sequence`, at byte `at` of
   * `views`.
   */
  store(views: BufferViews, at: number, sequence: number): void {
    if (this.count === 0 && this.texts === 0 && this.flags === 0) {
      this.storeNone(views, at, sequence);
      return;
    }
    this.clean[sequence & this.slotMask] = 0;
    const values = this.values;
    const keys = this.keyIds;
    const types = this.types;
    storeFields(
      views,
      at,
      values[0]!,
      values[1]!,
      values[2]!,
      values[3]!,
      keys[0]!,
      keys[1]!,
      keys[2]!,
      keys[3]!,
      types[0]!,
      types[1]!,
      types[2]!,
      types[3]!,
      this.flags,
    );
    const texts = this.texts;
    storeTexts(views, at, this.textBytes, texts > 0 ? this.length0 : 0, texts > 1 ? this.length1 : 0);
  }

  /**
   * Stores an entry without properties: zeros in every property field of its slot, skipped where
   * the slot holds zeros already (a writer of this thread left it so a lap ago). Reads nothing of
   * what `resolve` found: an entry logged by a getter while this writer resolves can use it.
   */
  storeNone(views: BufferViews, at: number, sequence: number): void {
    const slot = sequence & this.slotMask;
    if (this.clean[slot] === 1) return;
    storeFields(views, at, 0, 0, 0, 0, 0, 0, 0, 0, NONE, NONE, NONE, NONE, 0);
    storeTexts(views, at, this.textBytes, 0, 0);
    this.clean[slot] = 1;
  }

  /** Says that the entry of sequence `sequence` stores property fields of its own (a prepared line's). */
  written(sequence: number): void {
    this.clean[sequence & this.slotMask] = 0;
  }
}

/**
 * Stores a log event's property fields but its texts, at byte `at` of `views`. Unrolled, and
 * calls nothing: it runs between a claim and its commit, no deeper than the claim itself goes (a
 * stack overflow there would leave the slot claimed). A loop over the 4 properties with a test
 * per field cost 3 times as much (18–25 ns against 6–10).
 */
export function storeFields(
  views: BufferViews,
  at: number,
  value0: number,
  value1: number,
  value2: number,
  value3: number,
  key0: number,
  key1: number,
  key2: number,
  key3: number,
  type0: number,
  type1: number,
  type2: number,
  type3: number,
  flags: number,
): void {
  const { f64, u32, u8 } = views;
  f64[(at + VALUE0) >> 3] = value0;
  f64[(at + VALUE0 + 8) >> 3] = value1;
  f64[(at + VALUE0 + 16) >> 3] = value2;
  f64[(at + VALUE0 + 24) >> 3] = value3;
  u32[(at + KEY0) >> 2] = key0;
  u32[(at + KEY0 + 4) >> 2] = key1;
  u32[(at + KEY0 + 8) >> 2] = key2;
  u32[(at + KEY0 + 12) >> 2] = key3;
  u8[at + TYPE0] = type0;
  u8[at + TYPE0 + 1] = type1;
  u8[at + TYPE0 + 2] = type2;
  u8[at + TYPE0 + 3] = type3;
  u8[at + FLAGS] = flags;
}

/**
 * Stores a log event's two texts, `length0` bytes from `bytes` and `length1` from
 * `bytes[MAX_TEXT_BYTES]` (0: no text), and zeroes the bytes an older, longer text left in the
 * slot: raw slots are what the persister ships. Plain copies that call nothing, as `storeFields`.
 */
export function storeTexts(
  views: BufferViews,
  at: number,
  bytes: Uint8Array,
  length0: number,
  length1: number,
): void {
  const { u16, u8 } = views;
  // One loop for both texts, each over its new bytes and then the old ones past them: small, so
  // that V8 inlines the producer's claim and commit with it into a prepared line's write (the two
  // copies written out kept them out of its budget: a line without texts 78 ns against 71).
  for (let text = 0; text < 2; text++) {
    const field = at + (text === 0 ? TEXT0 : TEXT1);
    const length = text === 0 ? length0 : length1;
    const from = text * MAX_TEXT_BYTES;
    const old = Math.min(u16[field >> 1]!, MAX_TEXT_BYTES);
    u16[field >> 1] = length;
    for (let i = 0; i < length; i++) u8[field + 2 + i] = bytes[from + i]!;
    for (let i = length; i < old; i++) u8[field + 2 + i] = 0;
  }
}

/**
 * Encodes `text` into `into` from `at`, before the claim: at most MAX_TEXT_BYTES of UTF-8, cut on
 * a whole character. Returns its byte length, or, when it was cut, the complement (`~length`) of
 * the bytes written. ASCII is copied unit by unit; anything else by `Buffer.write`, which writes
 * no partial character. Nothing is allocated, cut or not.
 */
export function encodeText(into: Buffer, at: number, text: string): number {
  const length = text.length;
  const fits = Math.min(length, MAX_TEXT_BYTES);
  let i = 0;
  for (; i < fits; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) break;
    into[at + i] = c;
  }
  if (i === length) return length;
  if (i === fits) return ~fits;
  const written = into.write(text, at, MAX_TEXT_BYTES, 'utf8');
  // A UTF-16 unit is 1 to 3 UTF-8 bytes: a string of at most 16 units was written whole, one of
  // over 48 was cut; only one in between is measured (never a long one: a value may be megabytes).
  if (length * 3 <= MAX_TEXT_BYTES) return written;
  return length <= MAX_TEXT_BYTES && written === utf8Length(text) ? written : ~written;
}
