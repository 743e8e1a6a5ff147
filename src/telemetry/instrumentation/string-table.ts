import { ConfigError } from '../../errors.js';
import { asUtf8, utf8Length } from '../../queues/codec.js';
import { MAX_STRING_BYTES } from './events.js';

/**
 * A thread's interned strings, in one SharedArrayBuffer: append-only, written by the thread
 * that owns the buffers, read by any other (the persister). Int32 word indices unless noted.
 *
 * ```
 * byte 0    ┌ line 0: written at creation, but WRITER and THREAD_ID ──────────────────────────┐
 *           │ MAGIC FORMAT MAX_STRINGS MAX_BYTES                                               │
 *           │ WRITER (1 while a thread interns here: one at a time) · THREAD_ID (its threadId)  │
 *           │ CLOCK_BASE_F64 at byte 32 (the base of every time in the thread's events)         │
 * byte 64   ├ line 1: the writer's counters ────────────────────────────────────────────────┤
 *           │ COUNT (strings published: ids below it are readable)                              │
 *           │ DROPPED_STRING_LOGS · _METRICS · _SPANS (events of each kind dropped: a string   │
 *           │ could not be interned)                                                           │
 *           │ DROPPED_DEPTH (spans not begun: the thread's span stack was full)                │
 * byte 128  ├ ENDS: MAX_STRINGS × u32, where string i's UTF-8 bytes end (they start where     │
 *           │ string i - 1's end; string 0, the empty string, is there from the start)         │
 *           ├ BYTES: MAX_BYTES of UTF-8 ────────────────────────────────────────────────────┤
 *           └──────────────────────────────────────────────────────────────────────────────────┘
 * ```
 *
 * Why no seqlock: an entry is written once, below nothing a reader looks at, and published by
 * the SC store of COUNT; a reader's SC load of COUNT that reads it synchronizes-with that store,
 * so the entry's bytes and end happen-before the reader's plain reads of them, and nothing ever
 * writes them again. Readers and the writer never touch the same byte concurrently: no data race.
 */
export const StringTableHeader = {
  MAGIC: 0,
  FORMAT: 1,
  MAX_STRINGS: 2,
  MAX_BYTES: 3,
  WRITER: 4,
  THREAD_ID: 5,
  CLOCK_BASE_F64: 4,
  COUNT: 16,
  DROPPED_STRING_LOGS: 17,
  DROPPED_STRING_METRICS: 18,
  DROPPED_STRING_SPANS: 19,
  DROPPED_DEPTH: 20,
  ENDS_BYTE: 128,
} as const;

const H = StringTableHeader;
const MAGIC = 0x64727374; // 'drst'
const FORMAT = 2;

/** The counter of events of each kind dropped because one of their strings could not be interned. */
const DROPPED_STRING_WORD = {
  logs: H.DROPPED_STRING_LOGS,
  metrics: H.DROPPED_STRING_METRICS,
  spans: H.DROPPED_STRING_SPANS,
} as const;

/** The kinds of event a thread records, each in a queue of its own. */
export type EventKind = keyof typeof DROPPED_STRING_WORD;

/** Options of a string table's size. */
export interface StringTableSize {
  /** Strings it can hold, the empty string (id 0) included. Default 4096. */
  readonly maxStrings?: number;
  /** UTF-8 bytes it can hold in all. Default 128 KiB. */
  readonly maxBytes?: number;
}

/** Views over a string table's buffer, shared by its writer and its readers. */
/**
 * The bytes of a table of `maxStrings` strings and `maxBytes` bytes of text: its header, the ends,
 * the text, then up to 7 bytes more, so that Int32 and Float64 views fit over it (a table of 3
 * strings or of 61 bytes is as good as any).
 */
function tableBytes(maxStrings: number, maxBytes: number): number {
  return Math.ceil((H.ENDS_BYTE + 4 * maxStrings + maxBytes) / 8) * 8;
}

export class StringTable {
  readonly buffer: SharedArrayBuffer;
  readonly maxStrings: number;
  readonly maxBytes: number;
  protected readonly i32: Int32Array;
  protected readonly ends: Uint32Array;
  /** A Buffer over the BYTES region: native UTF-8 encoding and decoding without copies. */
  protected readonly bytes: Buffer;

