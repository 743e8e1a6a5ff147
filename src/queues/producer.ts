import { ConfigError } from '../errors.js';
import type { BoundCodec } from './codec.js';
import type { Layout } from './layout.js';
import { TOTAL_STORE_ORDER } from './memory-order.js';
import type { QueueCore } from './queue-core.js';
import { QueueHeader as H } from './queue-header.js';
import type { Signal } from './signal.js';

// Header indices as module constants: the hot path reads no namespace object.
const { PUBLISHED_F64, CLAIM, SLOT_PAYLOAD_BYTE } = H;

/** What every producer offers; `publish` is the whole hot path. */
export interface QueueProducer<M, E = unknown> {
  /**
   * Publishes one message (and the current `envelope`, if the queue has one) and returns its
   * sequence (mod 2^32). Never waits for a consumer. Throws a `LayoutError` naming the field,
   * before touching the queue, if `msg` does not fit.
   */
  publish(msg: M): number;
  /** The envelope written with every message; fill it before `publish`. `null` without one. */
  readonly envelope: E;
  /** Messages published through this producer. */
  readonly published: number;
  /** Gives the producer role back (a single-producer queue accepts a new producer after this). */
  close(): void;
}

export interface ProducerOptions {
  /**
   * The signal whose sleepers this producer wakes (default: the queue's own). Several queues
   * that share one signal let a thread that consumes all of them park on a single word.
   */
  readonly signal?: Signal;
  /**
   * false: this producer never wakes a sleeper, and its consumers must poll (or park with a
   * timeout). It then skips the wake-up handshake: on x86 its done store is a plain store, ~12 ns
   * less per publish. The spine's timing queues are written this way: their readers poll.
   */
  readonly wakes?: boolean;
}

/** What both producer kinds share: codecs, the envelope, and the wake-up target. */
abstract class ProducerBase<M, E> {
  readonly envelope: E;
  protected readonly core: QueueCore;
  /** Replaced by one that refuses every message once the producer is closed (see `close`). */
  protected codec: BoundCodec<M>;
  protected readonly envelopeCodec: BoundCodec<E> | null;
  protected readonly i32: Int32Array;
  protected readonly signal: Signal;
  /** The signal's words and the index of its sleeper count, read on every publish. */
  protected readonly signalWords: Int32Array;
  protected readonly sleepersIndex: number;
  protected readonly wakes: boolean;
  protected count = 0;

  constructor(
    core: QueueCore,
    layout: Layout<M & object>,
    envelope: Layout<E & object> | null,
    options: ProducerOptions,
  ) {
    this.core = core;
    this.codec = layout.bind(core.views);
    this.envelopeCodec = envelope ? envelope.bind(core.views) : null;
    this.envelope = (envelope ? envelope.create() : null) as E;
    this.i32 = core.views.i32;
    this.signal = options.signal ?? core.signal;
    this.signalWords = this.signal.words;
    this.sleepersIndex = this.signal.sleepersIndex;
    this.wakes = options.wakes !== false;
  }

  /**
   * Makes the slot's done version visible after its payload; returns the sleeper count to wake
   * (0 for a producer that does not wake).
   */
  protected finish(i32: Int32Array, versionIndex: number, done: number): number {
    if (!this.wakes) {
      // x86 keeps stores in program order and V8 does not reorder them: a plain store is a
      // release there. Elsewhere an SC store (STLR).
      if (TOTAL_STORE_ORDER) i32[versionIndex] = done;
      else Atomics.store(i32, versionIndex, done);
      return 0;
    }
    // SC store (a release, and on x86 an XCHG: a full fence): every payload byte above is
    // visible to a reader that sees `done`.
    Atomics.store(i32, versionIndex, done);
    // The sleeper count, loaded after the store of `done`: the producer half of the wake-up
    // handshake (see Signal). A consumer that announced itself before this load is woken by the
    // caller; one that announces later sees `done` in its re-check and does not sleep. On x86 the
    // XCHG above already orders this load after the store, and a plain load costs ~2 ns where
    // `Atomics.load` costs ~10 (V8 does not inline it); V8 cannot move a load above an Atomics
    // store, nor reuse an earlier load across one. Elsewhere, an SC load.
    return TOTAL_STORE_ORDER
      ? this.signalWords[this.sleepersIndex]!
      : Atomics.load(this.signalWords, this.sleepersIndex);
  }

  /** Copies envelope and message into a slot whose version is odd. Never throws. */
  protected writePayload(slot: number, msg: M): void {
    if (this.envelopeCodec !== null) this.envelopeCodec.write(slot + SLOT_PAYLOAD_BYTE, this.envelope);
    this.codec.write(slot + this.core.messageByte, msg);
  }

  get published(): number {
    return this.count;
  }
}

/**
 * The single producer of a queue. Publishing is a seqlock write of the slot the sequence maps to:
 * the version goes odd, the message is copied, the version goes even. The producer never looks
 * at consumers: a consumer that falls a lap behind finds out by itself and counts its loss.
 */
