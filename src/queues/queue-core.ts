import { ConfigError } from '../errors.js';
import { isTimerMs, TIMER_MS_RANGE } from '../timer-ms.js';
import { type BufferViews, viewsOf } from './codec.js';
import type { Layout } from './layout.js';
import {
  DEFAULT_MAX_CONSUMERS,
  DEFAULT_POISON_TIMEOUT_MS,
  QueueHeader as H,
  QUEUE_FORMAT,
  QUEUE_MAGIC,
  QueueKind,
  type QueueKindValue,
  queueGeometry,
} from './queue-header.js';
import { closestExact, SequenceMath } from './sequence.js';
import { Signal } from './signal.js';

/** The most bytes a queue's buffer may take (its views are indexed with 32-bit signed shifts). */
const MAX_QUEUE_BYTES = 2 ** 31 - 1;

/** Options of `SeqlockQueue.create`. */
export interface QueueOptions {
  /** Number of slots, a power of two. */
  readonly capacity: number;
  /** Consumers that can be attached at once (each takes a 64-byte entry). Default 64. */
  readonly maxConsumers?: number;
  /** Several producers claiming slots with an atomic add (default: a single producer). */
  readonly multiProducer?: boolean;
  /**
   * A second, fixed layout written before every message in the same seqlocked slot: metadata
   * that travels with each message (the spine's tracking header) without touching its fields.
   * Producers fill `producer.envelope` before `publish`; consumers read `consumer.envelope`.
   */
  readonly envelope?: Layout<object>;
  /**
   * Touch every page of the buffer now (default false), as Aeron and Chronicle pre-touch their
   * mapped memory: the OS maps a new buffer's pages on first write, and a big ring's first lap
   * would otherwise pay a page fault every 4 KiB on the producer's hot path.
   */
  readonly preTouch?: boolean;
  /**
   * How long a slot may stay claimed or half written before its writer is taken for dead, in ms
   * (default 1000). Consumers then skip the slot and count it as poisoned (and lost), and
   * producers of a multi-producer queue take it over. A writer only descheduled for that long
   * loses its message the same way, counted: keep it well above the longest pause a live thread
   * can take on the machine.
   */
  readonly poisonTimeoutMs?: number;
}

/** Options of `SeqlockQueue.attach`. */
export interface AttachOptions {
  /** The envelope layout the queue was created with, if any. */
  readonly envelope?: Layout<object>;
}

/**
 * The state every handle on a queue buffer shares: views, geometry and the signal. Created once
 * per buffer per thread; producers and consumers read their constants from here.
 */
export class QueueCore {
  readonly views: BufferViews;
  readonly seq: SequenceMath;
  readonly kind: QueueKindValue;
  readonly stride: number;
  readonly slotsByte: number;
  readonly maxConsumers: number;
  readonly signal: Signal;
  /** Byte offset of the message inside a slot (after the version word and the envelope). */
  readonly messageByte: number;
  /** The message layout's name, for error messages. */
  readonly layoutName: string;
  /** See `QueueOptions.poisonTimeoutMs`. */
  readonly poisonTimeoutMs: number;

  private constructor(views: BufferViews, layoutName: string) {
    const i32 = views.i32;
    this.layoutName = layoutName;
    this.views = views;
    this.kind = i32[H.KIND] as QueueKindValue;
    this.seq = new SequenceMath(i32[H.CAPACITY]!);
    this.stride = i32[H.STRIDE]!;
    this.maxConsumers = i32[H.MAX_CONSUMERS]!;
    this.slotsByte = H.CONSUMERS_BYTE + this.maxConsumers * H.CONSUMER_ENTRY_BYTES;
    this.signal = new Signal(i32, H.WAKE, H.SLEEPERS);
    this.messageByte = H.SLOT_PAYLOAD_BYTE + i32[H.ENVELOPE_SIZE]!;
    this.poisonTimeoutMs = i32[H.POISON_TIMEOUT_MS]!;
  }

