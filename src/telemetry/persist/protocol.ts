/**
 * The protocol between the persister (main thread: compression, sink, lake) and its worker thread
 * (which only copies slots into blocks), as typed unions.
 */
import type { LayoutDescription } from '../../queues/index.js';
import type { SpineDescriptor } from '../../spine/index.js';

/** A queue the persister reads: a spine stream or an actor's timing queue. */
export interface PersistSource {
  /** Unique among the sources: `stream:<name>`, `timings:<actor id>`. */
  readonly key: string;
  readonly kind: 'messages' | 'timings';
  /** The queue's message layout. */
  readonly layout: LayoutDescription;
  /** The queue carries the spine's tracking envelope before each message. */
  readonly envelope: boolean;
  readonly buffer: SharedArrayBuffer;
  /** The exact sequence the persister starts at. */
  readonly from: number;
  /** Float64 index, within a record, of the time the block's begin and end are taken from. */
  readonly timeIndex: number;
}

export interface PersisterWorkerData {
  readonly spine: SpineDescriptor;
  /** The control block's worker word the persister parks on (a phase change wakes it). */
  readonly worker: number;
  readonly sources: readonly PersistSource[];
  readonly blockBytes: number;
  readonly blockMs: number;
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
  /** Spine clock ns of the earliest and latest record's time. */
  readonly beginTicks: number;
  readonly endTicks: number;
  readonly coverage: Coverage;
}

/** What the worker read of one source, at its stop. */
export interface SourceTotals {
  readonly key: string;
  readonly persisted: number;
  readonly lost: number;
  readonly poisoned: number;
}

export type ToPersister =
  | { readonly type: 'source'; readonly source: PersistSource }
  | { readonly type: 'stop' };

export type FromPersister =
  | { readonly type: 'attached' }
  | RawBlock
  | { readonly type: 'stopped'; readonly sources: readonly SourceTotals[] };
