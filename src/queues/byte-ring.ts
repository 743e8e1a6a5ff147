/// <reference lib="es2024.sharedmemory" />
import { ConfigError } from '../errors.js';

/**
 * Where everything lives in a byte ring's SharedArrayBuffer (Int32 word indices). The writer's
 * and the reader's words sit on cache lines of their own.
 *
 * ```
 * byte 0    ┌ line 0: the writer's ─────────────────────────────────────────────────────────┐
 * │ HEAD (bytes written, mod 2^32) CLOSED (1: no more records) CAPACITY (data bytes)         │
 * byte 64   ├ line 1: the reader's ─────────────────────────────────────────────────────────┤
 * │ TAIL (bytes read, mod 2^32)                                                              │
 * byte 128  ├ data: CAPACITY bytes of records ───────────────────────────────────────────────┤
 * │ +0 LENGTH (u32, bytes of payload) +4 payload … padded to a multiple of 8 (it may wrap    │
 * │ around the end of the data; its LENGTH word never does)                                  │
 * └──────────────────────────────────────────────────────────────────────────────────────────┘
 * ```
 */
export const ByteRingHeader = {
  HEAD: 0,
  CLOSED: 1,
  CAPACITY: 2,
  TAIL: 16,
  /** Byte offset of the data. */
  DATA_BYTE: 128,
  /** Bytes before a record's payload (its length). */
  LENGTH_BYTES: 4,
  /** Records start on multiples of this. */
  ALIGN: 8,
} as const;

/** Smallest and largest data capacities, in bytes (positions are kept mod 2^32). */
const MIN_CAPACITY = 64;
const MAX_CAPACITY = 2 ** 30;

/**
 * A lossless single-producer single-consumer ring of variable-length records (byte arrays) over
 * a SharedArrayBuffer: the writer gets `false` when a record does not fit yet, never overwrites
 * what the reader has not read, and the reader gets each record once, whole, in order.
 *
 * Correct by the ECMAScript memory model, on every CPU: the record bytes are plain (Unordered)
 * accesses, and each is ordered by the SC store and load of one position word. The writer copies
 * a record in, then SC-stores HEAD; a reader whose SC load of HEAD reads that store (or a later
 * one) is synchronized with it, so its plain reads of the record happen after the writes. The
 * reader copies a record out, then SC-stores TAIL; the writer's SC load of TAIL that reads it is
 * synchronized with it, so the writer reuses those bytes only after the reader's copy. No byte
 * is ever accessed by both sides without one of these edges between them: no data race.
 *
 * @example
 * const ring = ByteRing.create(1 << 20);
 * ring.tryWrite(bytes);                                  // false: full, try again later
 * const reader = ByteRing.attach(ring.buffer);           // e.g. in a worker
 * const into = new Uint8Array(reader.maxRecord);
 * const n = reader.tryRead(into);                        // -1: empty
 * await ring.roomFreed(50);                              // writer: bounded wait for room
 */
