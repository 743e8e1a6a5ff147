/**
 * A run's counts in the lake: what every actor's consumers and producers counted (handled,
 * skipped, lost to a lap, poisoned, failed, produced, left unread, per stream; timing records read and lost,
 * per observed actor), and the ingress refused at the stop. The persister writes them at the
 * stop, after every actor thread has ended, as one document stream of the run's process (see
 * documents.ts), tagged `counts`: a message an actor lost is counted in the lake, not only in the
 * report of the process that ran it. The analytics make `actor_counts` of it, and add its losses
 * to `losses` (one row per actor × stream, beside the persister's).
 *
 * Not there: any of a process killed before its stop (its blocks say what the persister lost,
 * nothing more). A thread terminated at the stop is counted from what it left in shared memory (as
 * of its last commits: see `System`).
 */
import type { SystemCounts } from '../../actors/index.js';
import type { StreamInfo } from '../wire/index.js';
import { documentStreamInfo, parseDocument } from './documents.js';

/** The tag of a run's counts stream. */
export const COUNTS_TAG = 'counts';

/** The `format` property of a counts stream: what its block's objects part holds. */
export const COUNTS_FORMAT = 'dorsal.counts.v1+json';

/** What one actor did on one stream (every incarnation of it summed). */
export interface StoredActorStream {
  readonly actor: string;
  readonly actorId: number;
  readonly stream: string;
  readonly handled: number;
  readonly skipped: number;
  /** Lapped by the producer, or their writer died (poisoned, counted here too). */
  readonly lost: number;
  readonly poisoned: number;
  /** Handed to a handler that threw. */
  readonly failed: number;
  readonly produced: number;
  /**
   * Published past where its consumer stopped: never read (the stop did not drain, or it crashed
   * and was not restarted; see `ActorStreamCounts.unread`). Absent from the counts of runs made
   * before it was counted: read as 0.
   */
  readonly unread?: number;
}

/** What an observer read of one actor's timing queue. */
export interface StoredTimingRead {
  readonly observer: string;
  readonly observerId: number;
  /** The actor whose timing queue it read. */
  readonly actor: string;
  readonly actorId: number;
  readonly handled: number;
  /** Timing records the actor lapped it on. */
  readonly lost: number;
  /**
   * Written past where its reader stopped: never read (see `ActorTimingCounts.unread`). Absent
   * from the counts of runs made before it was counted: read as 0.
   */
  readonly unread?: number;
}

/**
 * The persister's own account of one lake stream at the stop: the sequences it was to persist
 * (`from` to `end`: from where it attached to the head the stop settled on) and how many of them
 * it counted lost (lapped, poisoned, dropped by the sink or the backlog, or never read). The lake
 * holds the rest, unless blocks were lost on their way with the coverage that would have said so
 * (a stop through a failing server): the analytics count those `unrecorded` (see `losses`).
 */
export interface StoredPersisted {
  /** The lake stream's id, tags and name (see `streamName`): its record may not reach the lake. */
  readonly streamId: string;
  readonly tags: readonly string[];
  readonly name: string;
  readonly from: number;
  readonly end: number;
  /** Of `end - from`, counted lost (its blocks' coverage says as much, when it reached the lake). */
  readonly lost: number;
  readonly poisoned: number;
  /** Instrumentation events dropped at the source (never in the ring: not among `end - from`). */
  readonly dropped: number;
}

/** A run's counts, as stored. */
export interface StoredCounts {
  /** Rows with something counted only. */
  readonly streams: readonly StoredActorStream[];
  readonly timings: readonly StoredTimingRead[];
  /** Ingress messages refused because they came after the stop began. */
  readonly refused: number;
  /** False if consumers were still busy when the drain timeout ran out. */
  readonly drained: boolean;
  /** Threads that did not exit in time: their actors' counts are as of their last commit (timing reads missing). */
  readonly terminated: readonly string[];
  /**
   * The persister's account of each stream it persisted, written with the counts at the stop.
   * Absent from the counts of runs made before it was kept.
   */
  readonly persisted?: readonly StoredPersisted[];
}

