import type { ActorReport, ActorStreamCounts, WorkerActorReport } from './protocol.js';

/**
 * One report per actor: the figures of its incarnations (a restarted actor's crashed runs, then
 * its last) summed stream by stream and actor by actor, with what it left unread: the messages
 * published on a stream (`published`, per stream index, once every thread has ended) past where
 * its consumer stopped last. An incarnation that never read a stream (a restart that ended before
 * its first consume) stopped where the one before it did: it would have begun there.
 */
export function mergeReports(
  reports: readonly WorkerActorReport[],
  published: readonly number[],
): ActorReport[] {
  const byId = new Map<number, { summed: ActorReport; stoppedAt: (number | null)[] }>();
  for (const report of reports) {
    const before = byId.get(report.id);
    const summed = before === undefined ? zeroUnread(report) : sumReports(before.summed, zeroUnread(report));
    const stoppedAt = report.stoppedAt.map((at, i) => at ?? before?.stoppedAt[i] ?? null);
    byId.set(report.id, { summed, stoppedAt });
  }
  return [...byId.values()].map(({ summed, stoppedAt }) => ({
    ...summed,
    streams: summed.streams.map((s, i): ActorStreamCounts => {
      const at = stoppedAt[i];
      return { ...s, unread: at === null || at === undefined ? 0 : Math.max(0, published[i]! - at) };
    }),
  }));
}

function zeroUnread(report: WorkerActorReport): ActorReport {
  const streams = report.streams.map((s): ActorStreamCounts => ({ ...s, unread: 0 }));
  return { id: report.id, name: report.name, streams, timings: report.timings };
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
      earlier === undefined ? t : { ...t, handled: earlier.handled + t.handled, lost: earlier.lost + t.lost },
    );
  }
  return { id: b.id, name: b.name, streams, timings: [...timings.values()] };
}
