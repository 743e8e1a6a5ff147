import { ConfigError } from '../errors.js';
import type { BoundCodec, BufferViews } from './codec.js';
import type { Layout } from './layout.js';
import { V8_X86_ORDERING } from './memory-order.js';
import type { QueueCore } from './queue-core.js';
import { QueueHeader as H } from './queue-header.js';
import { ABANDONED_VERSION, epochOf, WRAP } from './sequence.js';
import type { Signal } from './signal.js';
import { type PoisonedSlot, SlotStall } from './stall.js';

// Header indices as module constants: the hot path reads no namespace object.
const { PUBLISHED_F64, CLAIM, CLAIMED_F64, SLOT_PAYLOAD_BYTE } = H;

/** `Producer.claimed` with no claim open, and once the producer is closed. */
const NO_CLAIM = -1;
const CLOSED = -2;

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
  /**
   * Gives the producer role back (a single-producer queue accepts a new producer after this); the
   * producer refuses every later message with a `ConfigError`.
   */
  close(): void;
}

/**
 * A single producer that can also write a message in place, as Aeron's `tryClaim` and the
 * Disruptor's `next`/`publish` do: `claim()` turns the next slot odd (the same SC exchange as
 * `publish`) and returns the byte offset of its message in `views`; the caller stores each field
 * at that offset plus the field's offset in the layout (`Layout.offsetOf`), then calls `commit()`,
 * which makes the slot's done version visible after those stores (the same store as `publish`'s).
 * No field is checked: what the caller stores is what readers decode.
 *
 * Keep what runs between `claim` and `commit` to stores: while the slot is odd its readers wait
 * (and skip it as poisoned once the queue's poison timeout passes). If the writer throws in
 * between, the claim stays open, and the next `claim` or `publish` takes its slot back and writes
 * it again: one message is late, none is lost or torn.
 *
 * @example
 * const producer = queue.claimingProducer();
 * const { f64 } = producer.views;
 * const at = producer.claim();
 * f64[(at + PRICE_OFFSET) >> 3] = 101.5;
 * producer.commit();
 */
export interface ClaimingProducer<M, E = unknown> extends QueueProducer<M, E> {
  /** Typed views over the queue's buffer, for the stores between `claim` and `commit`. */
  readonly views: BufferViews;
  /** Turns the next slot odd (or takes back a claim left open); returns the byte offset of its message. A `ConfigError` if closed. */
  claim(): number;
  /** Publishes the claimed slot; returns its sequence (mod 2^32). A `ConfigError` without a claim. */
  commit(): number;
  /** The sequence (mod 2^32) the next claim or publish takes: its slot is `sequence % capacity`. */
  readonly sequence: number;
}

