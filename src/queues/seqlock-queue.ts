import { ConfigError } from '../errors.js';
import { Consumer, type ConsumerOptions, ownerTag } from './consumer.js';
import type { Layout } from './layout.js';
import {
  type ClaimingProducer,
  MultiProducer,
  Producer,
  type ProducerOptions,
  type QueueProducer,
} from './producer.js';
import { QueueCore, type QueueOptions } from './queue-core.js';
import { QueueHeader as H, QueueKind } from './queue-header.js';
import { type RawSlot, rawSlotSource, rawSlotWords } from './raw-slot.js';
import type { Parker, Signal } from './signal.js';

/** A consumer's entry in `QueueStats`. */
export interface ConsumerStats {
  readonly index: number;
  /** The tag its entry was claimed with (`ConsumerOptions.owner`), or 1: none. */
  readonly owner: number;
  /** Exact sequence of the next message it will read. */
  readonly position: number;
  readonly received: number;
  /** Messages it skipped: lapped, or poisoned. */
  readonly lost: number;
  /** Of those, messages whose writer it took for dead. */
  readonly poisoned: number;
  /**
   * The exact sequence it began at. Every message from there to where it read last was received
   * or lost: `began + received + lost` is where its polls left it (`position` may be behind that
   * for a consumer that commits its positions: see `ConsumerOptions.positions`).
   */
  readonly began: number;
  /** Messages published that it has not read yet. */
  readonly lag: number;
}

/** What a monitoring tool sees of a queue, from any thread. */
export interface QueueStats {
  readonly name: string;
  readonly capacity: number;
  readonly multiProducer: boolean;
  /** Messages published so far (multi-producer: claimed, including messages still being written). */
  readonly published: number;
  /** Slots producers took over from a dead writer, or gave up because another producer took theirs. */
  readonly poisoned: number;
  readonly closed: boolean;
  /** Consumers parked on the queue's signal right now. */
  readonly sleeping: number;
  readonly consumers: readonly ConsumerStats[];
}

/**
 * A single-producer (or multi-producer), multi-consumer broadcast ring over one
 * SharedArrayBuffer: create it in one thread, `attach` it in others from `queue.buffer`.
 *
 * @example
 * const queue = SeqlockQueue.create(Tick, { capacity: 4096 });
 * const same = SeqlockQueue.attach(Tick, queue.buffer);   // e.g. in a worker
 * queue.producer().publish({ symbol: 'ABC', price: 101.5, size: 10, ts: 0n });
 * const consumer = same.consumer();
 * const out = Tick.create();
 * while (consumer.poll(out)) { ... }
 */
export class SeqlockQueue<M extends object, E extends object | null = null> {
  readonly layout: Layout<M>;
  readonly envelope: Layout<E & object> | null;
  private readonly core: QueueCore;
  /** Signals other than the queue's own that producers and consumers made here wake or park on. */
  private readonly signals = new Set<Parker>();

  private constructor(layout: Layout<M>, envelope: Layout<E & object> | null, core: QueueCore) {
    this.layout = layout;
    this.envelope = envelope;
    this.core = core;
  }

  /** Creates a queue of `capacity` slots (a power of two) for messages of `layout`. */
  static create<M extends object, E extends object | null = null>(
    layout: Layout<M>,
    options: QueueOptions & { envelope?: Layout<E & object> },
  ): SeqlockQueue<M, E> {
    return new SeqlockQueue<M, E>(layout, options?.envelope ?? null, QueueCore.create(layout, options));
  }

  /** Opens a queue from its buffer. Throws a `ConfigError` if it was made for another layout. */
  static attach<M extends object, E extends object | null = null>(
    layout: Layout<M>,
    buffer: SharedArrayBuffer,
    options: { envelope?: Layout<E & object> } = {},
  ): SeqlockQueue<M, E> {
    return new SeqlockQueue<M, E>(
      layout,
      options.envelope ?? null,
      QueueCore.attach(layout, buffer, options),
    );
  }

  /** The shared memory of the queue: post it to a worker and `attach` there. */
  get buffer(): SharedArrayBuffer {
    return this.core.buffer;
  }

  get capacity(): number {
    return this.core.seq.capacity;
  }

