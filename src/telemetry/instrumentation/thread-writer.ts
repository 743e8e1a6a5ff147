import { threadId } from 'node:worker_threads';
import { ConfigError } from '../../errors.js';
import {
  type BufferViews,
  type ClaimingProducer,
  type QueueProducer,
  SeqlockQueue,
} from '../../queues/index.js';
import { Clock } from '../../spine/clock.js';
import { CachedId } from './cached-id.js';
import { adoptProcessContext } from './context.js';
import type { ThreadBuffersDescriptor } from './descriptor.js';
import { LogEvent, MetricEvent, SpanEvent } from './events.js';
import { PropertyWriter } from './properties.js';
import { StringInterner } from './string-table.js';

/** Spans open at once on one thread; a span begun deeper is not recorded (and counted). */
export const MAX_SPAN_DEPTH = 128;

/**
 * The writing side of one thread's buffers: what every log, metric and span call of the thread
 * uses. Made once per thread (see binding.ts); nothing here is shared with another thread but
 * the buffers themselves.
 *
 * The producers do not wake readers (`wakes: false`): readers poll, as the spine's timing readers
 * do, so that an event costs no wake-up handshake. A producer never waits: when a reader falls a
 * lap behind, the producer overwrites what it has not read, and the reader counts what it lost.
 */
/** The last `ThreadWriter.generation` given. */
let generations = 0;

export class ThreadWriter {
  /** Unique among the writers this thread makes: what a prepared line knows its writer by. */
  readonly generation = ++generations;
  readonly descriptor: ThreadBuffersDescriptor;
  readonly strings: StringInterner;
  readonly clock: Clock;
  /**
   * Events are written in place (claim, stores, commit): no message object, no codec, no check
   * of fields the writers fill themselves. Nothing is allocated per event.
   */
  readonly logs: ClaimingProducer<LogEvent, null>;
  readonly metrics: ClaimingProducer<MetricEvent, null>;
  readonly spans: ClaimingProducer<SpanEvent, null>;
  /** The views over each queue's buffer, for the stores between claim and commit. */
  readonly logViews: BufferViews;
  readonly metricViews: BufferViews;
  readonly spanViews: BufferViews;
  /** The last strings each call site interned (see CachedId), with this table's ids. */
  readonly metricName = new CachedId();
  readonly metricUnit = new CachedId();
  readonly spanName = new CachedId();
  /** Resolves a log entry's properties, then stores them into its slot. */
  readonly properties: PropertyWriter;
  /** The open spans, innermost last: their ids and name ids. */
  readonly spanIds = new Float64Array(MAX_SPAN_DEPTH);
  readonly spanNames = new Uint32Array(MAX_SPAN_DEPTH);
  depth = 0;
  /** The last span id given; ids are unique in the buffer, across the threads that bind it in turn. */
  lastSpanId: number;

  /** Binds `descriptor` to this thread: takes its writer and producer roles (a `ConfigError` if taken). */
  constructor(descriptor: ThreadBuffersDescriptor) {
    this.descriptor = descriptor;
    const logs = SeqlockQueue.attach(LogEvent, descriptor.logs);
    const metrics = SeqlockQueue.attach(MetricEvent, descriptor.metrics);
    const spans = SeqlockQueue.attach(SpanEvent, descriptor.spans);
    adoptProcessContext(descriptor.levels, descriptor.clockBaseNs);
    this.strings = StringInterner.claim(descriptor.strings, threadId);
    const taken: QueueProducer<object, null>[] = [];
    try {
      this.logs = logs.claimingProducer({ wakes: false });
      taken.push(this.logs);
      this.metrics = metrics.claimingProducer({ wakes: false });
      taken.push(this.metrics);
      this.spans = spans.claimingProducer({ wakes: false });
    } catch (error) {
      for (const producer of taken) producer.close();
      this.strings.close();
      throw new ConfigError('these instrumentation buffers are already written by another thread', {
        cause: error,
      });
    }
    this.clock = new Clock(descriptor.clockBaseNs);
    this.logViews = this.logs.views;
    this.metricViews = this.metrics.views;
    this.spanViews = this.spans.views;
    this.properties = new PropertyWriter(this.strings, new Uint8Array(logs.capacity));
    // Every span id opens with a begin event: after a restart, ids resume past every one given.
    this.lastSpanId = spans.stats().published;
  }

  /** The innermost open span's id, or 0. */
  currentSpan(): number {
    const depth = this.depth;
    return depth === 0 ? 0 : this.spanIds[depth - 1]!;
  }

  /** Whether anything was recorded here: an event, or a string beyond the empty one. */
  get used(): boolean {
    return this.strings.size > 1 || this.logs.published + this.metrics.published + this.spans.published > 0;
  }

  /** Gives the writer and producer roles back: another thread may bind the buffers. */
  close(): void {
    this.logs.close();
    this.metrics.close();
    this.spans.close();
    this.strings.close();
  }
}
