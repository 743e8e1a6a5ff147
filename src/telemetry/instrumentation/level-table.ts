import { ConfigError } from '../../errors.js';
import { asUtf8, utf8Length } from '../../queues/codec.js';
import { MAX_STRING_BYTES } from './events.js';
import { DEFAULT_THRESHOLD } from './levels.js';

/**
 * Log thresholds per target, shared by every thread of a process that was given its buffer:
 * `setLevel` in any of them takes effect in all. Int32 word indices unless noted.
 *
 * ```
 * byte 0    ┌ MAGIC FORMAT SLOTS LOCK (1 while a thread adds a target or sets a level)         ┐
 *           │ COUNT (slots taken: names below it are readable)                                 │
 * byte 64   ├ THRESHOLDS: SLOTS words. Slot 0 is the default: a target without a slot of its   │
 *           │ own reads it. Read with a plain load by every log call (see `Logger`)            │
 *           ├ EXPLICIT: SLOTS words, 1 where `setLevel` named the target (else it follows the  │
 *           │ default) · NAME_LENGTH: SLOTS words                                              │
 *           ├ NAMES: SLOTS × 256 bytes of UTF-8                                                │
 *           └──────────────────────────────────────────────────────────────────────────────────┘
 * ```
 *
 * Adding a target and setting a level take LOCK (a compare-exchange; a thread that finds it
 * taken waits on it): both are rare and off the hot path, and serializing them keeps one slot per
 * name and no lost update between a new target and a new default. A log call takes no lock: it
 * reads its target's threshold with a plain load (see `Logger.info`).
 */
const L = {
  MAGIC: 0,
  FORMAT: 1,
  SLOTS: 2,
  LOCK: 3,
  COUNT: 4,
  THRESHOLDS: 16,
} as const;
const MAGIC = 0x64726c76; // 'drlv'
const FORMAT = 1;
const NAME_BYTES = 256;
/** How long a thread waits for the lock before it gives up (a holder that died mid-update). */
const LOCK_TIMEOUT_MS = 2000;