export interface ProducerOptions {
  /**
   * The signal whose sleepers this producer wakes (default: the queue's own). Several queues
   * that share one signal let a thread that consumes all of them park on a single word. The
   * queue's `close` wakes it too, when called through the same queue object.
   */
  readonly signal?: Signal;
  /**
   * false: this producer never wakes a sleeper, and its consumers must poll (or park with a
   * timeout). It then skips the wake-up handshake, an SC load per publish. The spine's timing
   * queues are written this way: their readers poll.
   */
  readonly wakes?: boolean;
  /**
   * Called when a producer of a multi-producer queue takes over a slot whose writer claimed it and
   * never wrote, abandons a slot left half written (both events name that writer's sequence), or
   * finds the slot it claimed taken over (its own message is then dropped, and counted). Each is
   * counted in the queue's `poisoned`.
   */
  readonly onPoisoned?: (event: PoisonedSlot) => void;
  /**
   * A multi-producer queue's producer only (a single producer's count is the queue's): a cell in
   * shared memory (`counts[index]`) where it keeps its `published` count, stored plainly after each
   * message's done version, for another thread to read once this one has ended (a worker's `exit`
   * event follows every store of its thread). A thread ended between those two stores leaves its
   * last message out of the cell. Each producer needs a cell of its own (it zeroes it, then stores
   * its own count there, not a sum). Without it, the producer keeps its count to itself.
   */
  readonly counter?: { readonly counts: Float64Array; readonly index: number };
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
  private closed = false;

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
      // Opted-in x86 path: a plain store, kept after the payload stores by x86 and by V8's order.
      if (V8_X86_ORDERING) i32[versionIndex] = done;
      // SC store: every payload store above happens-before a consumer's SC load that reads `done`.
      else Atomics.store(i32, versionIndex, done);
      return 0;
    }
    // SC store: every payload store above happens-before a consumer's SC load that reads `done`.
    Atomics.store(i32, versionIndex, done);
    // SC load of the sleeper count after the SC store of `done`: the producer half of the wake-up
    // handshake (see Signal); in the total order of SC operations either this load sees a
    // sleeper's announcement, or that sleeper's re-check sees `done`.
    return V8_X86_ORDERING
      ? this.signalWords[this.sleepersIndex]!
      : Atomics.load(this.signalWords, this.sleepersIndex);
  }

  /** Copies envelope and message, both checked, into a slot whose version is odd. Never throws. */
  protected writePayload(slot: number, msg: M): void {
    if (this.envelopeCodec !== null) this.envelopeCodec.write(slot + SLOT_PAYLOAD_BYTE, this.envelope);
    this.codec.write(slot + this.core.messageByte, msg);
  }

  /** Messages published through this producer. */
  abstract get published(): number;

  /** Refuses every later message; true the first time. */
  protected closeCodec(): boolean {
    if (this.closed) return false;
    this.closed = true;
    this.codec = closedCodec(this.core.layoutName);
    return true;
  }
}

/**
 * The single producer of a queue. Publishing is a seqlock write of the slot the sequence maps to:
 * the version goes odd, the epoch and the message are copied, the version goes even. The producer
 * never looks at consumers: a consumer that falls a lap behind finds out by itself and counts its
 * loss.
 */
