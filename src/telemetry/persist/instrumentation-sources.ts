/**
 * A thread's instrumentation buffers as persister sources: one per queue (logs, metrics, spans),
 * and the dependencies of their blocks (the coverage, the thread's drops at the source, the
 * strings the block's events name), so that each block decodes on its own.
 */
import type { InstrumentationPositions } from '../../actors/index.js';
import {
  collectStringIds,
  type EventKind,
  encodeStringEntries,
  INSTRUMENTATION_STREAMS,
  type InstrumentationDrops,
  type StringTableReader,
  type ThreadBuffersDescriptor,
  ThreadBuffersReader,
} from '../instrumentation/index.js';
import type { InstrumentationSourceDrops, PersistSource, RawBlock } from './protocol.js';
import { BlockCoverage, RecordHeader, SourceDrops } from './records.js';
import { timeIndexOf } from './streams.js';

/**
 * The three sources of a thread's buffers, keyed `<tag>#<number>`. `from`: where each queue's
 * records start, or `'oldest'` for every event still in the queues.
 */
export function threadSources(
  descriptor: ThreadBuffersDescriptor,
  number: number,
  from: InstrumentationPositions | 'oldest',
): PersistSource[] {
  const reader = ThreadBuffersReader.attach(descriptor);
  return INSTRUMENTATION_STREAMS.map(({ name, tag, layout }): PersistSource => {
    const queue = reader.queue(name);
    const start = from === 'oldest' ? Math.max(0, queue.stats().published - queue.capacity) : from[name];
    return {
      key: `${tag}#${number}`,
      kind: tag,
      layout: layout.describe(),
      envelope: false,
      buffer: descriptor[name],
      from: start,
      timeIndex: timeIndexOf([layout.describe()], 0, 't'),
      drops: {
        strings: descriptor.strings,
        kind: name,
        before: (from !== 'oldest' ? from.dropsBefore?.[name] : undefined) ?? reader.droppedOf(name),
      },
    };
  });
}

/**
 * What a source's thread dropped at the source since the persister attached to it. The thread
 * counts in 32-bit words, which wrap (2^32 drops: a minute and a half of a thread dropping flat
 * out): each read adds what changed since the one before, modulo 2^32, to a total that does
 * not, so reads must come oftener than that (the persister's come every pass, or block).
 */
export class DropsSince {
  private lastStrings: number;
  private lastDepth: number;
  private strings = 0;
  private depth = 0;

  constructor(
    private readonly drops: InstrumentationSourceDrops,
    private readonly table: StringTableReader,
  ) {
    this.lastStrings = drops.before.strings;
    this.lastDepth = drops.before.depth;
  }

  /** The drops since the attach, read now. */
  read(): InstrumentationDrops {
    this.update();
    return { strings: this.strings, depth: this.depth };
  }

  /** The same, summed: read without making an object (checked on every pass). */
  total(): number {
    this.update();
    return this.strings + this.depth;
  }

  private update(): void {
    const strings = this.table.droppedForStringsOf(this.drops.kind);
    this.strings += (strings - this.lastStrings) >>> 0;
    this.lastStrings = strings;
    if (this.drops.kind === 'spans') {
      const depth = this.table.droppedForDepth;
      this.depth += (depth - this.lastDepth) >>> 0;
      this.lastDepth = depth;
    }
  }
}

/** Every event those drops count (none for a source that is no instrumentation queue). */
export function dropsTotal(drops: InstrumentationDrops | undefined): number {
  return drops === undefined ? 0 : drops.strings + drops.depth;
}

/**
 * The dependencies of an instrumentation block: its `BlockCoverage` (`coverage`: first_seq,
 * end_seq, lost_total, poisoned_total), one `SourceDrops`, then a `StringEntry` per string id
 * its records name, in id order. `recordBytes`: the records' size, header included.
 */
export function instrumentationDependencies(
  coverage: Float64Array,
  raw: RawBlock,
  recordBytes: number,
  kind: EventKind,
  strings: StringTableReader,
): Uint8Array {
  const ids = new Set<number>();
  collectStringIds(
    kind,
    new Uint8Array(raw.records, 0, raw.bytes),
    raw.count,
    ids,
    RecordHeader.size,
    recordBytes,
  );
  // Every id an event names was published before the event: below the count read now. A record
  // that names another id (a writer that wrote garbage) is shipped, its id left unresolved.
  const count = strings.count;
  const entries = encodeStringEntries(
    strings,
    [...ids].filter((id) => id < count),
  );
  const drops = new Float64Array([raw.dropped?.strings ?? 0, raw.dropped?.depth ?? 0]);
  const out = new Uint8Array(BlockCoverage.size + SourceDrops.size + entries.length);
  out.set(new Uint8Array(coverage.buffer, coverage.byteOffset, BlockCoverage.size), 0);
  out.set(new Uint8Array(drops.buffer), BlockCoverage.size);
  out.set(entries, BlockCoverage.size + SourceDrops.size);
  return out;
}