export class LevelTable {
  readonly buffer: SharedArrayBuffer;
  /** Every slot's threshold: what a logger reads on each call. */
  readonly thresholds: Int32Array;
  private readonly i32: Int32Array;
  private readonly slots: number;
  private readonly explicitAt: number;
  private readonly lengthAt: number;
  private readonly names: Buffer;
  private readonly namesAt: number;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.i32 = new Int32Array(buffer);
    this.slots = this.i32[L.SLOTS]!;
    this.thresholds = new Int32Array(buffer, L.THRESHOLDS * 4, this.slots);
    this.explicitAt = L.THRESHOLDS + this.slots;
    this.lengthAt = this.explicitAt + this.slots;
    this.namesAt = (this.lengthAt + this.slots) * 4;
    this.names = Buffer.from(buffer, this.namesAt, this.slots * NAME_BYTES);
  }

  /** A new table of `slots` slots (the default's included), every threshold at info. */
  static create(slots = 256): LevelTable {
    if (!Number.isInteger(slots) || slots < 1 || slots > 65_536) {
      throw new ConfigError(`a level table needs 1 to 65536 slots, got ${slots}`);
    }
    const buffer = new SharedArrayBuffer((L.THRESHOLDS + 3 * slots) * 4 + slots * NAME_BYTES);
    const i32 = new Int32Array(buffer);
    // Plain stores before the buffer is shared with any other thread (postMessage orders them).
    i32[L.MAGIC] = MAGIC;
    i32[L.FORMAT] = FORMAT;
    i32[L.SLOTS] = slots;
    i32[L.COUNT] = 1;
    i32[L.THRESHOLDS] = DEFAULT_THRESHOLD;
    return new LevelTable(buffer);
  }

  static attach(buffer: unknown): LevelTable {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < L.THRESHOLDS * 4) {
      throw new ConfigError('instrumentation buffers: `levels` is not a SharedArrayBuffer of a level table');
    }
    const i32 = new Int32Array(buffer);
    const slots = i32[L.SLOTS]!;
    if (
      i32[L.MAGIC] !== MAGIC ||
      i32[L.FORMAT] !== FORMAT ||
      buffer.byteLength !== (L.THRESHOLDS + 3 * slots) * 4 + slots * NAME_BYTES
    ) {
      throw new ConfigError('instrumentation buffers: `levels` is not a level table of this version');
    }
    return new LevelTable(buffer);
  }

  /**
   * The slot whose threshold `target`'s logger reads: its own (added now if new, following the
   * default), or slot 0, the default's, when the table is full, the name too long, or the lock
   * not had in time.
   */
  slotOf(name: string): number {
    // As its slot stores it: a lone surrogate is U+FFFD there (the raw name never matched its slot).
    const target = asUtf8(name);
    const seen = this.count();
    const found = this.find(target, 1, seen);
    if (found > 0 || utf8Length(target) > MAX_STRING_BYTES) return Math.max(found, 0);
    if (!this.lock()) return 0;
    try {
      return this.findOrAdd(target, seen);
    } finally {
      this.unlock();
    }
  }

  /** Sets `target`'s threshold, or the default's (`*`): targets that were not set follow it. */
  set(name: string, threshold: number): void {
    const target = asUtf8(name);
    if (target !== '*' && utf8Length(target) > MAX_STRING_BYTES) {
      throw new ConfigError(
        `a target name has at most ${MAX_STRING_BYTES} UTF-8 bytes: '${target.slice(0, 40)}…'`,
      );
    }
    if (!this.lock()) {
      throw new ConfigError(
        `the level table stayed locked for ${LOCK_TIMEOUT_MS} ms (a thread died holding it)`,
      );
    }
    try {
      if (target === '*') {
        // SC store of the default: an SC load (`threshold`) sees it at once, a logger's plain load soon.
        Atomics.store(this.thresholds, 0, threshold);
        const count = this.count();
        for (let slot = 1; slot < count; slot++) {
          if (this.i32[this.explicitAt + slot] !== 0) continue;
          // SC store of a target that follows the default: seen as the default's is.
          Atomics.store(this.thresholds, slot, threshold);
        }
        return;
      }
      const slot = this.findOrAdd(target, 1);
      if (slot === 0) throw new ConfigError(`the level table is full (${this.slots - 1} targets)`);
      // Plain store under the lock: only holders of the lock read EXPLICIT.
      this.i32[this.explicitAt + slot] = 1;
      // SC store: see above.
      Atomics.store(this.thresholds, slot, threshold);
    } finally {
      this.unlock();
    }
  }

  /** The threshold `target` has now (the default's if it has no slot). */
  threshold(target: string): number {
    const slot = target === '*' ? 0 : Math.max(this.find(asUtf8(target), 1, this.count()), 0);
    // SC load: the latest threshold set.
    return Atomics.load(this.thresholds, slot);
  }

  private count(): number {
    // SC load: synchronizes-with the SC store that published the last slot, whose name is whole.
    return Atomics.load(this.i32, L.COUNT);
  }

  /** The slot named `target` among slots from..to - 1, or -1. */
  private find(target: string, from: number, to: number): number {
    for (let slot = from; slot < to; slot++) {
      const at = slot * NAME_BYTES;
      const length = this.i32[this.lengthAt + slot]!;
      if (this.names.toString('utf8', at, at + length) === target) return slot;
    }
    return -1;
  }

  /** Under the lock: the slot named `target`, added if missing; 0 when the table is full. */
  private findOrAdd(target: string, seen: number): number {
    const count = this.count();
    const found = this.find(target, seen, count);
    if (found > 0) return found;
    if (count >= this.slots) return 0;
    const length = this.names.write(target, count * NAME_BYTES, NAME_BYTES, 'utf8');
    this.i32[this.lengthAt + count] = length;
    // SC load of the default: a new target follows it (set under the same lock, so not stale).
    const threshold = Atomics.load(this.thresholds, 0);
    // SC store: loggers read it with plain loads once COUNT below publishes the slot.
    Atomics.store(this.thresholds, count, threshold);
    // SC store of the count: the name, its length and its threshold happen-before a reader's SC
    // load of COUNT that reads it.
    Atomics.store(this.i32, L.COUNT, count + 1);
    return count;
  }

  private lock(): boolean {
    const deadline = performance.now() + LOCK_TIMEOUT_MS;
    // SC compare-exchange: acquires the lock; the previous holder's stores, made before its SC
    // store of 0, happen-before what this thread does next.
    while (Atomics.compareExchange(this.i32, L.LOCK, 0, 1) !== 0) {
      if (performance.now() > deadline) return false;
      // Sleeps while the word is still 1 (a holder exists), at most 1 ms per round.
      Atomics.wait(this.i32, L.LOCK, 1, 1);
    }
    return true;
  }

  private unlock(): void {
    // SC store: releases the lock; the next holder's compare-exchange reads it.
    Atomics.store(this.i32, L.LOCK, 0);
    // Wakes one thread waiting for the lock, if any.
    Atomics.notify(this.i32, L.LOCK, 1);
  }
}
