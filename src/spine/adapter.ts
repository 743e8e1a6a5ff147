import { ConfigError } from '../errors.js';
import type { BufferViews, ClaimingProducer, Consumer, QueueProducer, QueueStats } from '../queues/index.js';
import {
  actorConsumerOwner,
  COUNTS,
  createFigures,
  FAILED,
  FIGURES,
  figuresOf,
  HANDLED,
  LOST,
  NEXT,
  POISONED,
  PRODUCED,
  PRODUCED_FROM,
  SKIPPED,
  streamFigures,
} from './actor-figures.js';
import type { Clock } from './clock.js';
import { Phase } from './control.js';
import type { SpineDefinition, StreamMessage, StreamSpecs } from './definition.js';
import type { Spine } from './spine.js';
import { refuseAsync } from './synchronous.js';
import type { ThreadActivity } from './thread-activity.js';
import { type AdapterTimingStats, TimingReader } from './timing-reader.js';
import { NO_PARENT, TimingRecord, type Tracking } from './tracking.js';

/** Where a timing record's fields sit in its slot. */
const RECORD_SEQ = TimingRecord.offsetOf('seq');
const RECORD_ORIGIN = TimingRecord.offsetOf('origin_t');
const RECORD_PUBLISH = TimingRecord.offsetOf('publish_t');
const RECORD_START = TimingRecord.offsetOf('start_t');
const RECORD_END = TimingRecord.offsetOf('end_t');
const RECORD_STREAM = TimingRecord.offsetOf('stream');
const RECORD_ACTOR = TimingRecord.offsetOf('actor');

type StreamsOf<D> = D extends SpineDefinition<infer S> ? S : StreamSpecs;
/** Names of the streams of spine definition `D`. */
export type StreamName<D> = keyof StreamsOf<D> & string;
/** Message type of stream `K` of spine definition `D`. */
export type MessageOf<D, K extends StreamName<D>> = StreamMessage<StreamsOf<D>, K>;

/** What a handler learns about the message besides its fields. Valid during the handler only. */
export interface MessageMeta {
  /** Stream name and index, and the message's sequence in it: together, its id. */
  readonly stream: string;
  readonly streamIndex: number;
  readonly seq: number;
  /** The tracking envelope: origin_t, publish_t, parent, producing actor. */
  readonly tracking: Readonly<Tracking>;
}

/** What a handler produces with: every message it produces is a child of the one it handles. */
export interface SpineProducers<D> {
  /**
   * Publishes `value` on `stream`. Returns false when the system refuses new ingress (stopping;
   * counted in the report's `refused`), or when a multi-producer stream dropped the message
   * (its slot was taken for dead; counted in the queue's `poisoned`).
   */
  produce<K extends StreamName<D>>(stream: K, value: MessageOf<D, K>): boolean;
}

export type Handler<D, K extends StreamName<D>> = (
  msg: MessageOf<D, K>,
  producers: SpineProducers<D>,
  meta: MessageMeta,
) => void;

/** Per stream, what this adapter did: for monitoring and the system's report. */
export interface AdapterStreamStats {
  readonly stream: string;
  readonly handled: number;
  /** Read but not handled: filtered out, or older than the newest in `consumeLast`. */
  readonly skipped: number;
  /** Skipped because a producer lapped this actor's consumer, or because their writer died. */
  readonly lost: number;
  /** Of those lost, messages whose writer died half way (see `QueueOptions.poisonTimeoutMs`). */
  readonly poisoned: number;
  /** Read and handed to the handler, which threw: neither handled nor lost. */
  readonly failed: number;
  readonly produced: number;
}

/**
 * Where an actor's lazily created consumers start: at the head, or at exact sequences: per
 * stream index (`null`/missing: the head), and per actor id on the timing queues it observes
 * (missing: the first record).
 */
export type AdapterStart = 'head' | AdapterPositions;

/** Exact sequences an adapter's consumers read next (see `AdapterStart`). */
export interface AdapterPositions {
  readonly streams: readonly (number | null)[];
  readonly timings?: Readonly<Record<number, number>>;
  /** Where a timing queue not listed is read from (default `'first'`: its first record). */
  readonly otherTimings?: 'head' | 'first';
}