export class Producer<M, E = null> extends ProducerBase<M, E> implements ClaimingProducer<M, E> {
  private readonly f64: Float64Array;
  // Geometry copied into fields, read on every publish.
  private readonly slotsByte: number;
  private readonly stride: number;
  private readonly mask: number;
  private seq: number;
  private total: number;
  /** `total` when this producer started: what it published is the difference. */
  private readonly startTotal: number;
  /** The done and writing versions of the current lap (they change once per lap). */
  private lapDone: number;
  private lapWriting: number;
  /** The epoch word of `total`'s message (see SequenceMath). */
  private epoch: number;

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
    // Resume after whatever an earlier producer of this queue published: its count, checked
    // against the slots (a predecessor that died stored it without synchronizing with us).
    this.total = core.checkedPublished();
    this.startTotal = this.total;
    this.seq = this.total >>> 0;
    this.epoch = epochOf(this.total);
    this.lapDone = core.seq.doneVersion(this.seq);
    this.lapWriting = core.seq.writingVersion(this.lapDone);
  }

  publish(msg: M): number {
    // Validation throws before the slot is touched: a slot is never left odd by a bad message
    // or envelope. A closed producer's codec refuses every message.
    this.codec.check(msg);
    this.envelopeCodec?.check(this.envelope);
    // A claim left open (its writer threw before committing) is taken back: its slot is still odd.
    const versionIndex = this.claimed >= 0 ? this.takeBackClaim() : this.begin();
    this.writePayload(versionIndex << 2, msg);
    return this.end(versionIndex);
  }

  claim(): number {
    if (this.claimed === CLOSED) this.refuseClaim();
    // The envelope is written at the claim: checked before the slot is touched.
    this.envelopeCodec?.check(this.envelope);
    // A claim left open (its writer threw before committing) is taken back: its slot is still odd.
    const versionIndex = this.claimed >= 0 ? this.takeBackClaim() : this.begin();
    const slot = versionIndex << 2;
    if (this.envelopeCodec !== null) this.envelopeCodec.write(slot + SLOT_PAYLOAD_BYTE, this.envelope);
    this.claimed = versionIndex;
    return slot + this.core.messageByte;
  }

  commit(): number {
    const versionIndex = this.claimed;
    if (versionIndex < 0)
      throw new ConfigError(`commit() of a producer of '${this.core.layoutName}' without a claim()`);
    this.claimed = NO_CLAIM;
    return this.end(versionIndex);
  }

  get views(): BufferViews {
    return this.core.views;
  }

  get sequence(): number {
    return this.seq;
  }

  /** The version word index of the slot claimed and not committed yet; NO_CLAIM, or CLOSED. */
  private claimed = NO_CLAIM;

  private refuseClaim(): never {
    throw new ConfigError(`this producer of '${this.core.layoutName}' is closed`);
  }

  /** The slot of a claim never committed, written again by the next claim or publish. */
  private takeBackClaim(): number {
    const versionIndex = this.claimed;
    this.claimed = NO_CLAIM;
    return versionIndex;
  }

  /** Turns the next sequence's slot odd and stores its epoch; returns its version word's index. */
  private begin(): number {
    const i32 = this.i32;
    const versionIndex = (this.slotsByte + (this.seq & this.mask) * this.stride) >> 2;
    // Opted-in x86 path: a plain store, kept before the payload stores by x86 and by V8's order.
    if (V8_X86_ORDERING) i32[versionIndex] = this.lapWriting;
    // SC read-modify-write to odd: it reads from the last consumer re-check of this slot (an RMW
    // too), which synchronizes-with it, so no consumer's copy can read the stores below.
    else Atomics.exchange(i32, versionIndex, this.lapWriting);
    i32[versionIndex + 1] = this.epoch;
    return versionIndex;
  }

  /** Makes the slot of `begin` visible with its done version, counts it, wakes sleepers; returns its sequence. */
  private end(versionIndex: number): number {
    const seq = this.seq;
    const sleeping = this.finish(this.i32, versionIndex, this.lapDone);
    const next = (seq + 1) >>> 0;
    this.seq = next;
    // A new lap (the first slot again): its versions.
    if ((next & this.mask) === 0) this.startLap(next);
    // Plain store of the exact count, for monitoring, new consumers' start and lapped consumers'
    // resynchronization (the slot versions are the protocol; this is a hint for them).
    this.f64[PUBLISHED_F64] = ++this.total;
    if (sleeping !== 0) this.signal.wakeAll();
    return seq;
  }

  /** The done and writing versions of the lap of `seq`, and its epoch after the 32-bit wrap. */
  private startLap(seq: number): void {
    this.lapDone = this.core.seq.doneVersion(seq);
    this.lapWriting = this.core.seq.writingVersion(this.lapDone);
    if (seq === 0) this.epoch++;
  }

  get published(): number {
    return this.total - this.startTotal;
  }

  close(): void {
    this.claimed = CLOSED;
    // SC store: the next producer's attach (a CAS on the same word) sees the role released.
    if (this.closeCodec()) Atomics.store(this.i32, H.PRODUCER_ATTACHED, 0);
  }
}

/** `publish` of a multi-producer queue returns this when its message was dropped (see `dropped`). */
const DROPPED = -1;
/** `claimSlot`'s answer when the slot claimed is abandoned: claim another sequence. */
const CLAIM_AGAIN = -2;

/**
 * One of several producers of a multi-producer queue. Each publish claims a sequence with an
 * atomic add, so producers never write the same sequence; a producer whose slot still holds the
 * previous lap, claimed by a slower producer that has not finished writing it, waits for it
 * (producers wait on producers, never on consumers) — up to the queue's poison timeout:
 * - a slot whose writer claimed it but never started (it still holds an older lap) is taken
 *   over: should that writer come back, its claim fails and it drops its message;
 * - a slot left half written is abandoned (`ABANDONED_VERSION`): its writer may only be
 *   paused, and its late stores must never mix with another message, so no message is written
 *   there again. Producers claim the next sequence instead, consumers skip the slot's sequences,
 *   and a writer that comes back finds its slot abandoned and drops its message.
 * Each such event is counted in the queue's `poisoned`.
 */
