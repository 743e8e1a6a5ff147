import { type BoundCodec, viewsOf } from '../../queues/codec.js';
import { type Layout, SeqlockQueue } from '../../queues/index.js';
import { checkDescriptor, type ThreadBuffersDescriptor } from './descriptor.js';
import { LogEvent, MetricEvent, SpanEvent, STRING_ID_FIELDS, StringEntry } from './events.js';
import { StringTableReader } from './string-table.js';

/** The three queues of a thread's buffers, with the lake tag and the layout of each. */
export const INSTRUMENTATION_STREAMS = [
  { name: 'logs', tag: 'log', layout: LogEvent },
  { name: 'metrics', tag: 'metrics', layout: MetricEvent },
  { name: 'spans', tag: 'spans', layout: SpanEvent },
] as const;

export type InstrumentationStreamName = (typeof INSTRUMENTATION_STREAMS)[number]['name'];

/** What a thread's buffers dropped at the source (what readers lost to laps, each reader counts). */
export interface InstrumentationDrops {
  /** Events dropped because one of their strings could not be interned. */
  readonly strings: number;
  /** Spans not begun because 128 were already open. */
  readonly depth: number;
}

/**
 * One thread's buffers opened for reading, from any thread: what the persister attaches to.
 *
 * Each queue is an ordinary `SeqlockQueue`: open a consumer on it (`reader.logs.consumer()`), and
 * copy the raw bytes of each event (`layout.size` bytes) into a block. Its producer never wakes
 * anyone: poll (or park with a timeout). A reader that falls a lap behind loses what was
 * overwritten and counts it (`consumer.lost`): a full buffer never blocks the thread it serves.
 * Events carry string ids: resolve them with `strings`, and ship with each block the strings its
 * events reference (`collectStringIds`, `encodeStringEntries`) as its dependencies.
 *
 * @example
 * const reader = ThreadBuffersReader.attach(descriptor);
 * const logs = reader.logs.consumer({ from: 'oldest' });
 * const event = LogEvent.create();
 * while (logs.poll(event)) console.log(reader.strings.text(event.template));
 */
export class ThreadBuffersReader {
  readonly descriptor: ThreadBuffersDescriptor;
  readonly logs: SeqlockQueue<LogEvent>;
  readonly metrics: SeqlockQueue<MetricEvent>;
  readonly spans: SeqlockQueue<SpanEvent>;
  readonly strings: StringTableReader;

  private constructor(descriptor: ThreadBuffersDescriptor) {
    this.descriptor = descriptor;
    this.logs = SeqlockQueue.attach(LogEvent, descriptor.logs);
    this.metrics = SeqlockQueue.attach(MetricEvent, descriptor.metrics);
    this.spans = SeqlockQueue.attach(SpanEvent, descriptor.spans);
    this.strings = StringTableReader.attach(descriptor.strings);
  }

  /** Opens a descriptor made in any thread of the process (a `ConfigError` if it is not one). */
  static attach(descriptor: ThreadBuffersDescriptor): ThreadBuffersReader {
    return new ThreadBuffersReader(checkDescriptor(descriptor));
  }

  get name(): string {
    return this.descriptor.name;
  }

  /** Every event time is ns since this base, on the spine clock's line. */
  get clockBaseNs(): number {
    return this.descriptor.clockBaseNs;
  }

  /** The threadId of the thread writing into these buffers (-1 until one binds them). */
  get threadId(): number {
    return this.strings.threadId;
  }

  get dropped(): InstrumentationDrops {
    return { strings: this.strings.droppedForStrings, depth: this.strings.droppedForDepth };
  }

  /** What the thread dropped of one stream's events at the source (depth: spans only). */
  droppedOf(stream: InstrumentationStreamName): InstrumentationDrops {
    return {
      strings: this.strings.droppedForStringsOf(stream),
      depth: stream === 'spans' ? this.strings.droppedForDepth : 0,
    };
  }

  /** The queue of one stream by name. */
  queue(
    name: InstrumentationStreamName,
  ): SeqlockQueue<LogEvent> | SeqlockQueue<MetricEvent> | SeqlockQueue<SpanEvent> {
    return this[name];
  }
}

/**
 * Adds to `into` the string ids referenced by `count` events of `stream` laid end to end in
 * `bytes` from `byteOffset`, each `stride` bytes apart (default: the layout's size, as a block
 * holds them): what a block's dependencies must hold.
 */
export function collectStringIds(
  stream: InstrumentationStreamName,
  bytes: Uint8Array,
  count: number,
  into: Set<number>,
  byteOffset = 0,
  stride?: number,
): void {
  const layout = layoutOf(stream);
  const step = stride ?? layout.size;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const offsets = STRING_ID_FIELDS[stream].map(
    (name) => layout.describe().fields.find((f) => f.name === name)!.offset,
  );
  for (let i = 0; i < count; i++) {
    const base = byteOffset + i * step;
    for (const offset of offsets) into.add(view.getUint32(base + offset, true));
  }
}

/**
 * The strings `ids` as `StringEntry` records laid end to end (`StringEntry.size` bytes each), in
 * id order: a block's dependencies. Every id must be below `strings.count`.
 */
export function encodeStringEntries(strings: StringTableReader, ids: Iterable<number>): Uint8Array {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const buffer = new ArrayBuffer(sorted.length * StringEntry.size);
  const codec: BoundCodec<StringEntry> = StringEntry.bind(viewsOf(buffer));
  const entry = StringEntry.create();
  sorted.forEach((id, i) => {
    entry.id = id;
    entry.text = strings.text(id);
    // check() measures the string, which write() then copies: it must come first.
    codec.check(entry);
    codec.write(i * StringEntry.size, entry);
  });
  return new Uint8Array(buffer);
}

/** Reads `StringEntry` records back: id → text (what an analytics reader does with dependencies). */
export function decodeStringEntries(bytes: Uint8Array): Map<number, string> {
  const copy = bytes.slice();
  const codec: BoundCodec<StringEntry> = StringEntry.bind(viewsOf(copy.buffer));
  const entry = StringEntry.create();
  const out = new Map<number, string>();
  for (let at = 0; at + StringEntry.size <= copy.length; at += StringEntry.size) {
    codec.read(at, entry);
    out.set(entry.id, entry.text);
  }
  return out;
}

function layoutOf(stream: InstrumentationStreamName): Layout<object> {
  const found = INSTRUMENTATION_STREAMS.find((s) => s.name === stream);
  return found!.layout as Layout<object>;
}
