import type { ActorReport, ActorStreamCounts, ActorTimingCounts, WorkerActorReport } from './protocol.js';

/** What a ring held at the end of a run: every message it was given, and how many it keeps. */
export interface RingEnd {
  /** Messages published on it (settled: every thread has ended). */
  readonly published: number;
  readonly capacity: number;
}

/** The rings of a run at its end: its streams by index, and its timing queues by actor id. */
export interface RunEnd {
  readonly streams: readonly RingEnd[];
  readonly timings: ReadonlyMap<number, RingEnd>;
}

/**
 * One report per actor: the figures of its incarnations (a restarted actor's crashed runs, then
 * its last) summed stream by stream and actor by actor, with what it left unread: the messages
 * (or timing records) published past where its reader stopped last. An incarnation that never
 * read a ring (a restart that ended before its first consume) stopped where the one before it
 * did: it would have begun there. Of what lies past that, more than the ring holds was written
 * over before anyone read it: counted lost, the rest unread (a reader lapped since its last poll).
 */
export function mergeReports(reports: readonly WorkerActorReport[], end: RunEnd): ActorReport[] {
  const byId = new Map<
    number,
    { summed: ActorReport; stoppedAt: (number | null)[]; timingsStoppedAt: Map<number, number> }
  >();
  for (const report of reports) {
    const before = byId.get(report.id);
    const summed = before === undefined ? zeroUnread(report) : sumReports(before.summed, zeroUnread(report));
    const stoppedAt = report.stoppedAt.map((at, i) => at ?? before?.stoppedAt[i] ?? null);
    const timingsStoppedAt = new Map(before?.timingsStoppedAt);
    for (const [actor, at] of Object.entries(report.timingsStoppedAt))
      timingsStoppedAt.set(Number(actor), at);
    byId.set(report.id, { summed, stoppedAt, timingsStoppedAt });
  }
  return [...byId.values()].map(({ summed, stoppedAt, timingsStoppedAt }) => ({
    ...summed,
    streams: summed.streams.map((s, i): ActorStreamCounts => {
      const { lost, unread } = pastStop(end.streams[i], stoppedAt[i]);
      return { ...s, lost: s.lost + lost, unread };
    }),
    timings: summed.timings.map((t): ActorTimingCounts => {
      const { lost, unread } = pastStop(end.timings.get(t.actorId), timingsStoppedAt.get(t.actorId));
      return { ...t, lost: t.lost + lost, unread };
    }),
  }));
}

/**
 * What was published on a ring past position `at` (null or undefined: never read it): lost if
 * the ring wrote over it, unread if it still holds it.
 */
function pastStop(
  ring: RingEnd | undefined,
  at: number | null | undefined,
): { lost: number; unread: number } {
  if (ring === undefined || at === null || at === undefined) return { lost: 0, unread: 0 };
  const past = Math.max(0, ring.published - at);
  const unread = Math.min(past, ring.capacity);
  return { lost: past - unread, unread };
}

function zeroUnread(report: WorkerActorReport): ActorReport {
  const streams = report.streams.map((s): ActorStreamCounts => ({ ...s, unread: 0 }));
  const timings = report.timings.map((t): ActorTimingCounts => ({ ...t, unread: 0 }));
  return { id: report.id, name: report.name, streams, timings };
}

function sumReports(a: ActorReport, b: ActorReport): ActorReport {
  const streams = a.streams.map((s, i) => {
    const t = b.streams[i]!;
    return {
      stream: s.stream,
      handled: s.handled + t.handled,
      skipped: s.skipped + t.skipped,
      lost: s.lost + t.lost,
      poisoned: s.poisoned + t.poisoned,
      failed: s.failed + t.failed,
      produced: s.produced + t.produced,
      unread: s.unread + t.unread,
    };
  });
  const timings = new Map(a.timings.map((t) => [t.actorId, t]));
  for (const t of b.timings) {
    const earlier = timings.get(t.actorId);
    timings.set(
      t.actorId,
      earlier === undefined
        ? t
        : { ...t, handled: earlier.handled + t.handled, lost: earlier.lost + t.lost, unread: 0 },
    );
  }
  return { id: b.id, name: b.name, streams, timings: [...timings.values()] };
}
