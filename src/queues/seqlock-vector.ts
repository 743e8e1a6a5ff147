import { ConfigError, PoisonedSlotError } from '../errors.js';
import { isTimerMs, TIMER_MS_RANGE } from '../timer-ms.js';
import { type BoundCodec, viewsOf } from './codec.js';
import type { Layout } from './layout.js';
import { V8_X86_ORDERING } from './memory-order.js';
import { DEFAULT_POISON_TIMEOUT_MS, slotStride } from './queue-header.js';
import { SlotStall } from './stall.js';

/**
 * Where everything lives in a vector's SharedArrayBuffer (Int32 word indices):
 *
 * ```
 * byte 0    ┌ line 0: MAGIC FORMAT LENGTH STRIDE MESSAGE_SIZE FINGERPRINT MAX_READERS ────────┐
 *           │ POISON_TIMEOUT_MS POISONED (keys taken over from a writer that died mid-write)  │
 * byte 64   ├ reader table: MAX_READERS entries of 64 bytes: +0 STATE                       ─┤
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
  POISON_TIMEOUT_MS: 7,
  POISONED: 8,
  READERS_BYTE: 64,
  READER_ENTRY_BYTES: 64,
  VALUE_BYTE: 8,
} as const;
/**
 * The word after a key's version: the version a `reset` gave the key, which reads as never
 * written at that version (0 or another version: a value).
 */
const EMPTIED = 1;
const VECTOR_MAGIC = 0x64727376; // 'drsv'
const VECTOR_FORMAT = 2;
/** The most bytes a vector takes, as a queue (`MAX_QUEUE_BYTES`). */
const MAX_VECTOR_BYTES = 2 ** 31 - 1;