/** A consumer of a ring, as `SpineAdapter.readers` sees it. */
export interface ReaderState {
  /** The stream's name, or `timings:<actor id>` for an actor's timing queue. */
  readonly ring: string;
  /** Its entry in the ring's consumer table. */
  readonly consumer: number;
  /** The sequence it reads next. */
  readonly position: number;
  /** Messages published that it has not read yet. */
  readonly lag: number;
  readonly capacity: number;
}

/**
 * An actor's view of the spine. `consume` drains a stream through a handler: before each call it
 * sets the tracking context, so whatever the handler produces carries the message's origin and
 * its id as parent; after each call it writes a timing record to the actor's timing queue.
 * Outside a handler, `produce` is ingress: a new origin.
 */
export class SpineAdapter<D = SpineDefinition> implements SpineProducers<D> {
  readonly actorId: number;
  readonly actorName: string;
  private readonly spine: Spine;
  private readonly clock: Clock;
  private readonly start: AdapterStart;
  private readonly consumers: (Consumer<object, Tracking> | undefined)[] = [];
  private readonly consumed: number[] = [];
  private readonly outs: object[][] = [];
  private readonly producers: (QueueProducer<object, Tracking> | undefined)[] = [];
  /**
   * Per stream, what this actor counted (see `FIGURES`), in shared memory when its system gave
   * some, so that the system can read them after the thread ended without a report (terminated at
   * a stop): it reads them after the worker's `exit` (Node emits it once the thread has stopped),
   * so every store is done. Changed at a commit (a drain's end), in the copy that then agrees
   * with the committed position, from which what the thread left is counted unread.
   */
  private readonly figures: Float64Array;
  /**
   * Per stream, the copy of its figures the last drain's end wrote (0 or 1), and their NEXT: kept
   * here too, so that a drain's end compares with its own memory, not the shared buffer's (a
   * version that read NEXT from there left the 2-thread p50 in its slow regime in 2 of 4 runs).
   */
  private readonly figuresCopy: Uint8Array;
  private readonly figuresNext: Float64Array;
  /** Per stream, drains under way (more than one: nested in its own handlers), ... */
  private readonly drainDepth: Int32Array;
  /** ... and handled, skipped and failed since its figures last changed (3 per stream). */
  private readonly pending: Float64Array;
  /** The actor's timing queue, written in place (claim, stores, commit): see `handle`. */
  private readonly timing: ClaimingProducer<TimingRecord> | undefined;
  private readonly timingViews: BufferViews | undefined;
  private readonly timings: TimingReader;
  /** The envelope of the newest message in `consumeLast`, copied out of the consumer. */
  private readonly lastTracking: Tracking = {
    origin_t: 0,
    publish_t: 0,
    parent_seq: 0,
    parent_stream: 0,
    actor: 0,
  };
  /** The tracking context of the handler running now, which is also its `meta`. */
  private readonly context: HandlerContext;
  /** True while a handler runs: what `produce` publishes then is a child of `context`. */
  private inHandler = false;
  /** Messages handled (and timing records read) since the last `takeWork`. */
  private work = 0;
  /** What this adapter's producers had published at the last `takeWork`. */
  private publishedBefore = 0;
  private lastProducedName = '';
  private lastProducedIndex = 0;
  /** Stream whose handler threw since the last consume began (for crash reports), or -1. */
  private failed = -1;

  private readonly names: ReadonlyMap<number, string>;
  private readonly activity: ThreadActivity | undefined;

