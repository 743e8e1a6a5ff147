/** The lake streams the persister registers, one per source (see records.ts for what they hold). */
import { randomUUID } from 'node:crypto';
import type { LayoutDescription } from '../../queues/index.js';
import { Tracking } from '../../spine/index.js';
import { StringEntry } from '../instrumentation/index.js';
import type { StreamInfo } from '../wire/index.js';
import type { PersistSource } from './protocol.js';
import { BlockCoverage, offsetsOf, RecordProperty, recordShape, SourceDrops } from './records.js';

/** The lake stream of a spine stream: tagged `messages`, property `name`. */
export function messagesStream(processId: string, name: string, source: PersistSource): StreamInfo {
  return recordStreamInfo(
    processId,
    ['messages'],
    [Tracking.describe(), source.layout],
    'Tracking.publish_t',
    {
      name,
    },
  );
}

/** An actor as its timing stream names it. */
export interface TimingActor {
  readonly id: number;
  readonly name: string | undefined;
  readonly module: string;
}

/** The lake stream of an actor's timing queue: tagged `timings`, property `actor`. */
export function timingStream(processId: string, actor: TimingActor, source: PersistSource): StreamInfo {
  return recordStreamInfo(processId, ['timings'], [source.layout], 'TimingRecord.end_t', {
    actor: actor.name ?? `actor-${actor.id}`,
    actor_id: String(actor.id),
    module: actor.module,
  });
}

/** A thread as its instrumentation streams name it. */
export interface InstrumentedThread {
  readonly name: string;
  /** The threadId of the thread writing the buffers (-1 if none bound them yet). */
  readonly threadId: number;
  readonly clockBaseNs: number;
  /** The actors the thread runs, if it is an actor thread. */
  readonly actors?: readonly { readonly id: number; readonly name: string | undefined }[];
}

/**
 * The lake stream of one of a thread's instrumentation queues: tagged `log`, `metrics` or
 * `spans`, properties `thread`, `thread_id`, `clock_base_ns`, and for an actor thread `actor`
 * and `actor_id` (comma separated when several actors share the thread). Dependencies: the
 * block's coverage, the thread's drops at the source, and the strings its events name.
 */
export function instrumentationStream(
  processId: string,
  thread: InstrumentedThread,
  source: PersistSource,
): StreamInfo {
  const actors = thread.actors ?? [];
  return recordStreamInfo(
    processId,
    [source.kind],
    [source.layout],
    `${source.layout.name}.t`,
    {
      thread: thread.name,
      thread_id: String(thread.threadId),
      [RecordProperty.CLOCK_BASE_NS]: String(thread.clockBaseNs),
      ...(actors.length === 0
        ? {}
        : {
            actor: actors.map((a) => a.name ?? `actor-${a.id}`).join(','),
            actor_id: actors.map((a) => a.id).join(','),
          }),
    },
    [BlockCoverage.describe(), SourceDrops.describe(), StringEntry.describe()],
  );
}

/** A stream of records: the header then `parts`, with the properties that say how to read them. */
export function recordStreamInfo(
  processId: string,
  tags: readonly string[],
  parts: readonly LayoutDescription[],
  timeField: string,
  properties: Readonly<Record<string, string>>,
  dependencies: readonly LayoutDescription[] = [BlockCoverage.describe()],
): StreamInfo {
  const shape = recordShape(parts);
  return {
    streamId: randomUUID(),
    processId,
    tags,
    dependenciesLayouts: dependencies,
    objectsLayouts: shape.layouts,
    properties: {
      ...properties,
      [RecordProperty.RECORD_BYTES]: String(shape.bytes),
      [RecordProperty.LAYOUT_OFFSETS]: shape.offsets.join(','),
      [RecordProperty.TIME_FIELD]: timeField,
      // Every region but the last holds one record, the last as many as the block needs.
      [RecordProperty.DEPENDENCIES_OFFSETS]: offsetsOf(dependencies).join(','),
    },
  };
}

/** The Float64 index, in a record, of field `field` of part `part` (after the record header). */
export function timeIndexOf(parts: readonly LayoutDescription[], part: number, field: string): number {
  const shape = recordShape(parts);
  const offset = parts[part]!.fields.find((f) => f.name === field)!.offset;
  return (shape.offsets[part + 1]! + offset) / 8;
}