  protected constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.i32 = new Int32Array(buffer);
    this.maxStrings = this.i32[H.MAX_STRINGS]!;
    this.maxBytes = this.i32[H.MAX_BYTES]!;
    this.ends = new Uint32Array(buffer, H.ENDS_BYTE, this.maxStrings);
    this.bytes = Buffer.from(buffer, H.ENDS_BYTE + 4 * this.maxStrings, this.maxBytes);
  }

  /** A new table holding the empty string as id 0. */
  static createBuffer(clockBaseNs: number, size: StringTableSize = {}): SharedArrayBuffer {
    const maxStrings = size.maxStrings ?? 4096;
    const maxBytes = size.maxBytes ?? 128 * 1024;
    if (!Number.isInteger(maxStrings) || maxStrings < 1 || maxStrings > 1 << 24) {
      throw new ConfigError(`maxStrings must be an integer from 1 to 2^24, got ${maxStrings}`);
    }
    if (!Number.isInteger(maxBytes) || maxBytes < 0 || maxBytes > 1 << 30) {
      throw new ConfigError(`maxBytes must be an integer from 0 to 2^30, got ${maxBytes}`);
    }
    const buffer = new SharedArrayBuffer(tableBytes(maxStrings, maxBytes));
    const i32 = new Int32Array(buffer);
    // Plain stores before the buffer is shared with any other thread (postMessage orders them).
    i32[H.MAGIC] = MAGIC;
    i32[H.FORMAT] = FORMAT;
    i32[H.MAX_STRINGS] = maxStrings;
    i32[H.MAX_BYTES] = maxBytes;
    i32[H.THREAD_ID] = -1;
    i32[H.COUNT] = 1;
    new Float64Array(buffer)[H.CLOCK_BASE_F64] = clockBaseNs;
    return buffer;
  }

  /** Checks that `buffer` is a string table of this version; throws a `ConfigError` if not. */
  static check(buffer: unknown): SharedArrayBuffer {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < H.ENDS_BYTE) {
      throw new ConfigError(
        'instrumentation buffers: `strings` is not a SharedArrayBuffer of a string table',
      );
    }
    const i32 = new Int32Array(buffer);
    if (i32[H.MAGIC] !== MAGIC || i32[H.FORMAT] !== FORMAT) {
      throw new ConfigError('instrumentation buffers: `strings` is not a string table of this version');
    }
    if (buffer.byteLength !== tableBytes(i32[H.MAX_STRINGS]!, i32[H.MAX_BYTES]!)) {
      throw new ConfigError('instrumentation buffers: the string table size does not match its header');
    }
    return buffer;
  }

  /** Strings published so far: ids from 0 to count - 1 are readable. */
  get count(): number {
    // SC load: synchronizes-with the writer's SC store of COUNT, so every entry below it is whole.
    return Atomics.load(this.i32, H.COUNT);
  }

  /** Events dropped because one of their strings could not be interned (table full, or too long). */
  get droppedForStrings(): number {
    return (
      this.droppedForStringsOf('logs') +
      this.droppedForStringsOf('metrics') +
      this.droppedForStringsOf('spans')
    );
  }

  /**
   * Events of one kind dropped because one of their strings could not be interned, modulo 2^32
   * (the writer's word wraps; a reader that reads often counts on: see `DropsSince`).
   */
  droppedForStringsOf(kind: EventKind): number {
    // SC load of a counter only the writer changes, with SC adds.
    return Atomics.load(this.i32, DROPPED_STRING_WORD[kind]) >>> 0;
  }

  /** Spans not begun because the thread's span stack was full. */
  get droppedForDepth(): number {
    // SC load of a counter only the writer changes, with SC adds; modulo 2^32, as above.
    return Atomics.load(this.i32, H.DROPPED_DEPTH) >>> 0;
  }

  /** The threadId of the thread that interns here (-1 before any). */
  get threadId(): number {
    // SC load: pairs with the SC store made when a thread binds the buffers.
    return Atomics.load(this.i32, H.THREAD_ID);
  }

  get clockBaseNs(): number {
    // Written before the buffer was shared, never again.
    return new Float64Array(this.buffer, 0, 8)[H.CLOCK_BASE_F64]!;
  }

  /** The text of string `id`, which must be below a `count` this thread read. */
  protected textAt(id: number): string {
    const start = id === 0 ? 0 : this.ends[id - 1]!;
    return this.bytes.toString('utf8', start, this.ends[id]!);
  }
}

