import { expect } from 'vitest';
import { System, type SystemReport } from '../../src/index.js';
import type { AnalyticsQuestions } from '../../src/telemetry/analytics/questions.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

/** A tick → two orders → a fill each, persisted (`persist`), run until every fill is out. */
export async function runPersistedPipeline(persist: object, ticks: number): Promise<SystemReport> {
  const system = new System(spine, { persist });
  system.spawn(fixture('feed'), { args: { count: ticks, perLoop: 10 } });
  system.spawn(fixture('strategy'));
  system.spawn(fixture('gateway'));
  await system.start();
  await until(() => system.spine.queue(2).stats().published === 2 * ticks, 'every fill');
  return system.stop();
}

const n = (value: unknown) => Number(value);

/**
 * What the analytics must say of a persisted pipeline run, embedded or remote: per stream, rows +
 * losses == published; timing rows + losses == handler calls, each in order; every parent there;
 * the fan-out; the tree of a tick.
 */
export async function checkPersistedRun(
  analytics: AnalyticsQuestions,
  processId: string,
  report: SystemReport,
  ticks: number,
): Promise<void> {
  const scope = { process: processId };
  const counts = await analytics.query(
    "SELECT m.stream, m.n + l.lost FROM (SELECT stream, count(*) AS n FROM messages GROUP BY 1) m JOIN losses l USING (stream) WHERE l.counted_by = 'persister' ORDER BY 1",
    scope,
  );
  const published = Object.fromEntries(report.streams.map((s) => [s.stream, s.published]));
  expect(published).toEqual({ ticks, orders: 2 * ticks, fills: 2 * ticks });
  expect(counts.rows.map(([stream, total]) => [stream, n(total)])).toEqual([
    ['fills', 2 * ticks],
    ['orders', 2 * ticks],
    ['ticks', ticks],
  ]);
  const timings = await analytics.query(
    `SELECT t.actor, t.n + coalesce(l.lost, 0), t.disorder FROM (
       SELECT actor, count(*) AS n, count(*) FILTER (WHERE NOT (origin_t <= publish_t AND publish_t <= start_t AND start_t <= end_t)) AS disorder
       FROM timings GROUP BY 1) t LEFT JOIN losses l ON l.stream = 'timings:' || t.actor AND l.counted_by = 'persister' ORDER BY 1`,
    scope,
  );
  const handled = (actor: string, stream: string) =>
    report.actors.find((a) => a.name === actor)!.streams.find((s) => s.stream === stream)!.handled;
  expect(timings.rows.map(([actor, total, disorder]) => [actor, n(total), n(disorder)])).toEqual([
    ['gateway', handled('gateway', 'orders'), 0],
    ['strategy', handled('strategy', 'ticks'), 0],
  ]);
  // What each actor counted is in the lake too: a drained run's consumers handled (or skipped,
  // lost, failed) every message published, and their losses are rows of \`losses\`.
  const consumers = await analytics.query(
    `SELECT c.actor, c.stream, (c.handled + c.skipped + c.lost + c.failed)::DOUBLE, coalesce(l.lost, -1)::DOUBLE
       FROM actor_counts c LEFT JOIN losses l ON l.consumer = c.actor AND l.stream = c.stream AND l.counted_by = 'actor'
       WHERE c.handled + c.skipped + c.lost + c.failed > 0 ORDER BY 1, 2`,
    scope,
  );
  const publishedOn = (stream: string) => report.streams.find((s) => s.stream === stream)!.published;
  expect(consumers.rows.map((r) => [r[0], r[1], n(r[2]), n(r[3])])).toEqual([
    ['gateway', 'orders', publishedOn('orders'), 0],
    ['strategy', 'ticks', publishedOn('ticks'), 0],
  ]);
  const orphans = await analytics.query(
    `SELECT count(*) FROM messages c WHERE c.parent_stream IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM messages p WHERE p.stream = c.parent_stream AND p.seq = c.parent_seq)`,
    scope,
  );
  expect(n(orphans.rows[0]![0])).toBe(0);
  const fanOut = await analytics.query(
    `SELECT count(*) FROM (SELECT t.seq FROM stream_ticks t
       JOIN stream_orders o ON o.parent_stream = 'ticks' AND o.parent_seq = t.seq
       JOIN stream_fills f ON f.parent_stream = 'orders' AND f.parent_seq = o.seq
       GROUP BY t.seq HAVING count(DISTINCT o.seq) = 2 AND count(f.seq) = 2)`,
    scope,
  );
  expect(n(fanOut.rows[0]![0])).toBe(ticks);
  const tree = await analytics.tree({ process: processId, stream: 'ticks', seq: Math.floor(ticks / 2) });
  expect(tree.nodes).toBe(5);
  expect(tree.root.children.map((o) => [o.stream, o.fields.side, o.children.map((f) => f.stream)])).toEqual([
    ['orders', 0, ['fills']],
    ['orders', 1, ['fills']],
  ]);
  const rows = await analytics.query(
    'SELECT actor, stream, count(*) FROM timings GROUP BY ALL ORDER BY 1',
    scope,
  );
  const percentiles = await analytics.percentiles({ process: processId });
  expect(percentiles.map((p) => [p.actor, p.stream, p.count])).toEqual(
    rows.rows.map(([a, s, c]) => [a, s, n(c)]),
  );
}