/**
 * A fixed array of seqlocked values, one per key: writers overwrite, readers always get the
 * newest complete value of a key (flux's SeqlockVector). Nothing queues, nothing is lost by
 * design: only the latest value per key matters (prices per instrument, state per actor).
 *
 * A key left half written for longer than the poison timeout (its writer died mid-write, or is
 * paused) is never written over: a paused writer's late stores would mix with the new value. Its
 * readers and writers get a `PoisonedSlotError` naming it; `reset(index)` gives the key back once
 * its writer's thread is known to be dead.
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
  private readonly stall: SlotStall;

  private constructor(layout: Layout<M>, buffer: SharedArrayBuffer) {
    const views = viewsOf(buffer);
    this.layout = layout;
    this.i32 = views.i32;
    this.length = this.i32[V.LENGTH]!;
    this.stride = this.i32[V.STRIDE]!;
    this.maxReaders = this.i32[V.MAX_READERS]!;
    this.slotsByte = V.READERS_BYTE + this.maxReaders * V.READER_ENTRY_BYTES;
    this.codec = layout.bind(views);
    this.stall = new SlotStall(this.i32[V.POISON_TIMEOUT_MS]!);
  }

  /** Creates a vector of `length` values of `layout`, all unwritten. */
  static create<M extends object>(
    layout: Layout<M>,
    options: { length: number; maxReaders?: number; poisonTimeoutMs?: number },
  ): SeqlockVector<M> {
    const length = options?.length;
    const maxReaders = options?.maxReaders ?? 64;
    const poisonTimeoutMs = options?.poisonTimeoutMs ?? DEFAULT_POISON_TIMEOUT_MS;
    if (!isTimerMs(poisonTimeoutMs)) {
      throw new ConfigError(`poisonTimeoutMs must be ${TIMER_MS_RANGE}, got ${poisonTimeoutMs}`);
    }
    if (!Number.isInteger(length) || length < 1 || length > 2 ** 24) {
      throw new ConfigError(`SeqlockVector length must be an integer from 1 to 2^24, got ${length}`);
    }
    if (!Number.isInteger(maxReaders) || maxReaders < 1 || maxReaders > 4096) {
      throw new ConfigError(`maxReaders must be an integer from 1 to 4096, got ${maxReaders}`);
    }
    const stride = slotStride(layout.size);
    const slotsByte = V.READERS_BYTE + maxReaders * V.READER_ENTRY_BYTES;
    const byteLength = slotsByte + length * stride;
    // As a queue: Int32 views index it with 32-bit arithmetic.
    if (byteLength > MAX_VECTOR_BYTES) {
      throw new ConfigError(
        `a SeqlockVector of ${length} keys of ${stride} bytes (${layout.name}) takes ${byteLength} bytes, over the ${MAX_VECTOR_BYTES} a vector may take`,
      );
    }
    const buffer = new SharedArrayBuffer(byteLength);
    const i32 = new Int32Array(buffer);
    // Plain stores before the buffer is shared (postMessage orders them).
    i32[V.MAGIC] = VECTOR_MAGIC;
    i32[V.FORMAT] = VECTOR_FORMAT;
    i32[V.LENGTH] = length;
    i32[V.STRIDE] = stride;
    i32[V.MESSAGE_SIZE] = layout.size;
    i32[V.FINGERPRINT] = layout.fingerprint;
    i32[V.MAX_READERS] = maxReaders;
    i32[V.POISON_TIMEOUT_MS] = poisonTimeoutMs;
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
   * meets another one mid-write waits for it (writers wait on writers, never on readers), up to
   * the poison timeout; then it throws a `PoisonedSlotError`.
   */
  write(index: number, value: M): void {
    const versionIndex = this.versionIndex(index);
    this.codec.check(value);
    const i32 = this.i32;
    // SC load: the current version; odd means another writer is mid-write.
    let version = Atomics.load(i32, versionIndex);
    let spins = 0;
    for (; ; spins++) {
      if ((version & 1) === 0) {
        // SC compare-exchange to odd: exactly one writer owns the key until it stores even. As
        // a read-modify-write it reads from the last reader's re-check (an RMW), which thereby
        // synchronizes-with it: no reader's copy can read the stores below.
        if (Atomics.compareExchange(i32, versionIndex, version, version + 1) === version) break;
      } else if (spins > 1000) {
        waitForWriter(this.stall, this.layout.name, index, version);
      }
      // SC load, again.
      version = Atomics.load(i32, versionIndex);
    }
    // A wait is over: forgotten (the same key and version come back after 2^31 writes of it).
    if (spins > 1000) this.stall.clear();
    this.codec.write(versionIndex * 4 + V.VALUE_BYTE, value);
    // Plain store inside the odd window, as the value's: no longer "emptied by a reset" (see `reset`).
    i32[versionIndex + EMPTIED] = 0;
    // Skip 0 when the 32-bit version wraps: 0 means "never written".
    const next = (version + 2) | 0 || 2;
    // SC compare-exchange from our odd version: the value stores above happen-before a reader's
    // SC load that reads `next`. It fails only if the key was reset meanwhile (we were taken for
    // dead): then the value is discarded, never rolling the version back.
    if (Atomics.compareExchange(i32, versionIndex, version + 1, next) !== version + 1) {
      throw new PoisonedSlotError(
        `SeqlockVector of '${this.layout.name}': key ${index} was reset while this write was under way; the value was discarded`,
        this.layout.name,
        index,
      );
    }
  }

  /**
   * Gives back key `index` left half written by a writer whose thread is known to be dead (as
   * `SeqlockQueue.releaseProducer` does for a queue): it reads as never written again, and counts
   * in `poisoned`. Returns false if the key was not half written. Never reset a key whose writer
   * may be alive: its late stores would mix with the next value.
   */
  reset(index: number): boolean {
    const versionIndex = this.versionIndex(index);
    const i32 = this.i32;
    // SC load of the dead writer's odd version.
    const version = Atomics.load(i32, versionIndex);
    if ((version & 1) === 0) return false;
    // Forward, never back: the key gets versions it never had. Rolled back to 0, the next write
    // made its versions again: a reader paused across the death, the reset and that write found
    // the version it began with, and took a mix of two values. First the key is taken from the
    // dead writer, to an odd version of the reset's own (SC compare-exchange: fails if the key
    // moved meanwhile, and a writer that was not dead after all finds its commit refused).
    const owned = (version + 2) | 0;
    if (Atomics.compareExchange(i32, versionIndex, version, owned) !== version) return false;
    const emptied = (owned + 1) | 0 || 2;
    // Plain store while the key is odd, the reset's: the SC store below orders it before any
    // reader's SC load of `emptied`.
    i32[versionIndex + EMPTIED] = emptied;
    // SC store of the even version that reads as never written.
    Atomics.store(i32, versionIndex, emptied);
    // SC add: resets in several threads may count at once.
    Atomics.add(this.i32, V.POISONED, 1);
    return true;
  }

  /** Keys reset after their writer died half way. */
  get poisoned(): number {
    // SC load of a counter only changed by atomic adds.
    return Atomics.load(this.i32, V.POISONED);
  }

  /**
   * The version of `index`: 0 if never written, odd while being written; changes on every write
   * (and at a `reset`, which never takes a key back to a version it had).
   */
  version(index: number): number {
    // SC load: a reader that sees a version sees at least that write.
    return Atomics.load(this.i32, this.versionIndex(index));
  }

  /** A reader handle (each takes an entry in the vector's reader table). */
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
  private closed = false;
  private readonly codec: BoundCodec<M>;
  private readonly stall: SlotStall;
  private retriedCount = 0;

  /** @internal use `vector.reader()`. */
  constructor(vector: SeqlockVector<M>, i32: Int32Array, entry: number, codec: BoundCodec<M>) {
    this.vector = vector;
    this.i32 = i32;
    this.entry = entry;
    this.codec = codec;
    this.stall = new SlotStall(i32[V.POISON_TIMEOUT_MS]!);
  }

  /**
   * Reads the newest value of `index` into `out`; false if it was never written. Never torn.
   * Throws a `PoisonedSlotError` if a writer has held the key half written for the vector's
   * poison timeout (a writer that died mid-write; the next write takes the key over).
   */
  read(index: number, out: M): boolean {
    const i32 = this.i32;
    const versionIndex = this.vector.versionIndex(index);
    for (let spins = 0; ; spins++) {
      // SC load: if it reads an even version, it synchronizes-with the writer's SC store of it,
      // and that write's value bytes are visible to the reads below.
      const before = Atomics.load(i32, versionIndex);
      if (before === 0) return false;
      if ((before & 1) === 0) {
        // Plain read, validated by the re-check as the value is: the key emptied by a reset at this very version.
        const emptied = i32[versionIndex + EMPTIED] === before;
        this.codec.read(versionIndex * 4 + V.VALUE_BYTE, out);
        // The re-check. Opted-in x86 path: an SC load, kept after the copy by x86 and V8's order.
        // Otherwise an SC read-modify-write that writes back what it reads: the next writer's
        // claim (an RMW) reads from it and synchronizes-with it, so the copy read none of its stores.
        const after = V8_X86_ORDERING ? Atomics.load(i32, versionIndex) : Atomics.add(i32, versionIndex, 0);
        if (after === before) {
          // A wait is over: forgotten (the same key and version come back after 2^31 writes of it).
          if (spins > 1000) this.stall.clear();
          return !emptied;
        }
      } else if (spins > 1000) {
        waitForWriter(this.stall, this.vector.layout.name, index, before);
      }
      this.retriedCount++;
    }
  }

  /** Reads that had to be retried because a write overlapped them (for monitoring). */
  get retried(): number {
    return this.retriedCount;
  }

  /** Releases the reader's table entry; a second close does nothing (the entry may be another reader's by then). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // SC store: the entry is free for a later reader in any thread.
    Atomics.store(this.i32, this.entry, 0);
  }
}

/**
 * A writer holds key `index` odd at `version`: nap (so that a descheduled writer gets the core
 * back), and once it has held it so for the poison timeout, throw a `PoisonedSlotError`.
 */
function waitForWriter(stall: SlotStall, layout: string, index: number, version: number): void {
  stall.begin(version, index);
  if (stall.expired()) {
    throw new PoisonedSlotError(
      `SeqlockVector of '${layout}': key ${index} has been half written for ${stall.timeoutMs} ms (its writer died, or is paused); reset(${index}) gives it back once its writer is known to be dead`,
      layout,
      index,
    );
  }
  Atomics.wait(stall.nap, 0, 0, 0.01);
}
