import type {
  AttachedActor,
  AttachmentHost,
  PersistOptions,
  PersistReport,
  SystemAttachment,
  SystemCounts,
} from '../../actors/index.js';
import { ConfigError } from '../../errors.js';
import { TimingRecord, Tracking } from '../../spine/index.js';
import { MAX_LAYOUT_FIELDS, MAX_METADATA_TEXT_BYTES } from '../wire/index.js';
import { checkPersistOptions } from './options.js';
import { PersistPipeline } from './pipeline.js';
import { storedCountsOf } from './run-counts.js';
import { messagesStream, timeIndexOf, timingStream } from './streams.js';

/**
 * The persister (`new System(spine, { persist })`): a thread that copies every slot of every
 * stream, timing queue and thread's instrumentation queue into blocks, and, in the main thread,
 * their compression and delivery (see PersistPipeline). One lake process per run, whose clock is
 * the spine's; one lake stream per source (see records.ts for the format).
 */
export class Persister implements SystemAttachment {
  private readonly options: PersistOptions;
  private host?: AttachmentHost;
  private pipeline?: PersistPipeline;

  constructor(options: unknown) {
    this.options = checkPersistOptions(options);
  }

  async start(host: AttachmentHost): Promise<void> {
    this.host = host;
    const spine = host.spine;
    // A layout no lake takes would have every block of its stream refused (counted lost): said
    // now, before anything runs, rather than as a stream that persisted nothing.
    spine.names.forEach((name, index) => {
      const fields = spine.queue(index).layout.describe().fields.length;
      if (fields > MAX_LAYOUT_FIELDS) {
        throw new ConfigError(
          `stream '${name}' has a message of ${fields} fields, over the ${MAX_LAYOUT_FIELDS} a lake takes in a layout: it cannot be persisted (split the message, or run without persist)`,
        );
      }
    });
    const pipeline = new PersistPipeline(this.options, spine.control.clockBaseNs, spine.clock.now());
    this.pipeline = pipeline;
    await pipeline.openLake();
    spine.names.forEach((name, index) => {
      const queue = spine.queue(index);
      const source = {
        key: `stream:${name}`,
        kind: 'messages',
        layout: queue.layout.describe(),
        envelope: true,
        buffer: queue.buffer,
        from: host.startAt[index] ?? 0,
        timeIndex: timeIndexOf([Tracking.describe(), queue.layout.describe()], 0, 'publish_t'),
      } as const;
      pipeline.add(source, {
        name,
        eager: true,
        describe: (processId) => messagesStream(processId, name, source),
      });
    });
    pipeline.addThread(host.instrumentation.buffers, host.instrumentation.from);
    for (const actor of host.actors()) this.addActor(actor);
    await pipeline.start({ descriptor: spine.descriptor(), worker: host.worker });
  }

  actorSpawned(actor: AttachedActor): void {
    this.addActor(actor);
  }

  actorsNamed(actors: readonly AttachedActor[]): void {
    const pipeline = this.pipeline!;
    for (const actor of actors) {
      const source = pipeline.source(`timings:${actor.id}`);
      if (source !== undefined && actor.name !== undefined) source.name = actor.name;
    }
    if (pipeline.opened) pipeline.registerReady();
    else {
      pipeline.open({
        // The user's first: dorsal's own properties describe the run, and replay and the views
        // read them (a `dorsal.spine` of the user's left the streams unnamed).
        ...this.options.properties,
        'dorsal.spine': spineDescription(this.host!.spine),
        'dorsal.actors': JSON.stringify(
          actors.map((a) => ({ id: a.id, name: a.name, module: a.module, thread: a.thread })),
        ),
      });
    }
  }

  stop(counts: SystemCounts): Promise<PersistReport> {
    return this.pipeline!.stop(storedCountsOf(counts));
  }

  async abort(): Promise<void> {
    await this.pipeline?.abort();
  }

  /** An actor's timing queue, and its thread's instrumentation buffers (once per thread). */
  private addActor(actor: AttachedActor): void {
    const host = this.host!;
    const pipeline = this.pipeline!;
    const source = {
      key: `timings:${actor.id}`,
      kind: 'timings',
      layout: TimingRecord.describe(),
      envelope: false,
      buffer: host.spine.timingQueue(actor.id)!.buffer,
      from: 0,
      timeIndex: timeIndexOf([TimingRecord.describe()], 0, 'end_t'),
    } as const;
    const named = () => host.actors().find((a) => a.id === actor.id) ?? actor;
    pipeline.add(source, {
      name: actor.name ?? `actor-${actor.id}`,
      eager: true,
      describe: (processId, final) => {
        const now = named();
        return now.name === undefined && !final ? undefined : timingStream(processId, now, source);
      },
    });
    // A new thread's buffers: nothing recorded in them before its worker binds them.
    pipeline.addThread(actor.instrumentation, 'oldest', (final) => {
      const onThread = host.actors().filter((a) => a.thread === actor.thread);
      return !final && onThread.some((a) => a.name === undefined) ? undefined : onThread;
    });
  }
}

/**
 * The spine's streams for the run's process (`dorsal.spine`): name, capacity, whether several
 * actors produce it, and its message layout. A spine too wide for the lake's 256 KiB a property
 * (some 55 bytes a field: thousands of fields) is described without its layouts, which its
 * streams' records hold all the same (replay then checks a recorded field by its column).
 */
function spineDescription(spine: AttachmentHost['spine']): string {
  const streams = spine.names.map((name, i) => ({
    name,
    capacity: spine.queue(i).capacity,
    multiProducer: spine.queue(i).multiProducer,
    layout: spine.queue(i).layout.describe(),
  }));
  const whole = JSON.stringify(streams);
  if (Buffer.byteLength(whole) <= MAX_METADATA_TEXT_BYTES) return whole;
  return JSON.stringify(streams.map(({ layout: _layout, ...stream }) => stream));
}
