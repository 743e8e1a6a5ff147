import type { Consumer } from '../queues/index.js';
import type { Spine } from './spine.js';
import { refuseAsync } from './synchronous.js';
import { TimingRecord } from './tracking.js';

/** What an observer read of one actor's timing queue. */
export interface AdapterTimingStats {
  readonly actor: string;
  readonly handled: number;
  /** Timing records skipped because the actor lapped this observer. */
  readonly lost: number;
  /** The actor's id (names may be unknown to the thread when it reports). */
  readonly actorId: number;
}

/**
 * Where a timing reader starts on each actor's queue: `'head'` (an observer spawned mid-run), or
 * per actor id an exact sequence (an observer restarted where its predecessor stopped), and for
 * an actor not listed the head or the first record (an observer running from the start).
 */
export type TimingStart =
  | 'head'
  | { readonly at: Readonly<Record<number, number>>; readonly others: 'head' | 'first' };

/**
 * An observer's reader of every actor's timing queue known to its thread. It attaches to a
 * queue the first time it is asked after the queue appears (actors spawned mid-run included).
 * Timing queues wake nobody — their producers use the queue's own, unwatched signal — so that
 * a side channel at the rate of the handlers never costs a wake-up per record.
 */
export class TimingReader {
  private readonly spine: Spine;
  private readonly start: TimingStart;
  private readonly owner: number | undefined;
  private readonly consumers: Consumer<TimingRecord>[] = [];
  /** Actor ids of `consumers`, in the same order. */
  private readonly actors: number[] = [];
  private readonly out = TimingRecord.create();

  /** `owner`: the tag of its consumer entries (see `ConsumerOptions.owner`), for its system. */
  constructor(spine: Spine, start: TimingStart, owner?: number) {
    this.spine = spine;
    this.start = start;
    this.owner = owner;
  }

  /** Hands every waiting record to `handler`; returns how many. */
  drain(handler: (record: Readonly<TimingRecord>) => void): number {
    if (this.consumers.length !== this.spine.timings.size) this.attach();
    let n = 0;
    for (const consumer of this.consumers) {
      while (consumer.poll(this.out)) {
        const returned: unknown = handler(this.out);
        // As for a message's handler (see `refuseAsync`): a promise is a throw of the handler's.
        if (returned !== undefined) refuseAsync(returned, 'a timing handler');
        n++;
        // After the handler, as the adapter does for streams (see ConsumerOptions.positions), and
        // record by record: the entry of a thread terminated in a handler is one record and what
        // its poll skipped ahead of its last commit, no more (its system counts them unread).
        consumer.commit();
      }
      // What the last poll skipped (lapped, poisoned) and found nothing after.
      consumer.commit();
    }
    return n;
  }

  /** A cheap hint that a record is waiting (see `Consumer.ready`). */
  ready(): boolean {
    // Indexed loops here and in every check a spin repeats: a for-of that V8 has not optimized
    // yet allocates an iterator per call.
    const consumers = this.consumers;
    for (let i = 0; i < consumers.length; i++) if (consumers[i]!.ready()) return true;
    return false;
  }

  /** The exact check before parking (see `Consumer.readyToPark`). */
  readyToPark(): boolean {
    const consumers = this.consumers;
    for (let i = 0; i < consumers.length; i++) if (consumers[i]!.readyToPark()) return true;
    return false;
  }

  stats(nameOf: (actor: number) => string): AdapterTimingStats[] {
    return this.consumers.map((c, i) => ({
      actor: nameOf(this.actors[i]!),
      actorId: this.actors[i]!,
      handled: c.received,
      lost: c.lost,
    }));
  }

  /** Per actor id, the exact sequence this reader reads next (where a restart resumes). */
  positions(): Record<number, number> {
    const positions: Record<number, number> = {};
    for (let i = 0; i < this.consumers.length; i++) positions[this.actors[i]!] = this.consumers[i]!.sequence;
    return positions;
  }

  /** Milliseconds until a writer this reader waits for is taken for dead (Infinity: none). */
  stallRemainingMs(): number {
    let least = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.consumers.length; i++)
      least = Math.min(least, this.consumers[i]!.stallRemainingMs());
    return least;
  }

  close(): void {
    for (const c of this.consumers) c.close();
  }

  private attach(): void {
    const attached = new Set(this.actors);
    for (const [actor, queue] of this.spine.timings) {
      if (attached.has(actor)) continue;
      const start = this.start;
      const from = start === 'head' ? 'head' : (start.at[actor] ?? (start.others === 'head' ? 'head' : 0));
      this.consumers.push(
        queue.consumer({
          from,
          positions: 'commit',
          ...(this.owner === undefined ? {} : { owner: this.owner }),
        }),
      );
      this.actors.push(actor);
    }
  }
}