  /** Bytes per slot: the version and epoch words, the envelope and the message, in whole cache lines. */
  get stride(): number {
    return this.core.stride;
  }

  get multiProducer(): boolean {
    return this.core.kind === QueueKind.MULTI_PRODUCER;
  }

  /**
   * The producer of this queue. A single-producer queue has one producer at a time, across all
   * threads: a second one is refused until the first is closed.
   */
  producer(options: ProducerOptions = {}): QueueProducer<M, E> {
    if (options.signal !== undefined) this.signals.add(options.signal);
    if (this.multiProducer) return new MultiProducer<M, E>(this.core, this.layout, this.envelope, options);
    // Its count is the queue's own published count, which any thread reads.
    if (options.counter !== undefined) {
      throw new ConfigError(
        `queue of '${this.layout.name}' has a single producer: ProducerOptions.counter is for a multi-producer queue (its published count is the producer's)`,
      );
    }
    // SC compare-exchange: one producer role per queue, whichever thread asks first.
    if (Atomics.compareExchange(this.core.views.i32, H.PRODUCER_ATTACHED, 0, 1) !== 0) {
      throw new ConfigError(
        `queue of '${this.layout.name}' already has a producer (close it first, or create the queue with multiProducer: true)`,
      );
    }
    return new Producer<M, E>(this.core, this.layout, this.envelope, options);
  }

  /**
   * The producer of a single-producer queue, able to write messages in place as well as publish
   * them (see `ClaimingProducer`). A `ConfigError` on a multi-producer queue, or if the queue
   * already has its producer.
   */
  claimingProducer(options: ProducerOptions = {}): ClaimingProducer<M, E> {
    if (this.multiProducer) {
      throw new ConfigError(
        `queue of '${this.layout.name}' has several producers: claim() is for a single producer`,
      );
    }
    return this.producer(options) as Producer<M, E>;
  }

  /**
   * Frees the single-producer role without the producer's `close`: only for a producer whose
   * thread is known to be dead (a crashed worker), so that a replacement can take over.
   */
  releaseProducer(): void {
    // SC store: the replacement's compare-exchange on the same word sees the role free.
    Atomics.store(this.core.views.i32, H.PRODUCER_ATTACHED, 0);
  }

  /**
   * For a single-producer queue whose producer's thread is known dead and will not be replaced
   * (terminated at a stop): a message it claimed and never committed (its slot left odd) is
   * counted as published, and lost: every reader skips it as poisoned once the poison timeout
   * passes, so that what each reader read and lost adds up to what was published. A producer that
   * does take over later starts after it (the slot stays odd; readers skip it). Returns whether
   * there was such a claim. A multi-producer queue counts claims as published already.
   */
  countDeadClaim(): boolean {
    const core = this.core;
    if (core.kind !== QueueKind.SINGLE_PRODUCER) return false;
    const total = core.checkedPublished();
    if (core.slotSequence(total) !== total || (core.lastSlotVersion & 1) === 0) return false;
    // Plain store, as the producer stores the count (a hint for monitors and new consumers; the
    // slots' versions are the protocol): its writer is dead, so nothing else stores it now.
    core.views.f64[H.PUBLISHED_F64] = total + 1;
    return true;
  }

  /**
   * Messages published, read from the slots a single producer wrote (SC loads of their versions),
   * not from its plain count, which the language lets a reader see stale when nothing ordered its
   * store before the read: exact when no producer is writing (every producer's thread has ended,
   * or the caller is the producer's own thread).
   */
  settledPublished(): number {
    return this.core.checkedPublished();
  }