  /** `activity`: the thread's, when the adapter runs on an actor thread (ingress marks it busy). */
  constructor(
    spine: Spine,
    actorId: number,
    actorName: string,
    start: AdapterStart = 'head',
    names: ReadonlyMap<number, string> = new Map(),
    activity?: ThreadActivity,
    figures?: Float64Array,
  ) {
    // Stored unchecked into each timing record (and checked by the envelope's codec anyway);
    // refused before any role in the spine is taken.
    if (!(Number.isInteger(actorId) && actorId >= 0 && actorId <= 0xffff)) {
      throw new ConfigError(`actor id must be a whole number from 0 to 65535, got ${actorId}`);
    }
    this.spine = spine;
    this.clock = spine.clock;
    this.names = names;
    this.actorId = actorId;
    this.actorName = actorName;
    this.start = start;
    this.activity = activity;
    const length = spine.names.length * FIGURES;
    if (figures !== undefined && figures.length !== length) {
      throw new ConfigError(
        `an adapter's figures hold ${length} numbers (${FIGURES} per stream), got ${figures.length}`,
      );
    }
    this.figures = figures ?? figuresOf(createFigures(spine.names.length));
    this.figuresCopy = new Uint8Array(spine.names.length);
    this.figuresNext = new Float64Array(spine.names.length).fill(-1);
    this.drainDepth = new Int32Array(spine.names.length);
    this.pending = new Float64Array(spine.names.length * 3);
    // Timing records wake no one: their readers poll them whenever their thread is awake, and no
    // thread parks on a timing queue's signal. That saves the sleeper-count load per handler call.
    this.timing = spine.timingQueue(actorId)?.claimingProducer({ wakes: false });
    this.timingViews = this.timing?.views;
    this.timings = new TimingReader(
      spine,
      start === 'head'
        ? 'head'
        : { at: start.timings ?? {}, others: start.otherTimings === 'head' ? 'head' : 'first' },
      // Its system finds its entries by this tag once the thread ended without a report.
      actorConsumerOwner(actorId),
    );
    this.context = new HandlerContext(spine.names, this.lastTracking);
  }

  /** Handles every message waiting on `stream`, in order. Returns how many were handled. */
  consume<K extends StreamName<D>>(stream: K, handler: Handler<D, K>): number {
    return this.drain(stream, ALL, undefined, handler);
  }

  /** Handles at most `max` waiting messages of `stream`. */
  consumeN<K extends StreamName<D>>(stream: K, max: number, handler: Handler<D, K>): number {
    if (!(Number.isSafeInteger(max) && max >= 0)) {
      throw new ConfigError(`consumeN('${stream}') needs a count that is an integer ≥ 0, got ${String(max)}`);
    }
    return this.drain(stream, max, undefined, handler);
  }

  /** Reads every waiting message of `stream` and handles those `filter` accepts. */
  consumeFiltered<K extends StreamName<D>>(
    stream: K,
    filter: (msg: MessageOf<D, K>) => boolean,
    handler: Handler<D, K>,
  ): number {
    return this.drain(stream, ALL, filter, handler);
  }

  /** Reads every waiting message of `stream` and handles only the newest (the rest count as skipped). */
  consumeLast<K extends StreamName<D>>(stream: K, handler: Handler<D, K>): boolean {
    const index = this.spine.indexOf(stream);
    const consumer = this.consumerOf(index);
    // A consume nested in a handler leaves the handler's context as it found it (the polls below
    // may refill the very envelope that handler is reading), and reads into message objects of
    // its own (the handler's may be one of this stream's).
    const pair = this.beginDrain(index);
    const a = pair[0]!;
    const b = pair[1]!;
    // Two message objects in turn: a failed poll may leave garbage in the one it read into.
    let out = a;
    let last: object | undefined;
    const tracking = this.lastTracking;
    let seq = 0;
    while (consumer.poll(out)) {
      if (last !== undefined) this.drainSkipped++;
      last = out;
      out = out === a ? b : a;
      copyTracking(consumer.envelope, tracking);
      seq = consumer.sequence - 1;
    }
    if (last !== undefined) {
      this.clockHint = this.clock.now();
      this.handlingSeq = seq;
      this.handle(index, last, tracking, handler as Handler<D, StreamName<D>>);
      this.drainCount = 1;
    }
    this.endDrain();
    return last !== undefined;
  }

