import { ConfigError } from '../errors.js';
import type { BoundCodec } from './codec.js';
import { V8_X86_ORDERING } from './memory-order.js';
import type { QueueCore } from './queue-core.js';
import { QueueHeader as H, QueueKind } from './queue-header.js';
import type { CodecSource } from './raw-slot.js';
import { ABANDONED_VERSION, closestExact, epochOf, WRAP } from './sequence.js';
import type { Parker } from './signal.js';
import { type PoisonedSlot, SlotStall } from './stall.js';
import { AdaptiveWaitStrategy, type WaitCondition, type WaitStrategy } from './wait-strategy.js';

const { SLOT_PAYLOAD_BYTE, CLAIM } = H;

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
  /**
   * Called when the consumer skips a message whose writer it takes for dead (see
   * `QueueOptions.poisonTimeoutMs`); the message is counted in `lost` and `poisoned` first. An
   * error it throws comes out of the `poll` that skipped.
   */
  readonly onPoisoned?: (event: PoisonedSlot) => void;
  /**
   * How the consumer's position reaches `queue.stats()`: `'poll'` (default), stored plainly by
   * every poll, a monitoring hint; `'commit'`, only by `commit()`, with an SC store, so that a
   * thread that reads the position with an SC load also sees everything the owner did before
   * committing (the spine's adapters commit after their handlers: a stop waits for handlers).
   */
  readonly positions?: 'poll' | 'commit';
  /**
   * A tag marking the consumer's table entry as its owner's (a non-zero int32 other than 1, the
   * untagged mark), so that the owner's supervisor can give back every entry a thread of it took
   * with `queue.releaseConsumersOf(owner)`, even one the thread died before it could report (the
   * persister's, killed while it attached), or find it in `stats().consumers`. Dorsal's own: a
   * persister thread marks its entries with minus its thread id (freed when it ends); an actor's
   * adapter marks its entries in a spine's queues with the actor's id + 2 (2 to 65537), where its
   * system finds them should its thread end without a report. Pick a tag above 65537.
   */
  readonly owner?: number;
}

/** What a consumer's next slot holds. */
const READY = 0;
/** An older lap: nothing yet. */
const EMPTY = 1;
/** Our message, claimed by a producer (several producers) or being written, not done yet. */
const STUCK = 2;
/** A later lap: the producer lapped this consumer. */
const LATER = 3;
/** A multi-producer slot abandoned half written: none of its sequences carries a message. */
const ABANDONED = 4;

/** How many empty polls of a multi-producer queue pass between two looks at its claim counter. */
const CLAIM_CHECK_EVERY = 16;

