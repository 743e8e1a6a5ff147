import { ConfigError } from '../errors.js';
import { type BoundCodec, viewsOf } from './codec.js';
import type { Layout } from './layout.js';
import { slotStride } from './queue-header.js';

/**
 * Where everything lives in a vector's SharedArrayBuffer (Int32 word indices):
 *
 * ```
 * byte 0    ┌ line 0: MAGIC FORMAT LENGTH STRIDE MESSAGE_SIZE FINGERPRINT MAX_READERS ─────┐
 * byte 64   ├ reader table: MAX_READERS entries of 64 bytes: +0 STATE +4 READS            ─┤
 *           ├ slots: LENGTH × STRIDE bytes: +0 VERSION (odd while written, 0 never) +8 value ┤
 *           └──────────────────────────────────────────────────────────────────────────────┘
 * ```
 */
const V = {
  MAGIC: 0,
  FORMAT: 1,
  LENGTH: 2,
  STRIDE: 3,
  MESSAGE_SIZE: 4,
  FINGERPRINT: 5,
  MAX_READERS: 6,
  READERS_BYTE: 64,
  READER_ENTRY_BYTES: 64,
  VALUE_BYTE: 8,
} as const;
const VECTOR_MAGIC = 0x64727376; // 'drsv'
const VECTOR_FORMAT = 1;

/**
 * A fixed array of seqlocked values, one per key: writers overwrite, readers always get the
 * newest complete value of a key (flux's SeqlockVector). Nothing queues, nothing is lost by
 * design: only the latest value per key matters (prices per instrument, state per actor).
 *
 * @example
 * const prices = SeqlockVector.create(Quote, { length: 1024 });
 * prices.write(7, { bid: 99.5, ask: 100.5 });
 * const reader = SeqlockVector.attach(Quote, prices.buffer).reader();   // e.g. in a worker
 * const out = Quote.create();
 * if (reader.read(7, out)) { ... }
 */
export class SeqlockVector<M extends object> {
  readonly layout: Layout<M>;
  readonly length: number;
  private readonly i32: Int32Array;
  private readonly stride: number;
  private readonly slotsByte: number;
  private readonly maxReaders: number;
  private readonly codec: BoundCodec<M>;

  private constructor(layout: Layout<M>, buffer: SharedArrayBuffer) {
    const views = viewsOf(buffer);
    this.layout = layout;
    this.i32 = views.i32;
    this.length = this.i32[V.LENGTH]!;
    this.stride = this.i32[V.STRIDE]!;
    this.maxReaders = this.i32[V.MAX_READERS]!;
    this.slotsByte = V.READERS_BYTE + this.maxReaders * V.READER_ENTRY_BYTES;
    this.codec = layout.bind(views);
  }

  /** Creates a vector of `length` values of `layout`, all unwritten. */
  static create<M extends object>(
    layout: Layout<M>,
    options: { length: number; maxReaders?: number },
  ): SeqlockVector<M> {
    const length = options?.length;
    const maxReaders = options?.maxReaders ?? 64;
    if (!Number.isInteger(length) || length < 1 || length > 2 ** 24) {
      throw new ConfigError(`SeqlockVector length must be an integer from 1 to 2^24, got ${length}`);
    }
    if (!Number.isInteger(maxReaders) || maxReaders < 1 || maxReaders > 4096) {
      throw new ConfigError(`maxReaders must be an integer from 1 to 4096, got ${maxReaders}`);
    }
    const stride = slotStride(layout.size);
    const slotsByte = V.READERS_BYTE + maxReaders * V.READER_ENTRY_BYTES;
    const buffer = new SharedArrayBuffer(slotsByte + length * stride);
    const i32 = new Int32Array(buffer);
    // Plain stores before the buffer is shared (postMessage orders them).
    i32[V.MAGIC] = VECTOR_MAGIC;
    i32[V.FORMAT] = VECTOR_FORMAT;
    i32[V.LENGTH] = length;
    i32[V.STRIDE] = stride;
    i32[V.MESSAGE_SIZE] = layout.size;
    i32[V.FINGERPRINT] = layout.fingerprint;
    i32[V.MAX_READERS] = maxReaders;
    return new SeqlockVector(layout, buffer);
  }

