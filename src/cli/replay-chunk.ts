import type { ByteRing } from '../queues/byte-ring.js';
import { type BoundCodec, viewsOf } from '../queues/codec.js';
import type { LayoutDescription } from '../queues/field-types.js';
import { Layout } from '../queues/layout.js';

/**
 * A chunk of the playlist: the unit the main thread hands the player through the ring. Messages
 * are in their stream's layout, written by the layout's own codec: exact by construction (the
 * bytes the replayed slot gets; an i64 stays a bigint, a -0 or a NaN a double), and of a size
 * known before any is read, so that a chunk is filled up to its size without trial encoding.
 *
 * ```
 * byte 0   COUNT (u32, messages)  ·  4 bytes unused
 * byte 8   message 0: +0 STREAM (u16, index into the playlist's streams) · +8 AT (f64, ns
 *          since the first message it paces; see `feedPlaylist`) · +16 its fields, in its
 *          layout (a multiple of 8 bytes)
 *          message 1 …
 * ```
 */
export const ChunkLayout = {
  COUNT_BYTE: 0,
  HEADER_BYTES: 8,
  STREAM_BYTE: 0,
  AT_BYTE: 8,
  ENTRY_HEADER_BYTES: 16,
} as const;

/** Bytes a chunk needs to hold one message of the largest of `layouts`. */
export function smallestChunk(layouts: readonly { readonly size: number }[]): number {
  return (
    ChunkLayout.HEADER_BYTES + ChunkLayout.ENTRY_HEADER_BYTES + Math.max(0, ...layouts.map((l) => l.size))
  );
}

/** Per stream, its layout's codec over the chunk's buffer. */
function codecsOver(layouts: readonly Layout[], buffer: ArrayBuffer): BoundCodec<object>[] {
  const views = viewsOf(buffer);
  return layouts.map((l) => l.bind(views) as BoundCodec<object>);
}

/** Main thread: fills one chunk at a time (its buffer reused), in the replayed spine's layouts. */
export class ChunkWriter {
  private readonly buffer: ArrayBuffer;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly codecs: BoundCodec<object>[];
  private readonly sizes: number[];
  private used: number = ChunkLayout.HEADER_BYTES;
  /** Messages in the chunk being filled. */
  count = 0;

  /** `size`: bytes per chunk, a multiple of 8 and at least `smallestChunk(layouts)`. */
  constructor(layouts: readonly Layout[], size: number) {
    this.buffer = new ArrayBuffer(size);
    this.bytes = new Uint8Array(this.buffer);
    this.view = new DataView(this.buffer);
    this.codecs = codecsOver(layouts, this.buffer);
    this.sizes = layouts.map((l) => l.size);
  }

  /**
   * Adds a message of stream `stream` (its index), `at` ns after the first, if the chunk has room
   * for it (false: send this chunk first). A value its layout does not take is a `LayoutError`
   * naming the field, and adds nothing.
   */
  add(stream: number, at: number, value: object): boolean {
    const entry = ChunkLayout.ENTRY_HEADER_BYTES + this.sizes[stream]!;
    if (this.used + entry > this.buffer.byteLength) return false;
    const codec = this.codecs[stream]!;
    codec.check(value);
    this.view.setUint16(this.used + ChunkLayout.STREAM_BYTE, stream, true);
    this.view.setFloat64(this.used + ChunkLayout.AT_BYTE, at, true);
    codec.write(this.used + ChunkLayout.ENTRY_HEADER_BYTES, value);
    this.used += entry;
    this.count++;
    return true;
  }

  /** The chunk's bytes (a view, valid until `clear`). */
  filled(): Uint8Array {
    this.view.setUint32(ChunkLayout.COUNT_BYTE, this.count, true);
    return this.bytes.subarray(0, this.used);
  }

  /** Empties the chunk, for the next messages. */
  clear(): void {
    this.used = ChunkLayout.HEADER_BYTES;
    this.count = 0;
  }
}

/**
 * The player's side: one chunk at a time, copied out of the ring into a buffer of its own, its
 * messages decoded one by one into an object per stream, filled again for every message.
 */
export class ChunkReader {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly codecs: BoundCodec<object>[];
  private readonly sizes: number[];
  private readonly values: object[];
  private count = 0;
  private index = 0;
  private offset = 0;

  /** `layouts`: the playlist's, per stream; `size`: the writer's chunk size. */
  constructor(layouts: readonly LayoutDescription[], size: number) {
    const buffer = new ArrayBuffer(size);
    const rebuilt = layouts.map((l) => Layout.fromDescription(l));
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(buffer);
    this.codecs = codecsOver(rebuilt, buffer);
    this.sizes = rebuilt.map((l) => l.size);
    this.values = rebuilt.map((l) => l.create());
  }

  /** True while the chunk holds a message not yet taken (`next`). */
  get more(): boolean {
    return this.index < this.count;
  }

  /** Takes the ring's next chunk, once this one is played; false when there is none yet. */
  load(ring: ByteRing): boolean {
    if (this.more || ring.tryRead(this.bytes) < 0) return false;
    this.count = this.view.getUint32(ChunkLayout.COUNT_BYTE, true);
    this.index = 0;
    this.offset = ChunkLayout.HEADER_BYTES;
    return this.count > 0;
  }

  /** The stream (index) of the next message. */
  get stream(): number {
    return this.view.getUint16(this.offset + ChunkLayout.STREAM_BYTE, true);
  }

  /** The next message's time, ns since the first message. */
  get at(): number {
    return this.view.getFloat64(this.offset + ChunkLayout.AT_BYTE, true);
  }

  /** The next message's fields, decoded into its stream's object (valid until the next call). */
  value(): object {
    const stream = this.stream;
    const out = this.values[stream]!;
    this.codecs[stream]!.read(this.offset + ChunkLayout.ENTRY_HEADER_BYTES, out);
    return out;
  }

  /** Moves past the next message (once it is published). */
  next(): void {
    this.offset += ChunkLayout.ENTRY_HEADER_BYTES + this.sizes[this.stream]!;
    this.index++;
  }
}