  /** Allocates and initializes a queue buffer for `layout`. */
  static create(layout: Layout<object>, options: QueueOptions): QueueCore {
    if (options === null || typeof options !== 'object') {
      throw new ConfigError('queue options must be an object like { capacity: 4096 }');
    }
    checkLayouts(layout, options.envelope);
    const seq = new SequenceMath(options.capacity);
    if (options.multiProducer && seq.capacity < 4) {
      // Below 4 slots every 32-bit version is some lap's: none is left to mark an abandoned slot.
      throw new ConfigError(`a multi-producer queue needs a capacity of at least 4, got ${seq.capacity}`);
    }
    const maxConsumers = options.maxConsumers ?? DEFAULT_MAX_CONSUMERS;
    if (!Number.isInteger(maxConsumers) || maxConsumers < 1 || maxConsumers > 4096) {
      throw new ConfigError(`maxConsumers must be an integer from 1 to 4096, got ${maxConsumers}`);
    }
    const poisonTimeoutMs = options.poisonTimeoutMs ?? DEFAULT_POISON_TIMEOUT_MS;
    if (!isTimerMs(poisonTimeoutMs)) {
      throw new ConfigError(`poisonTimeoutMs must be ${TIMER_MS_RANGE}, got ${poisonTimeoutMs}`);
    }
    const envelopeSize = options.envelope?.size ?? 0;
    const geometry = queueGeometry(seq.capacity, envelopeSize + layout.size, maxConsumers);
    if (geometry.byteLength > MAX_QUEUE_BYTES) {
      // The views over the buffer are indexed by 32-bit signed arithmetic (`byteLength >> 1`):
      // past 2 GiB they would fail with a RangeError that names nothing.
      throw new ConfigError(
        `a queue of ${seq.capacity} slots of ${geometry.stride} bytes (${layout.name}) takes ${geometry.byteLength} bytes, over the ${MAX_QUEUE_BYTES} a queue may take: give it fewer slots`,
      );
    }
    const buffer = new SharedArrayBuffer(geometry.byteLength);
    if (options.preTouch === true) preTouch(buffer);
    const i32 = new Int32Array(buffer);
    // Written before the buffer is shared with any other thread (postMessage orders it).
    i32[H.MAGIC] = QUEUE_MAGIC;
    i32[H.FORMAT] = QUEUE_FORMAT;
    i32[H.KIND] = options.multiProducer ? QueueKind.MULTI_PRODUCER : QueueKind.SINGLE_PRODUCER;
    i32[H.CAPACITY] = seq.capacity;
    i32[H.STRIDE] = geometry.stride;
    i32[H.MESSAGE_SIZE] = layout.size;
    i32[H.FINGERPRINT] = layout.fingerprint;
    i32[H.MAX_CONSUMERS] = maxConsumers;
    i32[H.ENVELOPE_SIZE] = envelopeSize;
    i32[H.ENVELOPE_FINGERPRINT] = options.envelope?.fingerprint ?? 0;
    i32[H.POISON_TIMEOUT_MS] = poisonTimeoutMs;
    return new QueueCore(viewsOf(buffer), layout.name);
  }

  /** Opens an existing queue buffer, checking that it was made for `layout`. */
  static attach(layout: Layout<object>, buffer: SharedArrayBuffer, options: AttachOptions = {}): QueueCore {
    checkLayouts(layout, options.envelope);
    if (!(buffer instanceof SharedArrayBuffer)) {
      throw new ConfigError(`SeqlockQueue.attach(${layout.name}) needs the queue's SharedArrayBuffer`);
    }
    if (buffer.byteLength < H.CONSUMERS_BYTE) {
      throw new ConfigError(`SeqlockQueue.attach(${layout.name}): the buffer is too small to be a queue`);
    }
    const i32 = new Int32Array(buffer);
    if (i32[H.MAGIC] !== QUEUE_MAGIC || i32[H.FORMAT] !== QUEUE_FORMAT) {
      throw new ConfigError(
        `SeqlockQueue.attach(${layout.name}): the buffer is not a dorsal queue of this version`,
      );
    }
    if (i32[H.FINGERPRINT] !== layout.fingerprint || i32[H.MESSAGE_SIZE] !== layout.size) {
      throw new ConfigError(
        `SeqlockQueue.attach(${layout.name}): layout mismatch, the queue was created for another message layout`,
      );
    }
    const envelopeSize = options.envelope?.size ?? 0;
    if (
      i32[H.ENVELOPE_SIZE] !== envelopeSize ||
      i32[H.ENVELOPE_FINGERPRINT] !== (options.envelope?.fingerprint ?? 0)
    ) {
      throw new ConfigError(
        `SeqlockQueue.attach(${layout.name}): envelope mismatch, attach with the envelope layout the queue was created with`,
      );
    }
    const geometry = queueGeometry(i32[H.CAPACITY]!, envelopeSize + layout.size, i32[H.MAX_CONSUMERS]!);
    if (geometry.byteLength !== buffer.byteLength || geometry.stride !== i32[H.STRIDE]) {
      throw new ConfigError(`SeqlockQueue.attach(${layout.name}): the buffer size does not match its header`);
    }
    return new QueueCore(viewsOf(buffer), layout.name);
  }

  get buffer(): SharedArrayBuffer {
    return this.views.buffer as SharedArrayBuffer;
  }

