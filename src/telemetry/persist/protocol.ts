/**
 * The protocol between the persister (main thread: compression, sink, lake) and its worker thread
 * (which only copies slots into blocks), as typed unions.
 */
import type { LayoutDescription } from '../../queues/index.js';
import type { SpineDescriptor } from '../../spine/index.js';
import type { EventKind, InstrumentationDrops, ThreadBuffersDescriptor } from '../instrumentation/index.js';

/** What a persisted source is, and its lake stream's tag. */
export type SourceKind = 'messages' | 'timings' | 'log' | 'metrics' | 'spans';

/** A queue the persister reads: a spine stream, an actor's timing queue, or a thread's instrumentation queue. */
export interface PersistSource {
  /** Unique among the sources: `stream:<name>`, `timings:<actor id>`, `<tag>#<thread number>`. */
  readonly key: string;
  readonly kind: SourceKind;
  /** The queue's message layout. */
  readonly layout: LayoutDescription;
  /** The queue carries the spine's tracking envelope before each message. */
  readonly envelope: boolean;
  readonly buffer: SharedArrayBuffer;
  /** The exact sequence the persister starts at. */
  readonly from: number;
  /**
   * What the source's earlier readers counted lost and poisoned (a persister's thread restarted
   * after one died): its blocks' totals go on from there. Default 0.
   */
  readonly lostBefore?: number;
  readonly poisonedBefore?: number;
  /** Float64 index, within a record, of the time the block's begin and end are taken from. */
  readonly timeIndex: number;
  /** An instrumentation queue: its thread's string table, whose drop counters its blocks carry. */
  readonly drops?: InstrumentationSourceDrops;
  /**
   * The persister thread's own instrumentation: at the stop it is read to its end, wherever that
   * is (the thread writes there itself, between the stop's passes), not to where it stood.
   */
  readonly own?: boolean;
}

/** Where an instrumentation source's drops at the source are counted. */
export interface InstrumentationSourceDrops {
  readonly strings: SharedArrayBuffer;
  readonly kind: EventKind;
  /** The counts when the persister attached: blocks carry what was dropped since. */
  readonly before: InstrumentationDrops;
}

export interface PersisterWorkerData {
  /** A System's spine: the persister parks on its control block's word `worker` (a phase change wakes it). */
  readonly spine?: SpineDescriptor;
  readonly worker?: number;
  /** The persister thread's own instrumentation buffers, bound before anything else. */
  readonly instrumentation: ThreadBuffersDescriptor;
  readonly sources: readonly PersistSource[];
  readonly blockBytes: number;
  readonly blockMs: number;
  /** A thread started again after one died: a source it cannot attach to is refused alone. */
  readonly restarted?: boolean;
}

/** Which sequences a block accounts for, and the source's losses so far. */
export interface Coverage {
  readonly firstSeq: number;
  readonly endSeq: number;
  readonly lostTotal: number;
  readonly poisonedTotal: number;
}

/** A block as the worker cuts it: records copied from slots, not compressed. */
export interface RawBlock {
  readonly type: 'block';
  readonly key: string;
  /** The records, `count` of them from byte 0 (transferred, not copied). */
  readonly records: ArrayBuffer;
  readonly bytes: number;
  readonly count: number;
  /** The earliest and latest record's time, on the source's clock. */
  readonly beginTicks: number;
  readonly endTicks: number;
  readonly coverage: Coverage;
  /** An instrumentation source: what its thread dropped at the source since the persister attached. */
  readonly dropped?: InstrumentationDrops;
}

export type ToPersister =
  | { readonly type: 'source'; readonly source: PersistSource }
  | { readonly type: 'stop' };

export type FromPersister =
  /** The thread attached to sources (all at its start, then each added): its consumers' entries. */
  | {
      readonly type: 'attached';
      readonly entries: readonly { readonly key: string; readonly entry: number }[];
    }
  | RawBlock
  /** A source added while the thread ran that it could not attach to, and why. */
  | { readonly type: 'refused'; readonly key: string; readonly error: string }
  | { readonly type: 'stopped' };