  produce<K extends StreamName<D>>(stream: K, value: MessageOf<D, K>): boolean {
    // A handler produces to the same stream over and over: the last name's index is remembered.
    // The rare paths are methods of their own, so that this one stays small enough for V8 to
    // inline it into the handler, with `publish` inside it.
    const index = stream === this.lastProducedName ? this.lastProducedIndex : this.rememberStream(stream);
    const producer = this.producers[index] ?? this.producerOf(index);
    const envelope = producer.envelope;
    const now = this.clock.now();
    if (this.inHandler) {
      const context = this.context;
      envelope.origin_t = context.tracking.origin_t;
      envelope.parent_stream = context.streamIndex;
      envelope.parent_seq = context.seq;
      // Never before the handler's start (itself never before its message's publish time, read
      // on another thread's clock): every message keeps origin_t ≤ publish_t. A comparison, not
      // Math.max (see `handle`).
      const start = context.start;
      // biome-ignore lint/complexity/useMathMinMax: deliberate, see above
      envelope.publish_t = now > start ? now : start;
    } else if (this.stampIngress(envelope, now)) envelope.publish_t = now;
    else return false;
    // -1: a multi-producer stream dropped it (counted there).
    return producer.publish(value as object) !== -1;
  }

  /**
   * Handles every waiting timing record of every actor known to this thread (observers).
   * `nameOf(record.actor)` names the actor, `streamNames[record.stream]` the stream.
   */
  consumeTimings(handler: (record: Readonly<TimingRecord>) => void): number {
    const n = this.timings.drain(handler);
    this.work += n;
    return n;
  }

  /** The name of actor `id` (as in timing records), or `actor-<id>` if this thread does not know it yet. */
  nameOf(actorId: number): string {
    return this.names.get(actorId) ?? `actor-${actorId}`;
  }

  /** Stream names of the spine, in index order (as in `parent_stream` and timing records). */
  get streamNames(): readonly string[] {
    return this.spine.names;
  }

  /** The spine clock: ns since the spine was created, comparable across threads. */
  now(): number {
    return this.spine.clock.now();
  }

  /**
   * Every consumer of the spine's streams and timing queues this thread knows (the persister's
   * included): which ring, where it reads, how far behind it is. An ingress actor that must lose
   * nothing (a replay's player) publishes only while they are close behind; others need not ask,
   * and nothing ever waits for it. A snapshot that allocates: ask once per burst, not per message.
   */
  readers(): ReaderState[] {
    const spine = this.spine;
    const out: ReaderState[] = [];
    const add = (ring: string, stats: QueueStats) => {
      for (const c of stats.consumers) {
        out.push({ ring, consumer: c.index, position: c.position, lag: c.lag, capacity: stats.capacity });
      }
    };
    for (let i = 0; i < spine.names.length; i++) add(spine.names[i]!, spine.queue(i).stats());
    for (const [actor, queue] of spine.timings) add(`timings:${actor}`, queue.stats());
    return out;
  }

  /** True once the system is stopping: ingress actors should stop producing. */
  get stopping(): boolean {
    return this.spine.control.phase >= Phase.DRAINING;
  }

  /** @internal work done since the last call (messages handled or produced). */
  takeWork(): number {
    // Messages produced are counted by the producers themselves (one count fewer per message).
    let published = 0;
    const producers = this.producers;
    for (let i = 0; i < producers.length; i++) {
      const producer = producers[i];
      if (producer !== undefined) published += producer.published;
    }
    const work = this.work + published - this.publishedBefore;
    this.work = 0;
    this.publishedBefore = published;
    return work;
  }

  /** @internal the stream whose handler threw (since the current consume began), for crash reports. */
  get currentStream(): string | undefined {
    return this.failed < 0 ? undefined : this.spine.names[this.failed];
  }

  /** @internal true when a consumer of this adapter has something to read (or a lap to recover); a cheap hint. */
  hasPending(): boolean {
    const consumed = this.consumed;
    for (let i = 0; i < consumed.length; i++) if (this.consumers[consumed[i]!]!.ready()) return true;
    return this.timings.ready();
  }

  /** Where this adapter's consumers read next, spine streams and timing queues (where a restart resumes). */
  positions(): AdapterPositions {
    return {
      streams: this.spine.names.map((_, i) => this.consumers[i]?.sequence ?? null),
      timings: this.timings.positions(),
      otherTimings: this.start === 'head' || this.start.otherTimings === 'head' ? 'head' : 'first',
    };
  }

