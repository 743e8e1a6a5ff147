import { type Consumer, Layout, type RawSlot, SeqlockQueue } from '../../queues/index.js';
import { Tracking } from '../../spine/index.js';
import { type InstrumentationDrops, StringTableReader } from '../instrumentation/index.js';
import { DropsSince, dropsTotal } from './instrumentation-sources.js';
import type { PersistSource, RawBlock } from './protocol.js';
import { HEADER_WORDS } from './records.js';

/** How long a head must stand still (ms, wall clock) before a pass reads up to it. */
const STILL_MS = 2;

/**
 * One source of the persister, in its thread: a raw consumer of the queue and the block being
 * filled. `copy` moves records from the slots into the block, word for word (the record header,
 * the sequence, written beside them); a block is cut when full, when its first record is
 * `blockMs` old, or at the stop. An instrumentation source also carries what its thread dropped
 * at the source: a block is cut for drops alone (no record) once `blockMs` passed since the last.
 */
export class SourceReader {
  readonly key: string;
  private readonly consumer: Consumer<RawSlot>;
  private readonly recordWords: number;
  /** Slots a pass leaves unread behind a writing producer (see `copy`). */
  private readonly behind: number;
  /** The head the last pass saw, and when (wall clock, ms) a pass saw it move last. */
  private lastHead = -1;
  private headMovedMs = Number.NEGATIVE_INFINITY;
  private readonly capacityWords: number;
  private readonly timeIndex: number;
  private readonly slot: RawSlot;
  private f64: Float64Array;
  /** Int32 index of the next record in `slot.words`. */
  private at = 0;
  private count = 0;
  private begin = Number.POSITIVE_INFINITY;
  private end = Number.NEGATIVE_INFINITY;
  /** Sequence where the block under way starts accounting, and the losses before it. */
  private firstSeq: number;
  /** Wall clock (ms) when the block under way got its first record, or NaN. */
  private startedMs = Number.NaN;
  /** What earlier readers of the source counted (see `PersistSource.lostBefore`). */
  private readonly lostBefore: number;
  private readonly poisonedBefore: number;
  /** Losses already carried by a block (a block is cut at the stop only if this moved). */
  private reportedLost = 0;
  /** An instrumentation source's drop counters, and the sum of the drops the last block carried. */
  private readonly drops?: DropsSince;
  private reportedDrops = 0;
  /** Wall clock (ms) of the last cut (or the start). */
  private lastCutMs = Date.now();

  /** The persister thread's own instrumentation (see `PersistSource.own`). */
  readonly own: boolean;
  private readonly queue: SeqlockQueue<object, object | null>;

  /** `owner`: the tag the consumer's entry is marked with (see `persisterOwner`). */
  constructor(source: PersistSource, blockBytes: number, owner?: number) {
    this.key = source.key;
    this.own = source.own === true;
    const queue = attachSource(source);
    this.queue = queue;
    this.recordWords = HEADER_WORDS + queue.rawWords;
    this.behind = Math.min(Math.floor(4096 / queue.stride), queue.capacity >> 2);
    this.capacityWords = Math.max(1, Math.floor(blockBytes / 4 / this.recordWords)) * this.recordWords;
    this.timeIndex = source.timeIndex;
    this.slot = { words: new Int32Array(this.capacityWords), at: 0 };
    this.f64 = new Float64Array(this.slot.words.buffer);
    this.firstSeq = source.from;
    this.lostBefore = source.lostBefore ?? 0;
    this.poisonedBefore = source.poisonedBefore ?? 0;
    if (source.drops !== undefined) {
      this.drops = new DropsSince(source.drops, StringTableReader.attach(source.drops.strings));
    }
    // Last: nothing after the entry is taken can throw and leave it taken. Positions committed
    // after each pass (see `commit`): a stop waits for the persister too.
    this.consumer = queue.rawConsumer({
      from: source.from,
      positions: 'commit',
      ...(owner === undefined ? {} : { owner }),
    });
  }

  /** The consumer's entry in the queue's table (released by the main thread if this thread dies). */
  get entry(): number {
    return this.consumer.index;
  }