  /**
   * Frees consumer entry `index` without its consumer's `close`: only for a consumer whose thread
   * is known to be dead, so that a stop no longer waits for it to catch up and the entry can be
   * taken again.
   */
  releaseConsumer(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.core.maxConsumers) {
      throw new ConfigError(
        `releaseConsumer: the index must be a consumer entry, from 0 to ${this.core.maxConsumers - 1}, got ${String(index)}`,
      );
    }
    // SC store: a later claim's compare-exchange sees the entry free, and a monitor's SC load of
    // the table no longer lists it.
    Atomics.store(this.core.views.i32, this.core.consumerEntryByte(index) >> 2, 0);
  }

  /**
   * Frees every consumer entry claimed with `owner` (see `ConsumerOptions.owner`) without its
   * consumer's `close`: only when every thread that used that tag is known to be dead. Returns
   * how many it freed.
   */
  releaseConsumersOf(owner: number): number {
    ownerTag(owner, 'releaseConsumersOf: the owner');
    const i32 = this.core.views.i32;
    let freed = 0;
    for (let index = 0; index < this.core.maxConsumers; index++) {
      // SC compare-exchange: only an entry still marked with the tag is freed (one its owner
      // closed and another consumer took since is left alone); a later claim sees it free.
      if (Atomics.compareExchange(i32, this.core.consumerEntryByte(index) >> 2, owner, 0) === owner) freed++;
    }
    return freed;
  }

  /** A new consumer; by default it starts at the head and sees what is published next. */
  consumer(options?: ConsumerOptions): Consumer<M, E> {
    if (options?.signal !== undefined) this.signals.add(options.signal);
    return new Consumer<M, E>(this.core, this.layout, this.envelope, options);
  }

  /**
   * A consumer that copies each message's bytes instead of decoding them: the envelope (if any)
   * then the message, `rawWords` Int32 words, into `out.words` from `out.at` (see `RawSlot`). The
   * persister's: it ships slots as they are.
   */
  rawConsumer(options?: ConsumerOptions): Consumer<RawSlot> {
    if (options?.signal !== undefined) this.signals.add(options.signal);
    return new Consumer<RawSlot>(this.core, rawSlotSource(this.core), null, options);
  }

  /** Int32 words a raw consumer copies per message. */
  get rawWords(): number {
    return rawSlotWords(this.core);
  }

  /** The signal this queue's producers wake by default (its consumers park on it). */
  get signal(): Signal {
    return this.core.signal;
  }

  /**
   * Marks the end of the stream and wakes every parked consumer (`take` then returns false once
   * drained): those parked on the queue's own signal, and those parked on a signal given to a
   * producer or consumer made through this object. A signal only another thread's queue object
   * knows is woken by that thread's producers, or by `signal.wakeAll()`.
   */
  close(): void {
    this.core.close();
    for (const parker of this.signals) parker.wakeAll?.();
  }

  get closed(): boolean {
    return this.core.closed;
  }

  /** The producer's count and every attached consumer's position, lag and loss. */
  stats(): QueueStats {
    const core = this.core;
    const { i32, f64 } = core.views;
    const entries: {
      index: number;
      owner: number;
      position: number;
      received: number;
      lost: number;
      poisoned: number;
      began: number;
    }[] = [];
    for (let index = 0; index < core.maxConsumers; index++) {
      const byte = core.consumerEntryByte(index);
      // SC load of the entry's state, then of its committed position: the latter synchronizes
      // with the owner's commit (see Consumer.commit), so the exact position after it and what
      // the owner published before committing are seen. The other figures are plain reads of
      // what the owner stores plainly: a snapshot of recent values, not of one instant.
      const owner = Atomics.load(i32, (byte + H.CONSUMER_STATE_BYTE) >> 2);
      if (owner === 0) continue;
      Atomics.load(i32, (byte + H.CONSUMER_COMMITTED_BYTE) >> 2);
      entries.push({
        index,
        owner,
        position: f64[(byte + H.CONSUMER_POSITION_BYTE) >> 3]!,
        received: f64[(byte + H.CONSUMER_RECEIVED_BYTE) >> 3]!,
        lost: f64[(byte + H.CONSUMER_LOST_BYTE) >> 3]!,
        poisoned: f64[(byte + H.CONSUMER_POISONED_BYTE) >> 3]!,
        began: f64[(byte + H.CONSUMER_BEGAN_BYTE) >> 3]!,
      });
    }
    // Read after the positions: a count at least as recent as what their commits made visible.
    const published = core.published();
    const consumers: ConsumerStats[] = entries.map((e) => ({
      ...e,
      lag: Math.max(0, published - e.position),
    }));
    return {
      name: this.layout.name,
      capacity: core.seq.capacity,
      multiProducer: this.multiProducer,
      published,
      poisoned: core.poisoned,
      closed: core.closed,
      sleeping: core.signal.sleeping,
      consumers,
    };
  }
}