  /**
   * Messages published, exact to 2^53: a single producer's count (a plain read of a Float64 the
   * producer stores plainly after each message: as fresh as a cache line can be), or several
   * producers' claim counter, widened from 32 bits with an exact sequence recently claimed (the
   * count then includes messages claimed and still being written). A hint for monitoring and for
   * where consumers start: the slots' versions and epochs are the protocol.
   */
  published(): number {
    const { i32, f64 } = this.views;
    if (this.kind === QueueKind.SINGLE_PRODUCER) return f64[H.PUBLISHED_F64]!;
    // SC load of the claim counter, the only word producers change with an atomic add.
    return closestExact(Atomics.load(i32, H.CLAIM) >>> 0, f64[H.CLAIMED_F64]!);
  }

  /**
   * `published()` as a start: where a new consumer at the head, or a replacement producer, begins.
   * The count is a plain Float64 that the writer stores without synchronizing with the reader (a
   * predecessor that died, say), so the language lets the reader see it stale: it is moved past
   * every message that the slots, read consistently, show was published after it. (The language
   * would also let a Float64 read tear; V8 on 64-bit CPUs reads it whole, and a count that
   * claimed too much could only start a consumer late.) Several producers' count comes from the
   * SC-loaded claim counter.
   */
  checkedPublished(): number {
    const hint = this.published();
    let total = Number.isSafeInteger(hint) && hint >= 0 ? hint : 0;
    if (this.kind !== QueueKind.SINGLE_PRODUCER) return total;
    for (let steps = 0; steps < this.seq.capacity; steps++) {
      const next = this.slotSequence(total);
      if (!(next >= total) || (this.lastSlotVersion & 1) !== 0) break;
      total = next + 1;
    }
    return total;
  }

  /** The version `slotSequence` read last. */
  lastSlotVersion = 0;

  /**
   * The exact sequence of the message the slot of `seq` (mod 2^32) holds, done or being written,
   * from a consistent read of its version and epoch; -Infinity for a slot never written, NaN if
   * writers kept changing it.
   */
  slotSequence(seq: number): number {
    const i32 = this.views.i32;
    const versionIndex = (this.slotsByte + (seq & this.seq.mask) * this.stride) >> 2;
    for (let attempt = 0; attempt < 16; attempt++) {
      // SC load, then a plain read of the epoch, then an SC read-modify-write re-check: as in
      // Consumer.poll, an unchanged version means the epoch read belongs to it.
      const version = Atomics.load(i32, versionIndex);
      const epoch = i32[versionIndex + 1]!;
      if (Atomics.add(i32, versionIndex, 0) === version) {
        this.lastSlotVersion = version;
        return this.seq.exactOf(version, epoch, seq & this.seq.mask);
      }
    }
    return Number.NaN;
  }

  /** Slots producers took over from a dead writer, or gave up because another took theirs. */
  get poisoned(): number {
    // SC load of a counter only changed by atomic adds.
    return Atomics.load(this.views.i32, H.POISONED);
  }

  countPoisoned(): void {
    // SC add: producers in several threads may count at once.
    Atomics.add(this.views.i32, H.POISONED, 1);
  }

  get closed(): boolean {
    // SC load: pairs with the SC store in `close`.
    return Atomics.load(this.views.i32, H.CLOSED) !== 0;
  }

  close(): void {
    // SC store, then a wake-up: a sleeper re-checks `closed` after waking.
    Atomics.store(this.views.i32, H.CLOSED, 1);
    this.signal.wakeAll();
  }

  /** Byte offset of consumer entry `index`. */
  consumerEntryByte(index: number): number {
    return H.CONSUMERS_BYTE + index * H.CONSUMER_ENTRY_BYTES;
  }
}

/** Writes a zero to each page of a fresh (all-zero) buffer, so that the OS maps them all now. */
function preTouch(buffer: SharedArrayBuffer): void {
  const bytes = new Uint8Array(buffer);
  for (let at = 0; at < bytes.length; at += 4096) bytes[at] = 0;
}

/**
 * The message layout and the envelope, as `defineMessage` makes them: anything else failed at the
 * first publish or poll with a TypeError naming neither (`envelope.bind is not a function`).
 */
function checkLayouts(layout: unknown, envelope: unknown): void {
  const isLayout = (value: unknown) =>
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Layout<object>).bind === 'function' &&
    Number.isInteger((value as Layout<object>).size);
  if (!isLayout(layout))
    throw new ConfigError(`a queue's message layout must be made by defineMessage, got ${typeof layout}`);
  if (envelope !== undefined && envelope !== null && !isLayout(envelope))
    throw new ConfigError(
      `a queue's envelope must be a layout made by defineMessage, got ${typeof envelope}`,
    );
}