  /**
   * Copies waiting records into the block; calls `cut` with each block that fills up. Returns
   * how many records it copied.
   *
   * While the producer is writing (its head moved within STILL_MS), a pass stays `behind`
   * slots (a 4 KiB page's worth, at most a quarter of the ring) short of the head: reading up to
   * the head, the persister's core (and its prefetcher, which runs ahead within a page) pulled
   * the lines of the slots the producer was about to write into its cache, and the producer then
   * paid a transfer of each line back on its next writes: measured, a 1-thread pipeline at 20k
   * msg/s went from 0.6 to 0.8 µs at p50 with the persister on. A head that stood still for
   * STILL_MS (a pass right after another sees the same head: that is not a pause), or `all` (the
   * stop), is read to the end. So a stream that never pauses keeps its newest `behind` records
   * unread until it does, or until the stop: 64 ms of it at 1,000 msg/s, 64 µs at 1 M.
   */
  copy(
    cut: (block: RawBlock, transfer: ArrayBuffer) => void,
    nowMs: number,
    all = false,
    until = Number.POSITIVE_INFINITY,
  ): number {
    const consumer = this.consumer;
    const slot = this.slot;
    const recordWords = this.recordWords;
    const head = this.head();
    if (head !== this.lastHead) {
      this.lastHead = head;
      this.headMovedMs = nowMs;
    }
    // `all` (the stop) reads to the end, or to `until`: what was published when the stop began.
    const limit = all ? until : nowMs - this.headMovedMs >= STILL_MS ? head : head - this.behind;
    let copied = 0;
    for (;;) {
      if (this.at + recordWords > this.capacityWords) this.cut(cut);
      const at = this.at;
      slot.at = at + HEADER_WORDS;
      if (consumer.sequence >= limit || !consumer.poll(slot)) break;
      const f64 = this.f64;
      const index = at >> 1;
      f64[index] = consumer.sequence - 1;
      const time = f64[index + this.timeIndex]!;
      if (time < this.begin) this.begin = time;
      if (time > this.end) this.end = time;
      if (this.count === 0) this.startedMs = nowMs;
      this.at = at + recordWords;
      this.count++;
      copied++;
    }
    consumer.commit();
    return copied;
  }

  /**
   * Cuts the block under way if its first record is older than `blockMs`; with no record, if
   * drops at the source no block carried yet are waiting and the last cut is that old.
   */
  cutIfOld(cut: (block: RawBlock, transfer: ArrayBuffer) => void, nowMs: number, blockMs: number): void {
    if (this.count > 0) {
      if (nowMs - this.startedMs >= blockMs) this.cut(cut);
    } else if (this.drops !== undefined && nowMs - this.lastCutMs >= blockMs) {
      if (this.droppedTotal() !== this.reportedDrops) this.cut(cut);
    }
  }

  /** Cuts what is left at the stop: records, or losses or drops no block has carried yet. */
  flush(cut: (block: RawBlock, transfer: ArrayBuffer) => void): void {
    if (
      this.count > 0 ||
      this.consumer.lost !== this.reportedLost ||
      (this.drops !== undefined && this.droppedTotal() !== this.reportedDrops)
    ) {
      this.cut(cut);
    }
  }

  /** The next sequence this reader reads. */
  get sequence(): number {
    return this.consumer.sequence;
  }

  /** The sequence after the last one published, as the producer's count says (a hint: see `stopTarget`). */
  head(): number {
    return this.consumer.sequence + this.consumer.lag;
  }

  /**
   * Where the stop reads to: the messages published now, read from the slots' versions (SC
   * loads), not from the producer's plain count, which the language lets this thread see stale
   * (it would stop short and count what was published as lost). A slot a writer is writing is
   * not counted; a multi-producer queue counts its claims. The persister's own sources: to
   * their end, however far (it writes them itself).
   */
  stopTarget(): number {
    return this.own ? Number.POSITIVE_INFINITY : this.queue.settledPublished();
  }

  /** Milliseconds until the writer of the slot this reader waits at is taken for dead (Infinity: none). */
  stallRemainingMs(): number {
    return this.consumer.stallRemainingMs();
  }