export class MultiProducer<M, E = null> extends ProducerBase<M, E> implements QueueProducer<M, E> {
  private readonly stall: SlotStall;
  private readonly onPoisoned: ((event: PoisonedSlot) => void) | undefined;
  private droppedCount = 0;
  private count = 0;
  /** Where the count is kept for another thread (`ProducerOptions.counter`), or a cell of its own. */
  private readonly counts: Float64Array;
  private readonly countIndex: number;

  /** @internal use `queue.producer()`. */
  constructor(
    core: QueueCore,
    layout: Layout<M & object>,
    envelope: Layout<E & object> | null,
    options: ProducerOptions = {},
  ) {
    super(core, layout, envelope, options);
    this.stall = new SlotStall(core.poisonTimeoutMs);
    this.onPoisoned = options.onPoisoned;
    this.counts = options.counter?.counts ?? new Float64Array(1);
    this.countIndex = options.counter?.index ?? 0;
    if (!Number.isInteger(this.countIndex) || this.countIndex < 0 || this.countIndex >= this.counts.length)
      throw new ConfigError(`ProducerOptions.counter: index ${this.countIndex} is not a cell of its counts`);
    this.counts[this.countIndex] = 0;
  }

  /** Returns the sequence (mod 2^32), or -1 if the message was dropped (counted in `dropped`). */
  publish(msg: M): number {
    this.codec.check(msg);
    this.envelopeCodec?.check(this.envelope);
    const core = this.core;
    const i32 = this.i32;
    for (let attempt = 0; ; attempt++) {
      // SC read-modify-write: each sequence is handed to exactly one producer.
      const seq = Atomics.add(i32, CLAIM, 1) >>> 0;
      const slot = core.slotsByte + (seq & core.seq.mask) * core.stride;
      const versionIndex = slot >> 2;
      const done = core.seq.doneVersion(seq);
      const previous = core.seq.previousVersion(done);
      const writing = core.seq.writingVersion(done);
      // SC compare-exchange from "previous lap done" to odd: only one producer can win it, and as
      // a read-modify-write it reads from the last consumer re-check of the slot, which therefore
      // synchronizes-with it (see memory-order.ts). It fails while a producer one lap behind has
      // not finished writing this slot.
      let replaced = Atomics.compareExchange(i32, versionIndex, previous, writing);
      if (replaced !== previous) {
        replaced = this.claimSlot(versionIndex, seq, previous, writing, replaced);
        if (replaced === CLAIM_AGAIN && attempt < core.seq.capacity) continue;
        if (replaced === CLAIM_AGAIN || replaced === DROPPED) return this.drop(seq);
      }
      // The epoch of the lap replaced was stored before its done version, which the
      // compare-exchange read: it happens-before this plain read.
      const exact = this.exactSequence(seq, replaced, i32[versionIndex + 1]!);
      i32[versionIndex + 1] = epochOf(exact);
      this.writePayload(slot, msg);
      // SC compare-exchange from our odd version to done: every payload store above
      // happens-before a consumer's SC load that reads `done`. It fails only if the slot was
      // abandoned meanwhile (we were taken for dead): then the message is dropped, and the slot
      // is never rolled back.
      if (Atomics.compareExchange(i32, versionIndex, writing, done) !== writing) return this.drop(seq);
      // SC load of the sleeper count after the SC write of `done` (see Signal).
      const sleeping = this.wakes ? Atomics.load(this.signalWords, this.sleepersIndex) : 0;
      // Plain store of an exact sequence recently claimed: it widens the 32-bit claim counter for
      // `published()` (any recent value does).
      core.views.f64[CLAIMED_F64] = exact + 1;
      // Plain store, read by another thread only once this one has ended.
      this.counts[this.countIndex] = ++this.count;
      if (sleeping !== 0) this.signal.wakeAll();
      return seq;
    }
  }

  get published(): number {
    return this.count;
  }

  /** Messages this producer dropped: its slot was abandoned or taken over while it was away. */
  get dropped(): number {
    return this.droppedCount;
  }

  close(): void {
    this.closeCodec();
  }

  private drop(seq: number): number {
    this.droppedCount++;
    this.poisoned(seq, 'dropped');
    return DROPPED;
  }

