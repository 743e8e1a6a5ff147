import { ConfigError } from '../errors.js';
import type { BoundCodec } from './codec.js';
import type { Layout } from './layout.js';
import { TOTAL_STORE_ORDER } from './memory-order.js';
import type { QueueCore } from './queue-core.js';
import { QueueHeader as H } from './queue-header.js';
import type { Parker } from './signal.js';
import { AdaptiveWaitStrategy, type WaitCondition, type WaitStrategy } from './wait-strategy.js';

const { SLOT_PAYLOAD_BYTE } = H;

/**
 * Where a new consumer starts reading: `'head'`, what is published next; `'oldest'`, the
 * oldest message that cannot be overwritten before it is read (capacity - 1 back); a number,
 * that exact sequence, not beyond what was published (if the ring has moved past it, the first
 * poll jumps forward as after a lap and counts what it skipped as lost).
 */
export type ConsumerStart = 'head' | 'oldest' | number;

export interface ConsumerOptions {
  /** Default `'head'`. */
  readonly from?: ConsumerStart;
  /** How `take` waits when the queue is empty. Default: `AdaptiveWaitStrategy`. */
  readonly wait?: WaitStrategy;
  /**
   * What `take` parks on: the signal the producers wake (default: the queue's own), or a parker
   * built on it (`coreBudget.parker(queue.signal)`).
   */
  readonly signal?: Parker;
}

/**
 * One reader of a queue. Every consumer sees every message (broadcast), keeps its own position
 * and never slows the producer down. When the producer laps it, it jumps to half a ring behind
 * the head and adds everything it skipped to `lost`: it never returns a torn or stale message,
 * and it never loses a message without counting it.
 *
 * On the orderings argued next to each `Atomics` call: the ECMAScript memory model orders
 * plain accesses only through synchronizing pairs, so the arguments are made in the terms of
 * the hardware V8 compiles to — `Atomics.load` is a load-acquire (LDAR on ARM64, a plain load
 * on x86), `Atomics.store` a sequentially consistent store (STLR; XCHG), and V8 does not move
 * TypedArray accesses across them. Under those (documented, stable) compilations, a store-
 * release keeps earlier loads before it and a load-acquire after a store-release stays after
 * it, which is what the seqlock needs. On x86 two of those operations are not needed and are
 * plain accesses instead (see memory-order.ts).
 */
export class Consumer<M, E = null> implements WaitCondition {
  /** The envelope of the last message read (decoded into this object); `null` without one. */
  readonly envelope: E;
  private readonly core: QueueCore;
  private readonly codec: BoundCodec<M>;
  private readonly envelopeCodec: BoundCodec<E> | null;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly strategy: WaitStrategy;
  private readonly signal: Parker;
  /** Consumer table entry: Int32 index of POSITION, Float64 indices of RECEIVED and LOST. */
  private readonly positionIndex: number;
  private readonly receivedIndex: number;
  private readonly lostIndex: number;
  private readonly entry: number;
  private seq: number;
  /** The exact sequence of the next message (seq is its low 32 bits). */
  private next: number;
  private receivedCount = 0;
  private lostCount = 0;
  private released = false;

  /** @internal use `queue.consumer()`. */
  constructor(
    core: QueueCore,
    layout: Layout<M & object>,
    envelope: Layout<E & object> | null,
    options: ConsumerOptions = {},
  ) {
    this.core = core;
    this.codec = layout.bind(core.views);
    this.envelopeCodec = envelope ? envelope.bind(core.views) : null;
    this.envelope = (envelope ? envelope.create() : null) as E;
    this.i32 = core.views.i32;
    this.f64 = core.views.f64;
    this.strategy = options.wait ?? new AdaptiveWaitStrategy();
    this.signal = options.signal ?? core.signal;
    this.entry = claimEntry(core);
    const byte = core.consumerEntryByte(this.entry);
    this.positionIndex = (byte + H.CONSUMER_POSITION_BYTE) >> 2;
    this.receivedIndex = (byte + H.CONSUMER_RECEIVED_BYTE) >> 3;
    this.lostIndex = (byte + H.CONSUMER_LOST_BYTE) >> 3;
    this.next = startSequence(core, options.from ?? 'head');
    this.seq = this.next >>> 0;
    this.f64[this.receivedIndex] = 0;
    this.f64[this.lostIndex] = 0;
    // SC store: monitoring threads see where this consumer starts.
    Atomics.store(this.i32, this.positionIndex, this.seq | 0);
  }