/** Reads a string table from any thread. */
export class StringTableReader extends StringTable {
  static attach(buffer: SharedArrayBuffer): StringTableReader {
    return new StringTableReader(StringTable.check(buffer));
  }

  /** The text of string `id`; throws a `ConfigError` for an id not published yet. */
  text(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.count) {
      throw new ConfigError(`string id ${id} is not in the table (it holds ${this.count})`);
    }
    return this.textAt(id);
  }

  /** Strings with ids from `fromId` (inclusive) to the count read now, in id order. */
  since(fromId: number): { id: number; text: string }[] {
    const count = this.count;
    const out: { id: number; text: string }[] = [];
    for (let id = Math.max(0, fromId); id < count; id++) out.push({ id, text: this.textAt(id) });
    return out;
  }
}

/**
 * The owning thread's side: interns a string once (a Map from text to id) and publishes it. Not
 * thread-safe by design: one thread holds the WRITER role of a table at a time.
 */
export class StringInterner extends StringTable {
  private readonly ids = new Map<string, number>();
  private published: number;

  private constructor(buffer: SharedArrayBuffer) {
    super(buffer);
    this.published = this.count;
    // A thread that takes over a table (a restart) keeps its ids: events already written use them.
    for (let id = 0; id < this.published; id++) this.ids.set(this.textAt(id), id);
  }

  /** Takes the writer role of `buffer` for this thread; a `ConfigError` if another thread holds it. */
  static claim(buffer: SharedArrayBuffer, threadId: number): StringInterner {
    const i32 = new Int32Array(StringTable.check(buffer));
    // SC compare-exchange: one writer per table, whichever thread asks first; a later one fails.
    if (Atomics.compareExchange(i32, H.WRITER, 0, 1) !== 0) {
      throw new ConfigError('these instrumentation buffers are already bound in another thread');
    }
    // SC store: a reader's SC load of THREAD_ID sees it.
    Atomics.store(i32, H.THREAD_ID, threadId);
    return new StringInterner(buffer);
  }

  /** Frees the writer role of a table whose writer is known to be dead (a crashed worker). */
  static release(buffer: SharedArrayBuffer): void {
    // SC store: the next writer's compare-exchange on the same word sees the role free.
    Atomics.store(new Int32Array(StringTable.check(buffer)), H.WRITER, 0);
  }

  /** Gives the writer role back; this interner must not be used afterwards. */
  close(): void {
    StringInterner.release(this.buffer);
  }

  /** Strings this thread has published (the table's count, without a load). */
  get size(): number {
    return this.published;
  }

  /** The id of `text`, interning it on first sight; -1 if it cannot be (table full, or too long). */
  intern(text: string): number {
    const id = this.ids.get(text);
    return id === undefined ? this.add(text) : id;
  }

  /** Counts an event of `kind` dropped because a string could not be interned. */
  countDroppedForString(kind: EventKind): void {
    // SC add: a reader's SC load sees the count; only this thread writes it.
    Atomics.add(this.i32, DROPPED_STRING_WORD[kind], 1);
  }

  /** Counts a span not begun because the span stack was full. */
  countDroppedForDepth(): void {
    // SC add: a reader's SC load sees the count; only this thread writes it.
    Atomics.add(this.i32, H.DROPPED_DEPTH, 1);
  }

  private add(text: string): number {
    if (typeof text !== 'string') return -1;
    // A lone surrogate is stored as U+FFFD, and a table taken over (a restart) knows the string by
    // what it stored: one id for both spellings, not a second copy (found in a full table too).
    const stored = asUtf8(text);
    if (stored !== text) {
      const known = this.ids.get(stored);
      if (known !== undefined) {
        this.ids.set(text, known);
        return known;
      }
    }
    const id = this.published;
    if (id >= this.maxStrings) return -1;
    const start = this.ends[id - 1]!;
    const length = utf8Length(text);
    if (length > MAX_STRING_BYTES || start + length > this.maxBytes) return -1;
    this.bytes.write(text, start, length, 'utf8');
    this.ends[id] = start + length;
    // SC store of the count: the bytes and the end stored above happen-before a reader's SC load
    // that reads it (see the header comment: they are never written again).
    Atomics.store(this.i32, H.COUNT, id + 1);
    this.published = id + 1;
    this.ids.set(text, id);
    this.ids.set(stored, id);
    return id;
  }
}
