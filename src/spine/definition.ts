import { ConfigError } from '../errors.js';
import { checkOptionNames, type OptionNames } from '../options.js';
import { Layout } from '../queues/index.js';
import { SequenceMath } from '../queues/sequence.js';
import { isTimerMs, TIMER_MS_RANGE } from '../timer-ms.js';
import { MAX_STREAMS } from './tracking.js';

/** One stream of a spine: its message layout and ring capacity (a power of two). */
export interface StreamSpec<M extends object = object> {
  readonly message: Layout<M>;
  readonly capacity: number;
  /** Several actors may produce this stream (slots claimed with an atomic add). */
  readonly multiProducer?: boolean;
  /** See `QueueOptions.poisonTimeoutMs`; default: the spine's (`SpineOptions.poisonTimeoutMs`). */
  readonly poisonTimeoutMs?: number;
}

export type StreamSpecs = Readonly<Record<string, StreamSpec>>;

/** Every name a stream's spec may hold. */
const STREAM_SPEC_NAMES = {
  message: true,
  capacity: true,
  multiProducer: true,
  poisonTimeoutMs: true,
} as const satisfies OptionNames<StreamSpec>;

/** The message type of stream `K`. */
export type StreamMessage<S extends StreamSpecs, K extends keyof S> =
  S[K]['message'] extends Layout<infer M> ? M : never;

/**
 * A spine as declared: one queue per stream. Create it in the main thread with `Spine.create`
 * (a `System` does that for you); actors are typed against it with `Actor<typeof spine>`.
 */
export class SpineDefinition<S extends StreamSpecs = StreamSpecs> {
  readonly streams: S;
  /** Stream names in declaration order; a stream's index is its position here. */
  readonly names: readonly string[];

  /** Use `defineSpine`. */
  constructor(streams: S) {
    this.streams = streams;
    this.names = Object.keys(streams);
  }
}

const STREAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Declares a spine from its streams.
 *
 * @example
 * export const spine = defineSpine({
 *   ticks:  { message: Tick,  capacity: 1 << 14 },
 *   orders: { message: Order, capacity: 1 << 12 },
 * });
 */
export function defineSpine<const S extends StreamSpecs>(streams: S): SpineDefinition<S> {
  if (streams === null || typeof streams !== 'object' || Array.isArray(streams)) {
    throw new ConfigError('defineSpine takes an object of { streamName: { message, capacity } }');
  }
  const names = Object.keys(streams);
  if (names.length === 0) throw new ConfigError('a spine needs at least one stream');
  if (names.length > MAX_STREAMS)
    throw new ConfigError(`a spine has at most ${MAX_STREAMS} streams, got ${names.length}`);
  const seen = new Map<string, string>();
  for (const name of names) {
    if (!STREAM_NAME.test(name)) {
      throw new ConfigError(
        `stream '${name}': a stream name is letters, digits and '_', not starting with a digit`,
      );
    }
    // Names end up as table names and CLI arguments, where case does not tell streams apart.
    const folded = name.toLowerCase();
    const other = seen.get(folded);
    if (other !== undefined) throw new ConfigError(`duplicate stream name: '${name}' and '${other}'`);
    seen.set(folded, name);
    const spec: StreamSpec | undefined = streams[name];
    checkOptionNames(spec, STREAM_SPEC_NAMES, 'stream option', name);
    if (!spec || !(spec.message instanceof Layout)) {
      throw new ConfigError(`stream '${name}': 'message' must be a layout made with defineMessage`);
    }
    if (spec.multiProducer !== undefined && typeof spec.multiProducer !== 'boolean') {
      throw new ConfigError(
        `stream '${name}': 'multiProducer' must be true or false, got ${String(spec.multiProducer)}`,
      );
    }
    checkCapacity(spec.capacity, `stream '${name}'`);
    checkPoisonTimeout(spec.poisonTimeoutMs, `stream '${name}': 'poisonTimeoutMs'`);
  }
  return new SpineDefinition(streams);
}

/**
 * The queue's own check of a ring capacity, run before any queue is made, so that the error names
 * what it is of (`what`: "stream 'ticks'", "spine option 'timingCapacity'").
 */
export function checkCapacity(capacity: number, what: string): void {
  try {
    new SequenceMath(capacity);
  } catch (error) {
    throw new ConfigError(`${what}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The queue's own check of a poison timeout (when one is set), run before any queue is made, so
 * that the error names the option (`what`: "stream 'ticks': 'poisonTimeoutMs'").
 */
export function checkPoisonTimeout(ms: unknown, what: string): void {
  if (ms !== undefined && !isTimerMs(ms))
    throw new ConfigError(`${what} must be ${TIMER_MS_RANGE}, got ${String(ms)}`);
}