  /**
   * The slot still holds an older lap, or is being written: wait for its writer, and after the
   * poison timeout take a never-started slot over, or abandon a half-written one. Returns the
   * version replaced, CLAIM_AGAIN (the slot is abandoned), or DROPPED (the slot already holds
   * our lap or a later one: it went on without us).
   */
  private claimSlot(
    versionIndex: number,
    seq: number,
    previous: number,
    writing: number,
    seen: number,
  ): number {
    this.stall.begin(seq);
    try {
      return this.waitForSlot(versionIndex, seq, previous, writing, seen);
    } finally {
      // The wait is over: forgotten, or the next stall at this sequence mod 2^32 (2^32 claims
      // later) inherited its clock and took a live writer for dead at once.
      this.stall.clear();
    }
  }

  /** `claimSlot`'s wait, timed by `stall` from the call's start. */
  private waitForSlot(
    versionIndex: number,
    seq: number,
    previous: number,
    writing: number,
    seen: number,
  ): number {
    const i32 = this.i32;
    const math = this.core.seq;
    const done = math.doneVersion(seq);
    let replaced = seen;
    for (let spins = 0; ; spins++) {
      if (replaced === previous) return replaced;
      if (replaced === ABANDONED_VERSION) return CLAIM_AGAIN;
      // Our lap, being written or done, or a later one: the slot went on without us.
      if (math.compare(replaced, done) >= 0 || replaced === writing) return DROPPED;
      if (spins > 1000) {
        if (!this.stall.expired()) {
          // A slower producer holds the slot: nap so that a descheduled writer gets the core back.
          Atomics.wait(this.stall.nap, 0, 0, 0.01);
        } else if ((replaced & 1) === 0) {
          // Claimed and never started: SC compare-exchange from that older lap to our odd
          // version; exactly one producer takes the slot over, and the absent writer's own
          // compare-exchange will fail.
          if (Atomics.compareExchange(i32, versionIndex, replaced, writing) === replaced) {
            this.poisoned(this.lapSequence(seq, replaced) + this.core.seq.capacity, 'taken-over');
            return replaced;
          }
        } else {
          // Half written: SC compare-exchange to the abandoned mark; the writer's late stores, if
          // it is only paused, go to a slot no one reads again.
          if (Atomics.compareExchange(i32, versionIndex, replaced, ABANDONED_VERSION) === replaced) {
            this.poisoned(this.lapSequence(seq, replaced + 1), 'abandoned');
          }
          return CLAIM_AGAIN;
        }
      }
      // SC compare-exchange, as in publish.
      replaced = Atomics.compareExchange(i32, versionIndex, previous, writing);
    }
  }

  /** The sequence (mod 2^32) of the lap whose done version is `done` in `seq`'s slot. */
  private lapSequence(seq: number, done: number): number {
    const math = this.core.seq;
    return seq - math.capacity * math.lapsBetween(done, math.doneVersion(seq));
  }

  /**
   * The exact sequence of the message claimed as `seq` (mod 2^32): the slot held an earlier lap
   * (done: its epoch word is that lap's), whose exact sequence its version and epoch give, and
   * ours is the first after it that is congruent to `seq`. A slot never written is on the first lap.
   */
  private exactSequence(seq: number, replaced: number, epoch: number): number {
    const index = seq & this.core.seq.mask;
    const before = this.core.seq.exactOf(replaced, epoch, index);
    if (before === Number.NEGATIVE_INFINITY) return seq;
    return before + ((seq - (before % WRAP)) >>> 0);
  }

  private poisoned(sequence: number, what: PoisonedSlot['what']): void {
    this.core.countPoisoned();
    this.onPoisoned?.({ queue: this.core.layoutName, sequence: sequence >>> 0, what });
  }
}

/** The codec of a closed producer: its check throws, so nothing is ever written. */
function closedCodec<M>(layoutName: string): BoundCodec<M> {
  const refuse = (): never => {
    throw new ConfigError(`this producer of '${layoutName}' is closed`);
  };
  return { check: refuse, write: refuse, read: refuse };
}