  /**
   * @internal milliseconds until a writer one of this adapter's consumers waits for is taken for
   * dead (Infinity: none): a thread parks no longer than this.
   */
  stallRemainingMs(): number {
    let least = this.timings.stallRemainingMs();
    const consumed = this.consumed;
    for (let i = 0; i < consumed.length; i++)
      least = Math.min(least, this.consumers[consumed[i]!]!.stallRemainingMs());
    return least;
  }

  /** @internal indices of the streams this adapter consumes (a thread parks on them). */
  get consumedStreams(): readonly number[] {
    return this.consumed;
  }

  /** @internal the exact check before a thread parks (see WaitCondition.readyToPark). */
  hasPendingExactly(): boolean {
    const consumed = this.consumed;
    for (let i = 0; i < consumed.length; i++) if (this.consumers[consumed[i]!]!.readyToPark()) return true;
    return this.timings.readyToPark();
  }

  stats(): AdapterStreamStats[] {
    return this.spine.names.map((stream, i) => {
      const { handled, skipped, failed } = streamFigures(this.figures, i, this.figuresCopy[i]!);
      return {
        stream,
        handled,
        skipped,
        // The consumer's and producer's own, to this moment (the figures' are as of a commit).
        lost: this.consumers[i]?.lost ?? 0,
        poisoned: this.consumers[i]?.poisoned ?? 0,
        failed,
        produced: this.producers[i]?.published ?? 0,
      };
    });
  }

  /** Per actor whose timing queue this adapter reads: records handled and records lost to laps. */
  timingStats(): AdapterTimingStats[] {
    return this.timings.stats((id) => this.nameOf(id));
  }

  /** Gives back every consumer entry and producer role (at exit). */
  close(): void {
    for (const c of this.consumers) c?.close();
    this.timings.close();
    for (const p of this.producers) p?.close();
    this.timing?.close();
  }

  private drain(
    stream: string,
    max: number,
    filter: ((msg: never) => boolean) | undefined,
    handler: Handler<D, never>,
  ): number {
    const index = this.spine.indexOf(stream);
    const consumer = this.consumerOf(index);
    // A consume nested in a handler leaves the handler's context as it found it, and reads into a
    // message object of its own (the handler's may be one of this stream's).
    const out = this.beginDrain(index)[0]!;
    // No try block around this loop (see `drainIndex`): if the actor's code throws, `handle` or
    // `passes` ends the drain before the error goes on.
    if (max > 0 && consumer.poll(out)) {
      // The first handler starts after the poll that found its message; back to back, the end
      // of a handler is the start of the next (between them only a poll, tens of ns; a read
      // costs ~10). Read here, unconditionally, not in `handle` behind a test: `handle` often got
      // compiled before that branch had run, deoptimized on it, and in some runs V8 then kept
      // calling what it had inlined before (Math.max, clock.now) as generic calls with boxed
      // doubles: ~20 bytes of garbage per message, and slower.
      this.clockHint = this.clock.now();
      do {
        if (filter !== undefined && !this.passes(filter, out)) {
          this.drainSkipped++;
          this.clockHint = this.clock.now();
          continue;
        }
        this.handlingSeq = consumer.sequence - 1;
        this.handle(index, out, consumer.envelope, handler as Handler<D, StreamName<D>>);
        this.drainCount++;
      } while (this.drainCount < max && consumer.poll(out));
    }
    const n = this.drainCount;
    this.endDrain();
    return n;
  }

  /**
   * Starts a drain of stream `index`; returns the message objects it reads into. One entered
   * inside a handler (or a filter) saves the context and the drain it interrupts, and reads into
   * objects of its own. What it allocates comes before anything changes: a drain that cannot
   * begin (out of memory, or of stack) leaves the one it would interrupt as it was, for that one's
   * handler to end (see `endDrain`).
   */
  private beginDrain(index: number): readonly object[] {
    const nested = this.inHandler || this.drainIndex >= 0;
    const outs = nested ? this.freshOuts(index) : this.outs[index]!;
    const outer = nested ? this.saveContext() : undefined;
    this.failed = -1;
    this.drainIndex = index;
    this.drainCount = 0;
    this.drainSkipped = 0;
    this.drainOuter = outer;
    this.drainDepth[index]!++;
    return outs;
  }

