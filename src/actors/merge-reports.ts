import type { ActorReport } from './protocol.js';

/**
 * One report per actor: the figures of its incarnations (a restarted actor's crashed runs, then
 * its last) summed stream by stream and actor by actor.
 */
export function mergeReports(reports: readonly ActorReport[]): ActorReport[] {
  const byId = new Map<number, ActorReport>();
  for (const report of reports) {
    const before = byId.get(report.id);
    byId.set(report.id, before === undefined ? report : sumReports(before, report));
  }
  return [...byId.values()];
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