export class ByteRing {
  readonly buffer: SharedArrayBuffer;
  /** Data bytes (a power of two). */
  readonly capacity: number;
  /** The largest record the ring takes: a longer one is refused by `tryWrite`, whole. */
  readonly maxRecord: number;
  private readonly words: Int32Array;
  private readonly data: Uint8Array;
  private readonly lengths: DataView;
  /** This side's own position (HEAD for the writer, TAIL for the reader): no one else stores it. */
  private head: number;
  private tail: number;
  /** The writer's: the TAIL its last refused `tryWrite` saw (what `roomFreed` waits past). */
  private full = 0;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.words = new Int32Array(buffer, 0, ByteRingHeader.DATA_BYTE / 4);
    this.capacity = this.words[ByteRingHeader.CAPACITY]!;
    this.data = new Uint8Array(buffer, ByteRingHeader.DATA_BYTE, this.capacity);
    this.lengths = new DataView(buffer, ByteRingHeader.DATA_BYTE, this.capacity);
    this.maxRecord = this.capacity - ByteRingHeader.ALIGN;
    // SC loads: where each side stands when this handle is made (a handle reads or writes, not both).
    this.head = Atomics.load(this.words, ByteRingHeader.HEAD);
    // As above, for the reader's position.
    this.tail = Atomics.load(this.words, ByteRingHeader.TAIL);
  }

  /** A new, empty ring of `capacity` data bytes (a power of two, 64 B to 1 GiB). */
  static create(capacity: number): ByteRing {
    if (
      !Number.isInteger(capacity) ||
      capacity < MIN_CAPACITY ||
      capacity > MAX_CAPACITY ||
      (capacity & (capacity - 1)) !== 0
    ) {
      throw new ConfigError(
        `a byte ring's capacity must be a power of two from ${MIN_CAPACITY} to ${MAX_CAPACITY} bytes, got ${capacity}`,
      );
    }
    const buffer = new SharedArrayBuffer(ByteRingHeader.DATA_BYTE + capacity);
    // Plain store: the buffer is not shared yet; posting it to a worker orders it before any read there.
    new Int32Array(buffer)[ByteRingHeader.CAPACITY] = capacity;
    return new ByteRing(buffer);
  }

  /** The same ring, from its buffer (in another thread). */
  static attach(buffer: SharedArrayBuffer): ByteRing {
    const capacity =
      buffer instanceof SharedArrayBuffer && buffer.byteLength >= ByteRingHeader.DATA_BYTE
        ? new Int32Array(buffer, 0, ByteRingHeader.DATA_BYTE / 4)[ByteRingHeader.CAPACITY]!
        : 0;
    // A power of two, as `create` makes it: the ring's masks are capacity - 1.
    if (
      buffer.byteLength !== ByteRingHeader.DATA_BYTE + capacity ||
      capacity < MIN_CAPACITY ||
      capacity > MAX_CAPACITY ||
      (capacity & (capacity - 1)) !== 0
    ) {
      throw new ConfigError(`not a byte ring's buffer (${buffer.byteLength} bytes)`);
    }
    return new ByteRing(buffer);
  }

  /** Bytes a record of `length` takes in the ring: its length word and payload, aligned. */
  static footprint(length: number): number {
    const { LENGTH_BYTES, ALIGN } = ByteRingHeader;
    return Math.ceil((LENGTH_BYTES + length) / ALIGN) * ALIGN;
  }

  /**
   * Writer: appends `record` whole if there is room, and returns true; false when the reader has
   * not freed enough yet (nothing written). A record longer than `maxRecord` can never fit: a
   * `ConfigError` saying so. Writing after `close` is refused too.
   */
  tryWrite(record: Uint8Array): boolean {
    if (record.length > this.maxRecord) {
      throw new ConfigError(
        `a record of ${record.length} bytes does not fit a byte ring of ${this.capacity} bytes (at most ${this.maxRecord})`,
      );
    }
    // SC load (not for ordering here: only the writer stores CLOSED).
    if (Atomics.load(this.words, ByteRingHeader.CLOSED) !== 0)
      throw new ConfigError('the byte ring is closed');
    const need = ByteRing.footprint(record.length);
    // SC load of the reader's TAIL: synchronizes with its store, so its copies out of the bytes
    // it freed happen before the plain writes below.
    const tail = Atomics.load(this.words, ByteRingHeader.TAIL);
    const used = (this.head - tail) >>> 0;
    if (this.capacity - used < need) {
      this.full = tail;
      return false;
    }
    const at = this.head & (this.capacity - 1);
    this.lengths.setUint32(at, record.length, true);
    this.copyIn(record, (at + ByteRingHeader.LENGTH_BYTES) & (this.capacity - 1));
    this.head = (this.head + need) | 0;
    // SC store of HEAD after the record's plain writes: a reader whose SC load reads it sees them.
    Atomics.store(this.words, ByteRingHeader.HEAD, this.head);
    return true;
  }

  /** Writer: no record follows; the reader sees `drained` once it has read the last one. */
  close(): void {
    // SC store after the last HEAD store: a reader that loads CLOSED = 1 and then HEAD sees the final HEAD.
    Atomics.store(this.words, ByteRingHeader.CLOSED, 1);
  }

  /**
   * Reader: copies the next record into `into` and returns its length, or -1 when there is none
   * yet. `into` must hold `maxRecord` bytes (or the longest record written): a shorter one gets a
   * `ConfigError` and the record stays.
   */
  tryRead(into: Uint8Array): number {
    // SC load of HEAD: synchronizes with the writer's store, so the record's bytes are visible to
    // the plain reads below.
    const head = Atomics.load(this.words, ByteRingHeader.HEAD);
    if (head === this.tail) return -1;
    const at = this.tail & (this.capacity - 1);
    const length = this.lengths.getUint32(at, true);
    if (length > into.length) {
      throw new ConfigError(`a record of ${length} bytes does not fit a buffer of ${into.length}`);
    }
    this.copyOut(into, (at + ByteRingHeader.LENGTH_BYTES) & (this.capacity - 1), length);
    this.tail = (this.tail + ByteRing.footprint(length)) | 0;
    // SC store of TAIL after the copy: the writer's SC load that reads it reuses the bytes only after.
    Atomics.store(this.words, ByteRingHeader.TAIL, this.tail);
    // Wakes a writer waiting for room (`roomFreed`). Once per record, and a record holds many
    // messages: no count of sleepers is worth keeping to skip it.
    Atomics.notify(this.words, ByteRingHeader.TAIL);
    return length;
  }

  /** Reader: true once the writer closed the ring and every record was read. */
  get drained(): boolean {
    // SC load of CLOSED first: if it reads 1, the HEAD loaded next is the final one (see `close`).
    const closed = Atomics.load(this.words, ByteRingHeader.CLOSED) !== 0;
    // SC load, after CLOSED in program order (and so in the SC total order).
    return closed && Atomics.load(this.words, ByteRingHeader.HEAD) === this.tail;
  }

  /** Bytes written and not yet read (for monitoring; a moment's view). */
  get used(): number {
    // SC loads: each a recent value; the difference is exact only when neither side moves.
    return (
      (Atomics.load(this.words, ByteRingHeader.HEAD) - Atomics.load(this.words, ByteRingHeader.TAIL)) >>> 0
    );
  }

  /**
   * Writer, on a thread that must not block (the main thread): resolves once the reader has read
   * a record since `tryWrite` last returned false, or after `timeoutMs`, whichever is first. The
   * caller tries again and decides whether to keep waiting: this never waits unbounded.
   */
  async roomFreed(timeoutMs: number): Promise<void> {
    // Parks while TAIL still holds what the failed tryWrite read (compared atomically, so a record
    // read since returns at once), until the reader's notify on TAIL or the timeout.
    const wait = Atomics.waitAsync(this.words, ByteRingHeader.TAIL, this.full, timeoutMs);
    if (!wait.async) return;
    // A timer of the event loop's own as well: Node does not count a pending waitAsync as work,
    // and a process with nothing else to do would exit in the middle of the wait.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([wait.value, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private copyIn(record: Uint8Array, at: number): void {
    const first = Math.min(record.length, this.capacity - at);
    this.data.set(record.subarray(0, first), at);
    if (first < record.length) this.data.set(record.subarray(first), 0);
  }

  private copyOut(into: Uint8Array, at: number, length: number): void {
    const first = Math.min(length, this.capacity - at);
    into.set(this.data.subarray(at, at + first), 0);
    if (first < length) into.set(this.data.subarray(0, length - first), first);
  }
}