  /**
   * Ends the drain under way, normally or because the actor's code threw: counts what it handled
   * (once per drain, not per message; a handler that threw is not counted) and gives back what
   * it interrupted.
   */
  private endDrain(): void {
    const n = this.drainCount;
    const index = this.drainIndex;
    const consumer = this.consumers[index]!;
    const pending = this.pending;
    pending[index * 3]! += n;
    pending[index * 3 + 1]! += this.drainSkipped;
    pending[index * 3 + 2]! += this.drainFailed;
    this.drainFailed = 0;
    this.work += n;
    // A drain of this stream nested in one of its handlers (the same consumer) leaves the commit
    // to the outermost: a commit now would pass that handler's message, still being handled.
    if (--this.drainDepth[index]! === 0) {
      const next = consumer.sequence;
      // The figures change with the commit, right before it, not message by message, and only
      // when the consumer moved since the last (everything they count moves it): the copy the
      // last change did not write, then the commit, so that the copy whose NEXT is the committed
      // position is whole whatever instruction a termination lands on (see `FIGURES`).
      if (next !== this.figuresNext[index]) {
        const figures = this.figures;
        const from = index * FIGURES + this.figuresCopy[index]! * COUNTS;
        const copy = 1 - this.figuresCopy[index]!;
        const to = index * FIGURES + copy * COUNTS;
        figures[to + HANDLED] = figures[from + HANDLED]! + pending[index * 3]!;
        figures[to + SKIPPED] = figures[from + SKIPPED]! + pending[index * 3 + 1]!;
        figures[to + FAILED] = figures[from + FAILED]! + pending[index * 3 + 2]!;
        figures[to + LOST] = consumer.lost;
        figures[to + POISONED] = consumer.poisoned;
        figures[to + NEXT] = next;
        this.figuresCopy[index] = copy;
        this.figuresNext[index] = next;
        pending[index * 3] = 0;
        pending[index * 3 + 1] = 0;
        pending[index * 3 + 2] = 0;
      }
      // What was handled (or skipped) is committed only now, after the handlers and what they
      // produced: a stop reads the committed position (see ConsumerOptions.positions).
      consumer.commit();
    }
    const outer = this.drainOuter;
    if (outer !== undefined) {
      this.restoreContext(outer);
    } else {
      this.drainIndex = -1;
      this.drainCount = 0;
      this.drainSkipped = 0;
    }
  }

  /** A filter's verdict. If the filter throws, the drain ends there, as after a handler that throws. */
  private passes(filter: (msg: never) => boolean, msg: object): boolean {
    try {
      return filter(msg as never);
    } catch (error) {
      // The message was read, and neither handled nor skipped: counted as failed.
      this.drainFailed = 1;
      this.endDrain();
      throw error;
    }
  }

  /**
   * What `handle` takes and leaves in fields, not in arguments or a return value: a double passed
   * to or returned from a call V8 does not inline is boxed, 16 bytes of garbage per message (a
   * sequence is a double: it counts past 2^31).
   *
   * `clockHint`: the clock read the next handler takes as its start (read after the drain's
   * first poll, then the end of the handler before). `handlingSeq`: the message's sequence.
   */
  private clockHint = Number.NaN;
  private handlingSeq = Number.NaN;

  /**
   * The drain under way (a consume variant): its stream, what it handled so far, and what it
   * interrupted (a consume nested in a handler), or -1, 0, undefined. Fields, not locals under a
   * try/finally: TurboFan boxes the doubles moved in a loop inside a try block, 16 bytes per
   * message (measured on a relay fed bursts). The only try blocks are around the actor's calls,
   * in `handle` and `passes`, and they end the drain before rethrowing.
   */
  private drainIndex = -1;
  private drainCount = 0;
  /** Messages the drain under way read and skipped (a filter's, or older in `consumeLast`). */
  private drainSkipped = 0;
  /** 1 when the drain under way ends because the actor's code threw on its last message. */
  private drainFailed = 0;
  private drainOuter: SavedContext | undefined = undefined;