  /**
   * Reads the next message into `out` and returns true, or returns false when there is none yet.
   * `out` is meaningful only after `true`. Never blocks, never throws, never allocates (beyond
   * a changed string or an i64 field).
   */
  poll(out: M): boolean {
    const core = this.core;
    const i32 = this.i32;
    // The slot's version is the only thing looked at: when the queue is empty, the consumer
    // waits on the very line the next message arrives in, so a hand-over is one cache line
    // transfer. (Reading the producer's head word first, as this did, added a second transfer:
    // one-way p50 770 → 260 ns, against 145–240 ns for a raw 64-byte hand-over, same run.)
    for (;;) {
      const seq = this.seq;
      const slot = core.slotsByte + (seq & core.seq.mask) * core.stride;
      const versionIndex = slot >> 2;
      const expected = core.seq.doneVersion(seq);
      // SC load (an acquire): if it reads `expected`, every message byte the producer wrote
      // before its release store of `expected` is visible to the reads below.
      const before = Atomics.load(i32, versionIndex);
      const distance = core.seq.compare(before, expected);
      if (distance < 0) return false;
      if (distance === 0) {
        if (this.envelopeCodec !== null) this.envelopeCodec.read(slot + SLOT_PAYLOAD_BYTE, this.envelope);
        this.codec.read(slot + core.messageByte, out);
        const next = (seq + 1) >>> 0;
        // Our position, for monitoring (lag is observable from other threads), and where
        // needed the fence that keeps the copy before the re-read of the version.
        if (TOTAL_STORE_ORDER) {
          // x86 keeps loads in order: the re-read below cannot pass the copy. A plain store.
          i32[this.positionIndex] = next | 0;
        } else {
          // SC store (a release): the plain message reads above cannot be satisfied after it,
          // and the SC load below cannot move before it (STLR then LDAR on ARM64). A fence-less
          // seqlock read does not guarantee that the re-read comes after the copy.
          Atomics.store(i32, this.positionIndex, next | 0);
        }
        // SC load: unchanged means no producer store to this slot overlapped the copy.
        if (Atomics.load(i32, versionIndex) === before) {
          this.seq = next;
          this.next++;
          this.f64[this.receivedIndex] = ++this.receivedCount;
          return true;
        }
      }
      // The slot holds (or is being overwritten with) a later lap: our message is gone.
      this.resynchronize(seq);
    }
  }

  /**
   * Like `poll`, but when the queue is empty waits with the consumer's wait strategy until a
   * message arrives, the queue is closed, or `timeoutMs` passes. Returns false in the last two cases.
   */
  take(out: M, timeoutMs = Number.POSITIVE_INFINITY): boolean {
    if (this.poll(out)) return true;
    while (this.strategy.wait(this, this.signal, timeoutMs)) {
      if (this.poll(out)) return true;
      if (this.core.closed) return this.poll(out);
    }
    return false;
  }

  /**
   * The cheap check a spinning waiter repeats: the next slot holds our message (or a later lap),
   * or the queue is closed. A read of the line the message arrives in: when it lands, the
   * waiter sees it with that one transfer, and `poll` finds the line already here.
   */
  ready(): boolean {
    return this.slotReady() || this.core.closed;
  }

  /** The next slot's version is done (or later) for our sequence. */
  private slotReady(): boolean {
    const core = this.core;
    const seq = this.seq;
    // SC load, though a plain one would do as a hint: it is repeated in spin loops, and an
    // optimizing compiler may reuse a plain load of the same element across iterations of a
    // loop that stores nothing; no compiler reuses an Atomics.load. Spinning, 10 ns is free.
    const version = Atomics.load(this.i32, (core.slotsByte + (seq & core.seq.mask) * core.stride) >> 2);
    return core.seq.compare(version, core.seq.doneVersion(seq)) >= 0;
  }