  /** Opens a vector from its buffer; throws a `ConfigError` if it was made for another layout. */
  static attach<M extends object>(layout: Layout<M>, buffer: SharedArrayBuffer): SeqlockVector<M> {
    const i32 =
      buffer instanceof SharedArrayBuffer && buffer.byteLength >= 64 ? new Int32Array(buffer) : undefined;
    if (!i32 || i32[V.MAGIC] !== VECTOR_MAGIC || i32[V.FORMAT] !== VECTOR_FORMAT) {
      throw new ConfigError(
        `SeqlockVector.attach(${layout.name}): the buffer is not a dorsal vector of this version`,
      );
    }
    if (i32[V.FINGERPRINT] !== layout.fingerprint || i32[V.MESSAGE_SIZE] !== layout.size) {
      throw new ConfigError(`SeqlockVector.attach(${layout.name}): layout mismatch`);
    }
    return new SeqlockVector(layout, buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.i32.buffer as SharedArrayBuffer;
  }

  /**
   * Overwrites the value of `index`. Several threads may write the same index: a writer that
   * meets another one mid-write waits for it (writers wait on writers, never on readers).
   */
  write(index: number, value: M): void {
    const versionIndex = this.versionIndex(index);
    this.codec.check(value);
    const i32 = this.i32;
    let version: number;
    for (;;) {
      // SC load: the current version; odd means another writer is mid-write.
      version = Atomics.load(i32, versionIndex);
      // SC compare-exchange to odd: exactly one writer owns the slot until it stores even.
      if ((version & 1) === 0 && Atomics.compareExchange(i32, versionIndex, version, version + 1) === version)
        break;
    }
    // SC load after the SC read-modify-write, as a fence: the value stores below cannot become
    // visible before the odd version (the acquire keeps them after it).
    Atomics.load(i32, versionIndex);
    this.codec.write(versionIndex * 4 + V.VALUE_BYTE, value);
    // Skip 0 when the 32-bit version wraps: 0 means "never written".
    const next = (version + 2) | 0 || 2;
    // SC store (a release): the value bytes are visible to any reader that sees `next`.
    Atomics.store(i32, versionIndex, next);
  }

  /** The version of `index`: 0 if never written, odd while being written; changes on every write. */
  version(index: number): number {
    // SC load: a reader that sees a version sees at least that write.
    return Atomics.load(this.i32, this.versionIndex(index));
  }

  /** A reader handle: each reader owns a word it stores to, which orders its reads (see read). */
  reader(): SeqlockVectorReader<M> {
    for (let i = 0; i < this.maxReaders; i++) {
      const entry = (V.READERS_BYTE + i * V.READER_ENTRY_BYTES) >> 2;
      // SC compare-exchange: one reader per table entry, across threads.
      if (Atomics.compareExchange(this.i32, entry, 0, 1) === 0) {
        return new SeqlockVectorReader(this, this.i32, entry, this.layout.bind(viewsOf(this.buffer)));
      }
    }
    throw new ConfigError(`the vector already has ${this.maxReaders} readers (raise maxReaders)`);
  }

  /** @internal Int32 index of the version word of `index`; throws on an index out of range. */
  versionIndex(index: number): number {
    if (!(index >= 0 && index < this.length) || Math.floor(index) !== index) {
      throw new ConfigError(
        `SeqlockVector index must be an integer from 0 to ${this.length - 1}, got ${index}`,
      );
    }
    return (this.slotsByte + index * this.stride) >> 2;
  }
}

/** Reads the newest complete values of a `SeqlockVector`. */
export class SeqlockVectorReader<M extends object> {
  private readonly vector: SeqlockVector<M>;
  private readonly i32: Int32Array;
  private readonly entry: number;
  private readonly codec: BoundCodec<M>;
  private reads = 0;
  private retriedCount = 0;

  /** @internal use `vector.reader()`. */
  constructor(vector: SeqlockVector<M>, i32: Int32Array, entry: number, codec: BoundCodec<M>) {
    this.vector = vector;
    this.i32 = i32;
    this.entry = entry;
    this.codec = codec;
  }

  /** Reads the newest value of `index` into `out`; false if it was never written. Never torn. */
  read(index: number, out: M): boolean {
    const i32 = this.i32;
    const versionIndex = this.vector.versionIndex(index);
    for (;;) {
      // SC load (acquire): seeing an even version makes that write's value bytes visible.
      const before = Atomics.load(i32, versionIndex);
      if (before === 0) return false;
      if ((before & 1) === 0) {
        this.codec.read(versionIndex * 4 + V.VALUE_BYTE, out);
        // SC store (release) to our own word: the value reads above cannot be satisfied after
        // it, and the SC load below cannot move before it, so the re-check follows the copy.
        Atomics.store(i32, this.entry + 1, ++this.reads);
        // SC load: unchanged means no write overlapped the copy.
        if (Atomics.load(i32, versionIndex) === before) return true;
      }
      this.retriedCount++;
    }
  }

  /** Reads that had to be retried because a write overlapped them (for monitoring). */
  get retried(): number {
    return this.retriedCount;
  }

  /** Releases the reader's table entry. */
  close(): void {
    // SC store: the entry is free for a later reader in any thread.
    Atomics.store(this.i32, this.entry, 0);
  }
}