  /** Runs one handler on message `handlingSeq`, timed from `clockHint`; leaves its end there. */
  private handle(index: number, msg: object, tracking: Tracking, handler: Handler<D, StreamName<D>>): void {
    const seq = this.handlingSeq;
    const clock = this.clock;
    // The context is the handler's `meta` too: three stores serve both.
    const context = this.context;
    context.streamIndex = index;
    context.seq = seq;
    context.tracking = tracking;
    this.inHandler = true;
    // Read before the handler runs: a consume nested in it may refill the envelope object.
    const origin = tracking.origin_t;
    const published = tracking.publish_t;
    // The handler cannot have started before its message was published: the clock read was
    // made before the poll that found the message (the end of the handler before), or after it
    // but not ordered after its loads (an RDTSC reading; native/clock.cc). A comparison, not
    // Math.max: a call whose speculation once failed may be compiled as a generic call after.
    const hint = this.clockHint;
    // biome-ignore lint/complexity/useMathMinMax: deliberate, see above
    const start = hint > published ? hint : published;
    context.start = start;
    try {
      const returned: unknown = handler(msg as MessageOf<D, StreamName<D>>, this, context);
      // A handler returns nothing, or a value an arrow happens to (a sum): only a promise is refused.
      if (returned !== undefined) refuseAsync(returned, 'a handler');
    } catch (error) {
      // Even when the actor catches it, what it produces next is not a child; the crash report
      // names this stream, and the message is counted as failed.
      this.inHandler = false;
      this.failed = index;
      this.drainFailed = 1;
      this.endDrain();
      throw error;
    }
    this.inHandler = false;
    // Never before the start, which may come from another thread's clock.
    const now = clock.now();
    // biome-ignore lint/complexity/useMathMinMax: as for `start`
    const end = now > start ? now : start;
    const timing = this.timing;
    if (timing !== undefined) {
      // In place: no record object, no codec check; nothing between claim and commit can throw.
      const { f64, u16 } = this.timingViews!;
      const at = timing.claim();
      f64[(at + RECORD_SEQ) >> 3] = seq;
      f64[(at + RECORD_ORIGIN) >> 3] = origin;
      f64[(at + RECORD_PUBLISH) >> 3] = published;
      f64[(at + RECORD_START) >> 3] = start;
      f64[(at + RECORD_END) >> 3] = end;
      u16[(at + RECORD_STREAM) >> 1] = index;
      u16[(at + RECORD_ACTOR) >> 1] = this.actorId;
      timing.commit();
    }
    this.clockHint = end;
  }

  /**
   * The context of the handler running now, copied: a consume nested in a handler runs handlers
   * of its own, which set the context (and may refill the envelope object it points to).
   */
  private saveContext(): SavedContext {
    const context = this.context;
    const tracking = { ...context.tracking };
    return {
      streamIndex: context.streamIndex,
      seq: context.seq,
      start: context.start,
      tracking,
      inHandler: this.inHandler,
      drainIndex: this.drainIndex,
      drainCount: this.drainCount,
      drainSkipped: this.drainSkipped,
      drainOuter: this.drainOuter,
    };
  }

  /** Back where a nested consume began: what the handler produces next is again a child of its message. */
  private restoreContext(saved: SavedContext): void {
    const context = this.context;
    context.streamIndex = saved.streamIndex;
    context.seq = saved.seq;
    context.start = saved.start;
    context.tracking = saved.tracking;
    this.inHandler = saved.inHandler;
    this.drainIndex = saved.drainIndex;
    this.drainCount = saved.drainCount;
    this.drainSkipped = saved.drainSkipped;
    this.drainOuter = saved.drainOuter;
  }

  /** Two new message objects of stream `index` (for a nested consume; allocated, but rare). */
  private freshOuts(index: number): [object, object] {
    const layout = this.spine.queue(index).layout;
    return [layout.create(), layout.create()];
  }