  /**
   * The exact check made after announcing a sleeper: the message is there (or a later lap: one
   * to recover from), or the queue is closed. A slot still being written does not count: its
   * producer loads the sleeper count after its store of `done` and wakes us (see Signal), so a
   * producer that died mid-write leaves a parked consumer, not a spinning one.
   */
  readyToPark(): boolean {
    const core = this.core;
    const seq = this.seq;
    const versionIndex = (core.slotsByte + (seq & core.seq.mask) * core.stride) >> 2;
    // SC load: the sleeper's half of the wake-up handshake (see Signal).
    const version = Atomics.load(this.i32, versionIndex);
    return core.seq.compare(version, core.seq.doneVersion(seq)) >= 0 || core.closed;
  }

  /** Messages this consumer received. */
  get received(): number {
    return this.receivedCount;
  }

  /** Messages skipped because the producer lapped this consumer. */
  get lost(): number {
    return this.lostCount;
  }

  /** Next sequence this consumer will read (mod 2^32). */
  get position(): number {
    return this.seq;
  }

  /**
   * The exact sequence of the next message this consumer will read; after a successful poll,
   * `sequence - 1` is the sequence of the message just read (its id in its queue). Exact for a
   * single-producer queue; for a multi-producer queue, exact below 2^32 messages.
   */
  get sequence(): number {
    return this.next;
  }

  /** Messages published but not read yet (from the producer's head hint). */
  get lag(): number {
    return Math.max(0, (this.core.head() - this.seq) | 0);
  }

  /** Index of this consumer in the queue's consumer table (what `queue.stats()` lists). */
  get index(): number {
    return this.entry;
  }

  /** Releases the consumer's table entry. The consumer must not be used afterwards. */
  close(): void {
    if (this.released) return;
    this.released = true;
    // SC store: a later `claimEntry` CAS in any thread sees the entry free.
    Atomics.store(this.i32, this.core.consumerEntryByte(this.entry) >> 2, 0);
  }

  /**
   * We were lapped at `seq`. Resume half a ring behind the producer: far enough back to read
   * the newest messages, far enough ahead not to be lapped again at once. Everything between
   * is counted as lost.
   */
  private resynchronize(seq: number): void {
    const capacity = this.core.seq.capacity;
    let ahead = (this.core.head() - seq) | 0;
    // The slot we read already holds a later lap, so the producer is at least a ring ahead,
    // whatever the head hint (which may trail) says.
    if (ahead < capacity) ahead = capacity;
    const skip = ahead - (capacity >> 1);
    this.seq = (seq + skip) >>> 0;
    this.next += skip;
    this.lostCount += skip;
    // Plain store: LOST is a monitoring figure, written only on this rare path.
    this.f64[this.lostIndex] = this.lostCount;
  }
}

function claimEntry(core: QueueCore): number {
  for (let i = 0; i < core.maxConsumers; i++) {
    // SC compare-exchange: exactly one consumer, in any thread, takes a free entry.
    if (Atomics.compareExchange(core.views.i32, core.consumerEntryByte(i) >> 2, 0, 1) === 0) return i;
  }
  throw new ConfigError(
    `the queue already has ${core.maxConsumers} consumers (raise maxConsumers, or close consumers you no longer use)`,
  );
}

function startSequence(core: QueueCore, from: ConsumerStart): number {
  const total = core.published();
  if (typeof from === 'number') {
    if (!Number.isSafeInteger(from) || from < 0 || from > total) {
      throw new ConfigError(
        `consumer option 'from' must be a sequence from 0 to ${total} (what was published so far), got ${from}`,
      );
    }
    return from;
  }
  if (from !== 'head' && from !== 'oldest') {
    throw new ConfigError(
      `consumer option 'from' must be 'head', 'oldest' or a sequence, got ${String(from)}`,
    );
  }
  if (from === 'head') return total;
  return total - Math.min(total, core.seq.capacity - 1);
}
