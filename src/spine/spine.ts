import { ConfigError } from '../errors.js';
import { Layout, type LayoutDescription, type QueueOptions, SeqlockQueue } from '../queues/index.js';
import { DEFAULT_MAX_CONSUMERS } from '../queues/queue-header.js';
import { Clock } from './clock.js';
import { SpineControl } from './control.js';
import { checkCapacity, checkPoisonTimeout, type SpineDefinition, type StreamSpecs } from './definition.js';
import { TimingRecord, Tracking } from './tracking.js';

/** A stream queue: user messages with the tracking envelope. */
export type StreamQueue = SeqlockQueue<object, Tracking>;
export type TimingQueue = SeqlockQueue<TimingRecord>;

/** Everything a worker needs to attach to a spine: plain data and shared buffers, postable. */
export interface SpineDescriptor {
  readonly streams: readonly {
    readonly name: string;
    readonly layout: LayoutDescription;
    readonly buffer: SharedArrayBuffer;
  }[];
  /** One timing queue per actor, keyed by actor id. */
  readonly timings: readonly { readonly actor: number; readonly buffer: SharedArrayBuffer }[];
  readonly control: SharedArrayBuffer;
}

export interface SpineOptions {
  /** Capacity of each actor's timing queue (a power of two). Default 2^14. */
  readonly timingCapacity?: number;
  /** Consumers each stream accepts (actors and observers). Default 64. */
  readonly maxConsumers?: number;
  /** See `QueueOptions.poisonTimeoutMs`: the default of every stream and timing queue (1000 ms). */
  readonly poisonTimeoutMs?: number;
  /**
   * Cores the system's threads share, for the adaptive wait's long spin (see CoreBudget).
   * Default: `os.availableParallelism()`.
   */
  readonly cores?: number;
}

/**
 * A spine in one thread: its stream queues, the actors' timing queues, the shared signal and
 * the clock. Created once in the main thread, attached in every worker from its descriptor —
 * the worker rebuilds the layouts from their descriptions, so it needs none of the user's code.
 */
export class Spine {
  readonly names: readonly string[];
  readonly control: SpineControl;
  readonly clock: Clock;
  private readonly queues: readonly StreamQueue[];
  private readonly byName: ReadonlyMap<string, number>;
  private readonly timingQueues = new Map<number, TimingQueue>();
  /** How this thread creates timing queues (the main thread's; a worker creates none). */
  private readonly timingOptions: Omit<QueueOptions, 'envelope'>;

  private constructor(
    names: readonly string[],
    queues: readonly StreamQueue[],
    control: SpineControl,
    timingOptions: Omit<QueueOptions, 'envelope'>,
  ) {
    this.names = names;
    this.queues = queues;
    this.control = control;
    this.byName = new Map(names.map((name, index) => [name, index]));
    this.clock = new Clock(control.clockBaseNs);
    this.timingOptions = timingOptions;
  }

  /** Allocates every stream queue and the control block (main thread). */
  static create(definition: SpineDefinition<StreamSpecs>, options: SpineOptions = {}): Spine {
    // By shape, not class: a system module may load another copy of dorsal than the command's.
    if (
      typeof definition !== 'object' ||
      definition === null ||
      !Array.isArray(definition.names) ||
      typeof definition.streams !== 'object'
    ) {
      throw new ConfigError('a spine is made with defineSpine({ streamName: { message, capacity } })');
    }
    const names = definition.names;
    // Checked before any queue is made, naming the option (another copy of dorsal's defineSpine
    // may not have checked the streams').
    checkPoisonTimeout(options.poisonTimeoutMs, "spine option 'poisonTimeoutMs'");
    const queues = names.map((name) => {
      const spec = definition.streams[name]!;
      checkPoisonTimeout(spec.poisonTimeoutMs, `stream '${name}': 'poisonTimeoutMs'`);
      return SeqlockQueue.create<object, Tracking>(spec.message, {
        capacity: spec.capacity,
        multiProducer: spec.multiProducer ?? false,
        maxConsumers: options.maxConsumers ?? DEFAULT_MAX_CONSUMERS,
        envelope: Tracking,
        ...poisonTimeout(spec.poisonTimeoutMs ?? options.poisonTimeoutMs),
      });
    });
    const timingCapacity = options.timingCapacity ?? 1 << 14;
    // Checked now, as the streams' capacities are, not at the first spawn's timing queue.
    checkCapacity(timingCapacity, "spine option 'timingCapacity'");
    return new Spine(names, queues, SpineControl.create(Clock.newBase(), names.length, options.cores), {
      capacity: timingCapacity,
      ...poisonTimeout(options.poisonTimeoutMs),
    });
  }

  /** Attaches to a spine created elsewhere (a worker). */
  static attach(descriptor: SpineDescriptor): Spine {
    const queues = descriptor.streams.map((s) =>
      SeqlockQueue.attach<object, Tracking>(Layout.fromDescription(s.layout), s.buffer, {
        envelope: Tracking,
      }),
    );
    const spine = new Spine(
      descriptor.streams.map((s) => s.name),
      queues,
      SpineControl.attach(descriptor.control),
      { capacity: 2 },
    );
    for (const t of descriptor.timings)
      spine.timingQueues.set(t.actor, SeqlockQueue.attach(TimingRecord, t.buffer));
    return spine;
  }

  /** Index of stream `name`; throws a `ConfigError` naming it and the known streams if unknown. */
  indexOf(name: string): number {
    const index = this.byName.get(name);
    if (index === undefined) {
      throw new ConfigError(`unknown stream '${String(name)}' (this spine has: ${this.names.join(', ')})`);
    }
    return index;
  }

  queue(index: number): StreamQueue {
    return this.queues[index]!;
  }

  /** Creates the timing queue of actor `actor` (main thread, at spawn). */
  addTimingQueue(actor: number): TimingQueue {
    const queue = SeqlockQueue.create(TimingRecord, this.timingOptions);
    this.timingQueues.set(actor, queue);
    return queue;
  }

  /** Attaches the timing queue of an actor spawned after this thread attached (a worker). */
  attachTimingQueue(actor: number, buffer: SharedArrayBuffer): void {
    if (!this.timingQueues.has(actor))
      this.timingQueues.set(actor, SeqlockQueue.attach(TimingRecord, buffer));
  }

  timingQueue(actor: number): TimingQueue | undefined {
    return this.timingQueues.get(actor);
  }

  /** Timing queues known to this thread, by actor id. */
  get timings(): ReadonlyMap<number, TimingQueue> {
    return this.timingQueues;
  }

  descriptor(): SpineDescriptor {
    return {
      streams: this.names.map((name, i) => ({
        name,
        layout: this.queues[i]!.layout.describe(),
        buffer: this.queues[i]!.buffer,
      })),
      timings: [...this.timingQueues].map(([actor, q]) => ({ actor, buffer: q.buffer })),
      control: this.control.buffer,
    };
  }
}

/** The poison timeout option, when one is set. */
function poisonTimeout(ms: number | undefined): { poisonTimeoutMs?: number } {
  return ms === undefined ? {} : { poisonTimeoutMs: ms };
}