  /** What the thread dropped at the source since the persister attached; undefined for other sources. */
  private dropped(): InstrumentationDrops | undefined {
    return this.drops?.read();
  }

  /** The same, summed, without making an object (checked on every pass). */
  private droppedTotal(): number {
    return this.drops!.total();
  }

  close(): void {
    this.consumer.close();
  }

  private cut(cut: (block: RawBlock, transfer: ArrayBuffer) => void): void {
    const consumer = this.consumer;
    const records = this.slot.words.buffer as ArrayBuffer;
    const now = Date.now();
    // Read after the records: every event dropped before the last one copied is counted.
    const dropped = this.dropped();
    cut(
      {
        type: 'block',
        key: this.key,
        records,
        bytes: this.at * 4,
        count: this.count,
        beginTicks: this.count > 0 ? this.begin : 0,
        endTicks: this.count > 0 ? this.end : 0,
        coverage: {
          firstSeq: this.firstSeq,
          endSeq: consumer.sequence,
          lostTotal: this.lostBefore + consumer.lost,
          poisonedTotal: this.poisonedBefore + consumer.poisoned,
        },
        ...(dropped === undefined ? {} : { dropped }),
      },
      records,
    );
    this.reportedLost = consumer.lost;
    this.reportedDrops = dropsTotal(dropped);
    this.lastCutMs = now;
    this.firstSeq = consumer.sequence;
    // The old buffer was transferred away: a fresh one for the next block.
    this.slot.words = new Int32Array(this.capacityWords);
    this.f64 = new Float64Array(this.slot.words.buffer);
    this.at = 0;
    this.count = 0;
    this.begin = Number.POSITIVE_INFINITY;
    this.end = Number.NEGATIVE_INFINITY;
    this.startedMs = now;
  }
}

/**
 * The tag a persister thread marks its consumer entries with: its thread id, negated (unique in
 * the process, never 0 or 1). The main thread gives back every entry so marked when the thread
 * dies, including those it took and died before reporting.
 */
export function persisterOwner(threadId: number): number {
  return -threadId;
}

/** A source's queue, attached (to read its records, or how many were published). */
export function attachSource(source: PersistSource): SeqlockQueue<object, object | null> {
  const layout = Layout.fromDescription(source.layout);
  return source.envelope
    ? SeqlockQueue.attach(layout, source.buffer, { envelope: Tracking })
    : SeqlockQueue.attach(layout, source.buffer);
}

/**
 * The stop's passes: every reader to the head its source had when they began (a thread that
 * writes on, the main thread of a `shipInstrumentation` say, is not followed: what it writes after
 * goes to the lake as lost, counted by the settlement). A slot before that head that a writer
 * left claimed when it died (a thread of a multi-producer stream terminated mid-write) stops its
 * reader until the queue's poison timeout takes the writer for dead; that time is waited out, so
 * that what follows the slot is read, and the slot counted lost, rather than left unread and
 * uncounted. A live writer in the middle of a write past that head is not waited for (it made
 * every pass sleep a poison timeout, without end while it logged on). Returns how many records
 * the passes copied, and how many times they slept waiting for such a writer.
 */
export function drainAtStop(
  readers: readonly SourceReader[],
  cut: (block: RawBlock, transfer: ArrayBuffer) => void,
): { copied: number; waits: number } {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const targets = readers.map((reader) => reader.stopTarget());
  let copied = 0;
  let waits = 0;
  for (;;) {
    let n = 0;
    do {
      n = 0;
      for (let i = 0; i < readers.length; i++) n += readers[i]!.copy(cut, Date.now(), true, targets[i]);
      copied += n;
    } while (n > 0);
    let stalled = Number.POSITIVE_INFINITY;
    for (let i = 0; i < readers.length; i++) {
      const reader = readers[i]!;
      if (reader.sequence < targets[i]!) stalled = Math.min(stalled, reader.stallRemainingMs());
    }
    if (stalled === Number.POSITIVE_INFINITY) return { copied, waits };
    // A timed sleep on a private word: nothing notifies it.
    Atomics.wait(nap, 0, 0, stalled + 1);
    waits++;
  }
}