/**
 * One reader of a queue. Every consumer sees every message (broadcast), keeps its own position
 * and never slows the producer down. When the producer laps it, it jumps to half a ring behind
 * the head and adds everything it skipped to `lost`: it never returns a torn or stale message,
 * and it never loses a message without counting it. A message whose writer died half way (its
 * slot claimed or odd for longer than the queue's poison timeout) is skipped, and counted as
 * lost and poisoned.
 *
 * Every ordering is argued next to its `Atomics` call in the terms of the ECMAScript memory model
 * (see memory-order.ts): an SC load that reads the producer's SC store of the done version makes
 * the payload visible; a read-modify-write re-check makes the next lap's stores invisible.
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
  private readonly multi: boolean;
  private readonly mask: number;
  /** Int32 words from one slot to the next. */
  private readonly strideWords: number;
  private readonly stall: SlotStall;
  private readonly onPoisoned: ((event: PoisonedSlot) => void) | undefined;
  /** Consumer table entry: Int32 index of COMMITTED; Float64 indices of POSITION, RECEIVED, LOST, POISONED. */
  private readonly committedIndex: number;
  private readonly commits: boolean;
  private readonly positionIndex: number;
  private readonly receivedIndex: number;
  private readonly lostIndex: number;
  private readonly poisonedIndex: number;
  private readonly entry: number;
  /** The exact sequence of the next message, and what its slot holds for each state (see `moveTo`). */
  private next = 0;
  private seq = 0;
  private versionIndex = 0;
  private expected = 0;
  private previous = 0;
  private writing = 0;
  private epoch = 0;
  private previousEpoch = 0;
  private receivedCount = 0;
  private lostCount = 0;
  private poisonedCount = 0;
  private emptyChecks = 0;
  /** The position the last `commit` published. */
  private committed = Number.NaN;
  /**
   * Several producers: every sequence below `claimedBelow` was claimed by `claimedSince`
   * (performance.now()), the claim count and the time read as the clock of the last stall started.
   */
  private claimedBelow = 0;
  private claimedSince = 0;
  /** Set when a stall starts: the next wait check returns, so that its caller bounds its park. */
  private freshStall = false;
  private released = false;

  /** @internal use `queue.consumer()`. */
  constructor(
    core: QueueCore,
    layout: CodecSource<M>,
    envelope: (CodecSource<E> & { create(): E & object }) | null,
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
    this.multi = core.kind === QueueKind.MULTI_PRODUCER;
    this.mask = core.seq.mask;
    this.strideWords = core.stride >> 2;
    // Several producers: what was claimed when a stall's clock starts, and when (see `stuck`).
    this.stall = new SlotStall(
      core.poisonTimeoutMs,
      this.multi
        ? () => {
            // SC load of the claim counter, widened around this consumer's own exact position
            // (not the count's Float64 hint, which a racing read may see torn).
            this.claimedBelow = closestExact(Atomics.load(core.views.i32, H.CLAIM) >>> 0, this.next);
            this.claimedSince = performance.now();
          }
        : undefined,
    );
    this.onPoisoned = options.onPoisoned;
    const start = startSequence(core, options.from ?? 'head');
    this.entry = claimEntry(core, checkOwner(options.owner));
    const byte = core.consumerEntryByte(this.entry);
    this.committedIndex = (byte + H.CONSUMER_COMMITTED_BYTE) >> 2;
    this.commits = options.positions === 'commit';
    this.positionIndex = (byte + H.CONSUMER_POSITION_BYTE) >> 3;
    this.receivedIndex = (byte + H.CONSUMER_RECEIVED_BYTE) >> 3;
    this.lostIndex = (byte + H.CONSUMER_LOST_BYTE) >> 3;
    this.poisonedIndex = (byte + H.CONSUMER_POISONED_BYTE) >> 3;
    this.f64[this.receivedIndex] = 0;
    this.f64[this.lostIndex] = 0;
    this.f64[this.poisonedIndex] = 0;
    // Plain store, as the figures above: the commit below publishes it (its SC store).
    this.f64[(byte + H.CONSUMER_BEGAN_BYTE) >> 3] = start;
    this.moveTo(start);
    this.commit();
  }

  /**
   * Reads the next message into `out` and returns true, or returns false when there is none yet.
   * `out` is meaningful only after `true`. Never blocks, never throws (but for an `onPoisoned`
   * listener's error), never allocates (beyond a changed string or an i64 field).
   */
  poll(out: M): boolean {
    const i32 = this.i32;
    // The slot's words are the only thing looked at: when the queue is empty, the consumer waits
    // on the very line the next message arrives in, so a hand-over is one cache line transfer.
    for (;;) {
      const versionIndex = this.versionIndex;
      // SC load: if it reads the done version, it synchronizes-with the producer's SC store of
      // it, and every epoch and payload byte stored before that store is visible to the reads below.
      const before = Atomics.load(i32, versionIndex);
      if (before === this.expected) {
        const epoch = i32[versionIndex + 1];
        if (this.envelopeCodec !== null)
          this.envelopeCodec.read((versionIndex << 2) + SLOT_PAYLOAD_BYTE, this.envelope);
        this.codec.read((versionIndex << 2) + this.core.messageByte, out);
        // The re-check. Opted-in x86 path: an SC load, kept after the copy by x86 and V8's order.
        // Otherwise an SC read-modify-write that writes back what it reads: if it reads `before`,
        // the next lap's claim (an RMW) reads from it or a later re-check and synchronizes-with
        // it, so the copy happens-before every store of that lap and read none of them.
        const after = V8_X86_ORDERING ? Atomics.load(i32, versionIndex) : Atomics.add(i32, versionIndex, 0);
        if (after === before && epoch === this.epoch) {
          this.f64[this.receivedIndex] = ++this.receivedCount;
          this.advance();
          return true;
        }
        // Overwritten during the copy, or the same low 32 bits of another epoch: lapped.
      } else {
        const state = this.classify(before, CLAIM_CHECK_EVERY);
        if (state === EMPTY) return false;
        if (state === ABANDONED) {
          this.skipPoisoned();
          continue;
        }
        if (state === STUCK && !this.stall.expired()) return false;
      }
      if (!this.recover()) return false;
    }
  }

  /**
   * Like `poll`, but when the queue is empty waits with the consumer's wait strategy until a
   * message arrives, the queue is closed, or `timeoutMs` passes. Returns false in the last two cases.
   */
  take(out: M, timeoutMs = Number.POSITIVE_INFINITY): boolean {
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs)) {
      throw new ConfigError(
        `take: the timeout must be a number of ms (or Infinity), got ${String(timeoutMs)}`,
      );
    }
    if (this.poll(out)) return true;
    const deadline = timeoutMs === Number.POSITIVE_INFINITY ? timeoutMs : performance.now() + timeoutMs;
    for (;;) {
      const left = deadline === Number.POSITIVE_INFINITY ? deadline : deadline - performance.now();
      if (left <= 0) return false;
      // While a writer is timed for dead, wait no longer than its time left: the poll after the
      // wait skips its slot once its time is up, even if nothing wakes this consumer. (A stall
      // that starts during the wait ends it: see `ready`.)
      const stalled = this.stallRemainingMs();
      this.strategy.wait(this, this.signal, stalled < left ? stalled + 1 : left);
      if (this.poll(out)) return true;
      // Closed: what is left was published before the close; a stuck slot is waited out first.
      if (this.core.closed && this.stallRemainingMs() === Number.POSITIVE_INFINITY) return this.poll(out);
    }
  }

  /**
   * The cheap check a spinning waiter repeats: the next slot holds our message (or a later lap,
   * or a writer stuck past the poison timeout), or the queue is closed (and no writer is timed). A read of the line the
   * message arrives in: when it lands, the waiter sees it with that one transfer.
   */
  ready(): boolean {
    // SC load, though a plain one would do as a hint: it is repeated in spin loops, and a
    // compiler may reuse a plain load of the same element across iterations of a loop that
    // stores nothing; no compiler reuses an Atomics.load.
    const state = this.classify(Atomics.load(this.i32, this.versionIndex), CLAIM_CHECK_EVERY);
    if (state !== EMPTY && state !== STUCK) return true;
    if (state === STUCK) return this.takeFreshStall() || this.stall.expiredSometimes();
    return this.core.closed;
  }

  /**
   * The exact check made after announcing a sleeper: the message is there (or a later lap: one
   * to recover from), or the queue is closed. A slot still being written does not count: its
   * producer loads the sleeper count after its store of `done` and wakes us (see Signal). A
   * writer that died instead is timed: `take` (and an actor thread) park no longer than its time left.
   */
  readyToPark(): boolean {
    // SC load: the sleeper's half of the wake-up handshake (see Signal).
    const state = this.classify(Atomics.load(this.i32, this.versionIndex), 1);
    if (state !== EMPTY && state !== STUCK) return true;
    // A stuck slot is waited out even once the queue is closed (its message was published
    // before the close): not ready until its writer's time is up, or a wait would return at
    // once, again and again, for the whole poison timeout.
    if (state === STUCK) return this.takeFreshStall() || this.stall.expired();
    return this.core.closed;
  }

  /** True once after a stall started: a waiter returns, and its caller parks no longer than the stall's time left. */
  private takeFreshStall(): boolean {
    const fresh = this.freshStall;
    this.freshStall = false;
    return fresh;
  }

  /**
   * Milliseconds until the writer this consumer waits for is taken for dead, or Infinity when it
   * waits for no writer (for threads that park: they wait no longer than this).
   */
  stallRemainingMs(): number {
    return this.stall.timing(this.next) ? this.stall.remainingMs() : Number.POSITIVE_INFINITY;
  }

  /** Messages this consumer received. */
  get received(): number {
    return this.receivedCount;
  }

  /** Messages skipped: lapped by the producer, or poisoned. */
  get lost(): number {
    return this.lostCount;
  }

  /** Messages skipped because their writer was taken for dead (counted in `lost` too). */
  get poisoned(): number {
    return this.poisonedCount;
  }

  /** Next sequence this consumer will read (mod 2^32). */
  get position(): number {
    return this.seq;
  }

  /**
   * The exact sequence of the next message this consumer will read; after a successful poll,
   * `sequence - 1` is the sequence of the message just read (its id in its queue).
   */
  get sequence(): number {
    return this.next;
  }

  /** Messages published but not read yet, exact (from the producer's count, a hint). */
  get lag(): number {
    return Math.max(0, this.core.published() - this.next);
  }

  /** Index of this consumer in the queue's consumer table (what `queue.stats()` lists). */
  get index(): number {
    return this.entry;
  }

  /**
   * Publishes the consumer's position with an SC store (see `ConsumerOptions.positions`): a
   * monitor's SC load that reads it synchronizes-with it, and sees everything this thread did
   * before. With `positions: 'poll'` the position is published anyway; this adds the store.
   */
  commit(): void {
    if (this.next === this.committed) return;
    this.committed = this.next;
    this.f64[this.positionIndex] = this.next;
    // SC store of the low 32 bits: the plain store of the exact position above, and whatever
    // this thread stored before (a handler's children), happen-before a monitor's SC load of it.
    Atomics.store(this.i32, this.committedIndex, this.next | 0);
  }

  /** Releases the consumer's table entry. The consumer must not be used afterwards. */
  close(): void {
    if (this.released) return;
    this.released = true;
    // SC store: a later `claimEntry` CAS in any thread sees the entry free.
    Atomics.store(this.i32, this.core.consumerEntryByte(this.entry) >> 2, 0);
  }

  /**
   * Moves on by one message: within a lap only the slot changes (the versions and epochs
   * expected change at a lap's first slot, where `moveTo` recomputes them).
   */
  private advance(): void {
    const next = this.next + 1;
    const seq = (this.seq + 1) >>> 0;
    if ((seq & this.mask) === 0) {
      this.moveTo(next);
      return;
    }
    this.next = next;
    this.seq = seq;
    this.versionIndex += this.strideWords;
    // Plain store: a monitoring figure; the slot words are the protocol.
    if (!this.commits) this.f64[this.positionIndex] = next;
  }

  /** Points every field at exact sequence `next` (and publishes it, unless positions are committed). */
  private moveTo(next: number): void {
    const core = this.core;
    const seq = next >>> 0;
    const capacity = core.seq.capacity;
    this.next = next;
    this.seq = seq;
    this.versionIndex = (core.slotsByte + (seq & core.seq.mask) * core.stride) >> 2;
    const expected = core.seq.doneVersion(seq);
    this.expected = expected;
    this.previous = core.seq.previousVersion(expected);
    this.writing = core.seq.writingVersion(expected);
    this.epoch = epochOf(next);
    this.previousEpoch = epochOf(next - capacity);
    // Plain store: a monitoring figure; the slot words are the protocol.
    if (!this.commits) this.f64[this.positionIndex] = next;
  }

  /**
   * What the next slot holds, from its `version` and its epoch word. `claimCheckEvery`: how many
   * empty looks at a multi-producer queue pass before one at its claim counter (1: every time).
   */
  private classify(version: number, claimCheckEvery: number): number {
    const i32 = this.i32;
    const versionIndex = this.versionIndex;
    // Plain read of the epoch word: a hint here; `poll` and `recover` decide on consistent reads.
    const epoch = i32[versionIndex + 1]!;
    if (version === this.expected && epoch === this.epoch) return READY;
    if (version === this.previous && epoch === this.previousEpoch)
      return this.emptyOrClaimed(claimCheckEvery);
    // Our lap (mod 2^32) being written: its epoch may not be stored yet.
    if (version === this.writing) return this.stuck(this.stall.timeoutMs);
    if (version === ABANDONED_VERSION && this.multi) return this.claimed() ? ABANDONED : EMPTY;
    const exact = this.core.seq.exactOf(version, epoch, this.seq & this.core.seq.mask);
    if (exact > this.next) return LATER;
    if (exact === this.next) return version & 1 ? this.stuck(this.stall.timeoutMs) : READY;
    return this.emptyOrClaimed(claimCheckEvery);
  }

  /**
   * Our message is claimed or being written: time its writer against `limitMs`, from now. But a
   * sequence already claimed when the clock of an earlier stall started (several producers whose
   * threads died amid their writes, or were terminated together) has been stuck since then at
   * least: it is timed from then, for twice the timeout at most (as a claimed slot is), so that K
   * such slots in a row cost one wait, not K in turn.
   */
  private stuck(limitMs: number): number {
    const next = this.next;
    if (this.stall.timing(next)) return STUCK;
    if (next < this.claimedBelow) {
      const since = this.claimedSince;
      const limit = Math.min(2 * this.stall.timeoutMs, performance.now() - since + limitMs);
      this.stall.begin(next, 0, limit, since);
    } else this.stall.begin(next, 0, limitMs);
    this.freshStall = true;
    return STUCK;
  }

  /**
   * An older lap in our slot. With one producer, nothing is published yet. With several, our
   * sequence may be claimed by a producer that has not written it (or never will).
   */
  private emptyOrClaimed(claimCheckEvery: number): number {
    if (!this.multi) return EMPTY;
    if (!this.stall.timing(this.next) && ++this.emptyChecks < claimCheckEvery) return EMPTY;
    this.emptyChecks = 0;
    // SC load of the claim counter: a sequence below it was handed to a producer. That producer
    // may itself be waiting a poison timeout for the writer of the lap before (to take its slot
    // over, or abandon it): the consumer gives it twice as long before it skips the message.
    if (((Atomics.load(this.i32, CLAIM) - this.seq) | 0) > 0) return this.stuck(2 * this.stall.timeoutMs);
    this.stall.clear();
    return EMPTY;
  }

  /**
   * Whether our sequence was handed to a producer (exactly: the claim counter widened by the
   * queue). An abandoned slot's sequence is skipped only then: skipped sooner, it was counted
   * lost before any producer reached it, and with every slot abandoned `poll` never returned.
   */
  private claimed(): boolean {
    return this.core.published() > this.next;
  }

  /**
   * The slot holds something other than our message: jump forward after a lap, or skip a message
   * whose writer timed out. Returns false if, looked at closely, there is nothing to do yet.
   */
  private recover(): boolean {
    const exact = this.slotSequence();
    if (this.multi && this.slotVersion === ABANDONED_VERSION) {
      if (!this.claimed()) return false;
      this.skipPoisoned();
      return true;
    }
    if (exact > this.next) {
      this.resynchronize(exact);
      return true;
    }
    // Our message, done after all: read it.
    if (exact === this.next && (this.slotVersion & 1) === 0) return true;
    // An older lap: with several producers, ours may be claimed by one that never writes it.
    if (!this.stall.timing(this.next) && this.multi) this.emptyOrClaimed(1);
    if (this.stall.timing(this.next) && this.stall.expired()) {
      this.skipPoisoned();
      return true;
    }
    return false;
  }

  /** The version `slotSequence` read last. */
  private slotVersion = 0;

  /** The exact sequence of what the next slot holds (see `QueueCore.slotSequence`). */
  private slotSequence(): number {
    const exact = this.core.slotSequence(this.seq);
    this.slotVersion = this.core.lastSlotVersion;
    return exact;
  }

  /**
   * The slot holds message `seen`, a later one than ours: the producer lapped us. Resume half a
   * ring behind the producer: far enough back to read the newest messages, far enough ahead not
   * to be lapped again at once. Everything between is counted as lost, exactly.
   */
  private resynchronize(seen: number): void {
    const capacity = this.core.seq.capacity;
    let head = seen + 1;
    // The producer's count, a hint read without synchronization: used only when plausible.
    const hint = this.core.published();
    if (hint > head && hint - head < WRAP) head = hint;
    this.skipTo(Math.max(this.next + 1, head - (capacity >> 1)));
  }

  private skipPoisoned(): void {
    const sequence = this.next;
    this.stall.clear();
    this.f64[this.poisonedIndex] = ++this.poisonedCount;
    this.skipTo(sequence + 1);
    this.onPoisoned?.({ queue: this.core.layoutName, sequence, what: 'skipped' });
  }

  private skipTo(next: number): void {
    this.lostCount += next - this.next;
    // Plain store: LOST is a monitoring figure, written only on this rare path.
    this.f64[this.lostIndex] = this.lostCount;
    this.moveTo(next);
  }
}