/** What the system counted, as the lake keeps it. */
export function storedCountsOf(counts: SystemCounts): StoredCounts {
  return {
    streams: counts.actors.flatMap((a) =>
      a.streams
        .filter((s) => s.handled + s.skipped + s.lost + s.failed + s.produced + s.unread > 0)
        .map((s) => ({
          actor: a.name,
          actorId: a.id,
          stream: s.stream,
          handled: s.handled,
          skipped: s.skipped,
          lost: s.lost,
          poisoned: s.poisoned,
          failed: s.failed,
          produced: s.produced,
          unread: s.unread,
        })),
    ),
    timings: counts.actors.flatMap((a) =>
      a.timings.map((t) => ({
        observer: a.name,
        observerId: a.id,
        actor: t.actor,
        actorId: t.actorId,
        handled: t.handled,
        lost: t.lost,
        unread: t.unread,
      })),
    ),
    refused: counts.refused,
    drained: counts.drained,
    terminated: [...counts.terminated],
  };
}

/** The stream of a run's process that holds its counts. */
export function countsStreamInfo(processId: string): StreamInfo {
  return documentStreamInfo(processId, COUNTS_TAG, COUNTS_FORMAT, { name: 'counts' });
}

/**
 * Rows a counts block may hold (actor × stream, observer × actor): far more than a system of a
 * few hundred actors makes; beyond, the block is refused (its tables are made whole at each look).
 */
export const MAX_COUNTS_ROWS = 10_000;

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
/** Actor ids are u16 (see SpineAdapter). */
const isActorId = (n: unknown): n is number => isCount(n) && n <= 0xffff;

/**
 * The counts a counts stream's block holds (its objects part, decompressed); throws on another
 * document, or on counts no run could have made (an id outside u16, more than MAX_COUNTS_ROWS rows).
 */
export function parseStoredCounts(objects: Uint8Array): StoredCounts {
  const counts = parseDocument(objects) as Partial<StoredCounts> | null;
  const figures = ['handled', 'skipped', 'lost', 'poisoned', 'failed', 'produced'] as const;
  if (
    typeof counts !== 'object' ||
    counts === null ||
    !Array.isArray(counts.streams) ||
    !Array.isArray(counts.timings) ||
    !Array.isArray(counts.terminated) ||
    !isCount(counts.refused) ||
    typeof counts.drained !== 'boolean' ||
    !counts.terminated.every((name) => typeof name === 'string') ||
    !counts.streams.every(
      (s: Partial<StoredActorStream>) =>
        typeof s?.actor === 'string' &&
        typeof s.stream === 'string' &&
        isActorId(s.actorId) &&
        figures.every((f) => isCount(s[f])) &&
        (s.unread === undefined || isCount(s.unread)),
    ) ||
    !counts.timings.every(
      (t: Partial<StoredTimingRead>) =>
        typeof t?.observer === 'string' &&
        typeof t.actor === 'string' &&
        isActorId(t.observerId) &&
        isActorId(t.actorId) &&
        isCount(t.handled) &&
        isCount(t.lost) &&
        (t.unread === undefined || isCount(t.unread)),
    ) ||
    !(
      counts.persisted === undefined ||
      (Array.isArray(counts.persisted) &&
        counts.persisted.every(
          (p: Partial<StoredPersisted>) =>
            typeof p?.streamId === 'string' &&
            Array.isArray(p.tags) &&
            p.tags.every((t) => typeof t === 'string') &&
            typeof p.name === 'string' &&
            isCount(p.from) &&
            isCount(p.end) &&
            p.end >= p.from &&
            isCount(p.lost) &&
            isCount(p.poisoned) &&
            isCount(p.dropped),
        ))
    )
  ) {
    throw new Error('a counts block holds no run counts');
  }
  // The persister's accounts apart (a few per actor thread): they take no room from the actors' rows.
  if (
    counts.streams.length + counts.timings.length > MAX_COUNTS_ROWS ||
    (counts.persisted?.length ?? 0) > MAX_COUNTS_ROWS
  ) {
    throw new Error(`a counts block holds more than ${MAX_COUNTS_ROWS} rows`);
  }
  return counts as StoredCounts;
}