export class Producer<M, E = null> extends ProducerBase<M, E> implements QueueProducer<M, E> {
  private readonly f64: Float64Array;
  // Geometry copied into fields, read on every publish.
  private readonly slotsByte: number;
  private readonly stride: number;
  private readonly mask: number;
  private seq: number;
  private total: number;
  private closed = false;

  /** @internal use `queue.producer()`. */
  constructor(
    core: QueueCore,
    layout: Layout<M & object>,
    envelope: Layout<E & object> | null,
    options: ProducerOptions = {},
  ) {
    super(core, layout, envelope, options);
    this.f64 = core.views.f64;
    this.slotsByte = core.slotsByte;
    this.stride = core.stride;
    this.mask = core.seq.mask;
    // Resume after whatever an earlier producer of this queue published (plain read: the role
    // was handed over through the SC compare-exchange that made us the producer).
    this.total = this.f64[PUBLISHED_F64]!;
    this.seq = this.total >>> 0;
  }

  publish(msg: M): number {
    // Validation throws before the slot is touched: a slot is never left odd by a bad message.
    // A closed producer's codec refuses every message, so the hot path tests no flag.
    this.codec.check(msg);
    const i32 = this.i32;
    const seq = this.seq;
    const slot = this.slotsByte + (seq & this.mask) * this.stride;
    const versionIndex = slot >> 2;
    const done = this.core.seq.doneVersion(seq);
    const writing = this.core.seq.writingVersion(done);
    // The odd version must be visible before any message byte (see memory-order.ts).
    if (TOTAL_STORE_ORDER) {
      // x86: stores become visible in program order; a plain store is enough.
      i32[versionIndex] = writing;
    } else {
      // SC store (STLR on ARM64), then an SC load (LDAR) of the same word: STLR→LDAR stays in
      // order, and no later access, the plain message stores included, moves above an LDAR.
      Atomics.store(i32, versionIndex, writing);
      Atomics.load(i32, versionIndex);
    }
    this.writePayload(slot, msg);
    const sleeping = this.finish(i32, versionIndex, done);
    const next = (seq + 1) >>> 0;
    this.seq = next;
    // Plain store of the exact count, for monitoring, new consumers' start and lapped consumers'
    // resynchronization (the slot versions are the protocol; this is a hint for them).
    this.f64[PUBLISHED_F64] = ++this.total;
    this.count++;
    if (sleeping !== 0) this.signal.wakeAll();
    return seq;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.codec = closedCodec(this.core.layoutName);
    // SC store: the next producer's attach (a CAS on the same word) sees the role released.
    Atomics.store(this.i32, H.PRODUCER_ATTACHED, 0);
  }
}

/**
 * One of several producers of a multi-producer queue. Each publish claims a sequence with an
 * atomic add, so producers never write the same sequence; a producer whose slot still holds
 * the previous lap, claimed by a slower producer that has not finished writing it, waits for
 * it (producers wait on producers, never on consumers). A producer that dies between its claim
 * and its write blocks the producers that reach that slot a lap later.
 */
export class MultiProducer<M, E = null> extends ProducerBase<M, E> implements QueueProducer<M, E> {
  /** A private word to nap on while a slower producer finishes the slot this one needs. */
  private readonly nap = new Int32Array(new SharedArrayBuffer(4));

  publish(msg: M): number {
    this.codec.check(msg);
    const core = this.core;
    const i32 = this.i32;
    // SC read-modify-write: each sequence is handed to exactly one producer.
    const seq = Atomics.add(i32, CLAIM, 1) >>> 0;
    const slot = core.slotsByte + (seq & core.seq.mask) * core.stride;
    const versionIndex = slot >> 2;
    const done = core.seq.doneVersion(seq);
    const previous = core.seq.previousVersion(done);
    const writing = core.seq.writingVersion(done);
    // SC compare-exchange from "previous lap done" to odd: fails while a producer one lap
    // behind is still writing this slot, and only one producer can win it.
    for (let spins = 0; Atomics.compareExchange(i32, versionIndex, previous, writing) !== previous; spins++) {
      // A producer one lap behind has claimed this slot and not finished (or not started)
      // writing it. Spin briefly, then nap so that a descheduled writer gets the core back.
      if (spins > 1000) Atomics.wait(this.nap, 0, 0, 0.01);
    }
    // The odd version must be visible before any message byte. On x86 the compare-exchange is a
    // LOCK CMPXCHG, a full fence. On ARM64 its store half is only a release, which later stores
    // may pass; an SC load (LDAR) after it stays after it (release→acquire order) and keeps the
    // payload stores below after itself.
    if (!TOTAL_STORE_ORDER) Atomics.load(i32, versionIndex);
    this.writePayload(slot, msg);
    const sleeping = this.finish(i32, versionIndex, done);
    this.count++;
    if (sleeping !== 0) this.signal.wakeAll();
    return seq;
  }

  close(): void {}
}

/** The codec of a closed producer: its check throws, so nothing is ever written. */
function closedCodec<M>(layoutName: string): BoundCodec<M> {
  const refuse = (): never => {
    throw new ConfigError(`this producer of '${layoutName}' is closed`);
  };
  return { check: refuse, write: refuse, read: refuse };
}
