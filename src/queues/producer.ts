import type { BoundCodec } from './codec.js';
import type { QueueCore } from './queue-core.js';
import { QueueHeader as H } from './queue-header.js';

// Header indices as module constants: the hot path reads no namespace object.
const { HEAD, PUBLISHED_F64, SLEEPERS, CLAIM, SLOT_MESSAGE_BYTE } = H;

/** What every producer offers; `publish` is the whole hot path. */
export interface QueueProducer<M> {
  /**
   * Publishes one message and returns its sequence (mod 2^32). Never waits for a consumer.
   * Throws a `LayoutError` naming the field, before touching the queue, if `msg` does not fit.
   */
  publish(msg: M): number;
  /** Messages published through this producer. */
  readonly published: number;
  /** Gives the producer role back (a single-producer queue accepts a new producer after this). */
  close(): void;
}

/**
 * The single producer of a queue. Publishing is a seqlock write of the slot the sequence maps to:
 * the version goes odd, the message is copied, the version goes even. The producer never looks
 * at consumers: a consumer that falls a lap behind finds out by itself and counts its loss.
 */
export class Producer<M> implements QueueProducer<M> {
  private readonly core: QueueCore;
  private readonly codec: BoundCodec<M>;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  // Geometry copied into fields: the hot path reads no object but `this`.
  private readonly slotsByte: number;
  private readonly stride: number;
  private readonly mask: number;
  private seq: number;
  private count = 0;
  private total: number;
  private closed = false;

  /** @internal use `queue.producer()`. */
  constructor(core: QueueCore, codec: BoundCodec<M>) {
    this.core = core;
    this.codec = codec;
    this.i32 = core.views.i32;
    this.f64 = core.views.f64;
    this.slotsByte = core.slotsByte;
    this.stride = core.stride;
    this.mask = core.seq.mask;
    // SC load: resume after whatever an earlier producer of this queue published.
    this.seq = Atomics.load(this.i32, H.HEAD) >>> 0;
    this.total = this.f64[H.PUBLISHED_F64]!;
  }

  publish(msg: M): number {
    // Validation throws before the slot is touched: a slot is never left odd by a bad message.
    this.codec.check(msg);
    const i32 = this.i32;
    const seq = this.seq;
    const slot = this.slotsByte + (seq & this.mask) * this.stride;
    const versionIndex = slot >> 2;
    const done = this.core.seq.doneVersion(seq);
    // SC store of the odd version: a reader that sees it, or anything written after it, knows
    // the slot is being overwritten.
    Atomics.store(i32, versionIndex, this.core.seq.writingVersion(done));
    // SC load of the sleeper count, doing two jobs. As a fence: an acquire load keeps the plain
    // message stores below after it, and SC store→load order keeps it after the odd store
    // (on ARM64, STLR then LDAR), so no message byte is visible before the odd version.
    // As the producer half of the wake-up handshake (see Signal): a consumer that announced
    // itself before this load is woken below; one that announces later sees the odd version.
    const sleeping = Atomics.load(i32, SLEEPERS);
    this.codec.write(slot + SLOT_MESSAGE_BYTE, msg);
    // SC store (a release): every message byte above is visible to a reader that sees `done`.
    Atomics.store(i32, versionIndex, done);
    const next = (seq + 1) >>> 0;
    this.seq = next;
    // Plain stores: HEAD is a hint for consumers that start or resynchronize (the slot
    // versions are the protocol), PUBLISHED is for monitoring. Neither needs ordering.
    i32[HEAD] = next;
    this.f64[PUBLISHED_F64] = ++this.total;
    this.count++;
    if (sleeping !== 0) this.core.signal.wakeAll();
    return seq;
  }

  get published(): number {
    return this.count;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // SC store: the next producer's attach (a CAS on the same word) sees the role released.
    Atomics.store(this.i32, H.PRODUCER_ATTACHED, 0);
  }
}

/**
 * One of several producers of a multi-producer queue. Each publish claims a sequence with an
 * atomic add, so producers never write the same sequence; a producer whose slot still holds
 * the previous lap being written by a slower producer waits for it (producers wait on
 * producers, never on consumers).
 */
export class MultiProducer<M> implements QueueProducer<M> {
  private readonly core: QueueCore;
  private readonly codec: BoundCodec<M>;
  private readonly i32: Int32Array;
  private count = 0;

  /** @internal use `queue.producer()`. */
  constructor(core: QueueCore, codec: BoundCodec<M>) {
    this.core = core;
    this.codec = codec;
    this.i32 = core.views.i32;
  }

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
    while (Atomics.compareExchange(i32, versionIndex, previous, writing) !== previous) {
      // A slower producer still owns this slot; it finishes in a bounded number of stores.
    }
    // SC load of the sleeper count: the fence after the odd version and the producer half of
    // the wake-up handshake, exactly as in Producer.publish.
    const sleeping = Atomics.load(i32, SLEEPERS);
    this.codec.write(slot + SLOT_MESSAGE_BYTE, msg);
    // SC store (release): the message bytes are visible to whoever sees `done`.
    Atomics.store(i32, versionIndex, done);
    this.count++;
    if (sleeping !== 0) core.signal.wakeAll();
    return seq;
  }

  get published(): number {
    return this.count;
  }

  close(): void {}
}