function claimEntry(core: QueueCore, owner: number): number {
  for (let i = 0; i < core.maxConsumers; i++) {
    // SC compare-exchange: exactly one consumer, in any thread, takes a free entry.
    if (Atomics.compareExchange(core.views.i32, core.consumerEntryByte(i) >> 2, 0, owner) === 0) return i;
  }
  throw new ConfigError(
    `the queue already has ${core.maxConsumers} consumers (raise maxConsumers, or close consumers you no longer use)`,
  );
}

/** The mark of a consumer's table entry: its owner's tag, or 1. */
function checkOwner(owner: number | undefined): number {
  return owner === undefined ? 1 : ownerTag(owner, "consumer option 'owner'");
}

/**
 * `owner`, if it is a tag a consumer entry can be marked with: an int32 other than 0 (free) and
 * 1 (untagged). Anything else would be taken as one of those by `Atomics` (1.5 and 2^32 + 1 are
 * 1 to it), and a release by such a tag would free live untagged entries.
 */
export function ownerTag(owner: unknown, what: string): number {
  if (typeof owner !== 'number' || owner !== (owner | 0) || owner === 0 || owner === 1) {
    throw new ConfigError(`${what} must be an int32 other than 0 and 1, got ${String(owner)}`);
  }
  return owner;
}

function startSequence(core: QueueCore, from: ConsumerStart): number {
  // The producer's count: a hint read without synchronization, checked against the slots.
  const total = core.checkedPublished();
  if (typeof from === 'number') {
    // One past the count too: a consumer that skipped a last message whose writer died stands
    // there (the count never included it), and resumes there.
    if (!Number.isSafeInteger(from) || from < 0 || from > total + 1) {
      throw new ConfigError(
        `consumer option 'from' must be a sequence from 0 to ${total + 1} (one past the ${total} published so far), got ${from}`,
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