  /** Looks a produced stream's name up and remembers it for the next `produce`. */
  private rememberStream(stream: string): number {
    const index = this.spine.indexOf(stream);
    this.lastProducedName = stream;
    this.lastProducedIndex = index;
    return index;
  }

  /**
   * Stamps an ingress message (produced outside any handler) as a new origin, or refuses it
   * (and counts it) once the system is stopping.
   */
  private stampIngress(envelope: Tracking, now: number): boolean {
    const control = this.spine.control;
    // Busy before the phase is read (see ThreadActivity): a stop that saw this thread at rest
    // after its phase change is sure that this read sees it.
    this.activity?.busy();
    if (control.phase >= Phase.DRAINING) {
      control.countRefused();
      return false;
    }
    envelope.origin_t = now;
    envelope.parent_stream = NO_PARENT;
    envelope.parent_seq = 0;
    return true;
  }

  private consumerOf(index: number): Consumer<object, Tracking> {
    const existing = this.consumers[index];
    if (existing !== undefined) return existing;
    const queue = this.spine.queue(index);
    const from = this.start === 'head' ? 'head' : (this.start.streams[index] ?? 'head');
    const consumer = queue.consumer({
      from,
      signal: this.spine.control.streamSignal(index),
      positions: 'commit',
      // Its system finds it by this tag once the thread ended without a report.
      owner: actorConsumerOwner(this.actorId),
    });
    this.consumers[index] = consumer;
    this.consumed.push(index);
    this.outs[index] = [queue.layout.create(), queue.layout.create()];
    return consumer;
  }

  private producerOf(index: number): QueueProducer<object, Tracking> {
    const queue = this.spine.queue(index);
    try {
      const signal = this.spine.control.streamSignal(index);
      // Read by the system once the thread has ended: of a stream several produce, the count this
      // producer keeps in the figures; of a stream it alone produces, the queue's count from here.
      const producer = queue.multiProducer
        ? queue.producer({ signal, counter: { counts: this.figures, index: index * FIGURES + PRODUCED } })
        : queue.producer({ signal });
      // The envelope object belongs to this producer: its actor never changes.
      producer.envelope.actor = this.actorId;
      this.producers[index] = producer;
      if (!queue.multiProducer) this.figures[index * FIGURES + PRODUCED_FROM] = queue.settledPublished();
      return producer;
    } catch (error) {
      throw new ConfigError(
        `actor '${this.actorName}' cannot produce stream '${this.spine.names[index]}': another actor already does (declare the stream with multiProducer: true to allow several)`,
        { cause: error },
      );
    }
  }
}

/**
 * The count a drain of "everything waiting" stops at (2^30 - 1; a drain that reaches it returns
 * and the next round goes on, nothing skipped). A small integer: Infinity was a double, boxed on
 * every call to `drain`, 16 bytes of garbage per round.
 */
const ALL = 0x3fffffff;

/** What a consume nested in a handler (or a filter) gives back when it ends. */
interface SavedContext {
  readonly streamIndex: number;
  readonly seq: number;
  readonly start: number;
  readonly tracking: Tracking;
  readonly inHandler: boolean;
  readonly drainIndex: number;
  readonly drainCount: number;
  readonly drainSkipped: number;
  readonly drainOuter: SavedContext | undefined;
}

/**
 * What `produce` reads while a handler runs (the parent's id and origin), and what the handler
 * gets as `meta`: the same object, so that a handler call costs three stores, not seven.
 */
class HandlerContext implements MessageMeta {
  streamIndex = NO_PARENT;
  seq = 0;
  /** When the running handler started (ns, spine clock): what it produces is published no earlier. */
  start = 0;
  tracking: Tracking;
  private readonly names: readonly string[];

  constructor(names: readonly string[], tracking: Tracking) {
    this.names = names;
    this.tracking = tracking;
  }

  get stream(): string {
    return this.names[this.streamIndex] ?? '';
  }
}

function copyTracking(from: Tracking, to: Tracking): void {
  to.origin_t = from.origin_t;
  to.publish_t = from.publish_t;
  to.parent_seq = from.parent_seq;
  to.parent_stream = from.parent_stream;
  to.actor = from.actor;
}
