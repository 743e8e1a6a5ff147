import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger, metric, System, span } from '../../src/index.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { gatherReport } from '../../src/telemetry/views/report-data.js';
import { renderReport } from '../../src/telemetry/views/report-html.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { tempDir } from './fixtures.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);
const TICKS = 40;
const n = (value: unknown) => Number(value);

describe('instrumentation in the analytics: log_entries, measures, thread_spans', () => {
  const { dir, cleanup } = tempDir('dorsal-analytics-instr-');
  let analytics: Analytics;
  let processId: string;
  /** The System's clock (the process's) just before and just after the main thread's entry. */
  const logged = [0, 0];

  beforeAll(async () => {
    // The main thread's buffers are made here, on a clock base of their own, before the System's:
    // its events must be rebased onto the process's clock.
    logger('main-app').info('before the system');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const system = new System(spine, { persist: { data: dir, blockBytes: 2048 } });
    logged[0] = system.spine.clock.now();
    logger('main-app').info('system made', { ticks: TICKS, ok: true, label: 'first' });
    logged[1] = system.spine.clock.now();
    logger('main-app').debug('hidden', { ticks: TICKS });
    system.spawn(fixture('feed'), { args: { count: TICKS, perLoop: 10 } });
    system.spawn(fixture('instrumented'), { args: { name: 'alpha' } });
    system.spawn(fixture('instrumented'), { args: { name: 'beta' }, thread: 'beta-thread' });
    await system.start();
    span('main-wait', () => metric('main.ticks', TICKS, 'ticks'));
    await until(() => system.spine.queue(0).stats().published === TICKS, 'every tick');
    const report = await system.stop();
    processId = report.persist!.processId;
    analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
  }, 120_000);
  afterAll(async () => {
    await analytics?.close();
    cleanup();
  });

  it('gives each log entry its thread, actor, level, target, message and properties; a filtered-out level is nowhere', async () => {
    const { rows } = await analytics.query(
      "SELECT thread, actor, level, target, message, properties::VARCHAR FROM log_entries WHERE actor = 'beta' ORDER BY time_ns",
      { process: processId },
    );
    expect(rows[0]!.slice(0, 5)).toEqual(['beta-thread', 'beta', 'info', 'beta', 'started']);
    expect(Object.keys(JSON.parse(String(rows[0]![5])))).toEqual(['thread']);
    expect(rows.slice(1).map((r) => [r[2], r[4], JSON.parse(String(r[5]))])).toEqual(
      Array.from({ length: TICKS }, (_, i) => [
        'info',
        'tick handled',
        { n: i, odd: i % 2 === 1, who: 'beta' },
      ]),
    );
    const hidden = await analytics.query("SELECT count(*) FROM log_entries WHERE message = 'hidden'", {
      process: processId,
    });
    expect(n(hidden.rows[0]![0])).toBe(0);
    const main = await analytics.query(
      "SELECT thread, actor, properties->>'label', (properties->>'ok')::BOOLEAN, (properties->>'ticks')::INTEGER FROM log_entries WHERE target = 'main-app' ORDER BY time_ns",
      { process: processId },
    );
    // What the main thread logged before the System started is not the run's.
    expect(main.rows).toEqual([['main', null, 'first', true, TICKS]]);
  });

  it('nests spans: each tick a top-level handle around an inner span, which holds its log entry', async () => {
    const spans = await analytics.query(
      `SELECT actor, name, depth, count(*), count(*) FILTER (WHERE end_ns IS NULL OR duration_ns < 0), count(parent_span_id)
       FROM thread_spans WHERE actor IS NOT NULL GROUP BY ALL ORDER BY 1, 2`,
      { process: processId },
    );
    expect(spans.rows.map((r) => r.map(n).map((x, i) => (i < 2 ? r[i] : x)))).toEqual([
      ['alpha', 'handle', 0, TICKS, 0, 0],
      ['alpha', 'inner', 1, TICKS, 0, TICKS],
      ['beta', 'handle', 0, TICKS, 0, 0],
      ['beta', 'inner', 1, TICKS, 0, TICKS],
    ]);
    const nesting = await analytics.query(
      `SELECT count(*) FROM log_entries l
         JOIN thread_spans i ON i.thread = l.thread AND i.span_id = l.span AND i.name = 'inner'
         JOIN thread_spans h ON h.thread = i.thread AND h.span_id = i.parent_span_id AND h.name = 'handle'
       WHERE l.message = 'tick handled' AND h.begin_ns <= i.begin_ns AND i.end_ns <= h.end_ns
         AND i.begin_ns <= l.time_ns AND l.time_ns <= i.end_ns`,
      { process: processId },
    );
    expect(n(nesting.rows[0]![0])).toBe(2 * TICKS);
    const main = await analytics.query(
      "SELECT thread, depth, end_ns > begin_ns FROM thread_spans WHERE name = 'main-wait'",
      {
        process: processId,
      },
    );
    expect(main.rows).toEqual([['main', 0, true]]);
  });

  it('gives each measure its name, unit, kind and value, and the span it was taken in', async () => {
    const { rows } = await analytics.query(
      `SELECT m.name, m.unit, m.kind, list(m.value ORDER BY m.time_ns), bool_and(s.name = 'handle')
       FROM measures m LEFT JOIN thread_spans s ON s.thread = m.thread AND s.span_id = m.span
       WHERE m.actor = 'alpha' GROUP BY ALL ORDER BY 1`,
      { process: processId },
    );
    expect(rows).toEqual([
      ['price', 'usd', 'float', Array.from({ length: TICKS }, (_, i) => 100 + (i % 7)), true],
      ['tick', 'count', 'integer', Array.from({ length: TICKS }, (_, i) => i), true],
    ]);
    const main = await analytics.query("SELECT thread, value, unit FROM measures WHERE name = 'main.ticks'", {
      process: processId,
    });
    expect(main.rows).toEqual([['main', TICKS, 'ticks']]);
  });

  it('plots a metric two actors measure under one name as two series in the report, each with its own values', async () => {
    const report = await gatherReport(analytics, processId);
    const price = report.instrumentation.metrics.filter((m) => m.name === 'price');
    expect(price.map((m) => [m.source, m.unit, m.count])).toEqual([
      ['alpha', 'usd', TICKS],
      ['beta', 'usd', TICKS],
    ]);
    const main = report.instrumentation.metrics.filter((m) => m.name === 'main.ticks');
    expect(main.map((m) => [m.source, m.count])).toEqual([['main', 1]]);
    // Each series holds its own actor's values: the greatest of the buckets is the greatest price.
    for (const m of price) expect(Math.max(...m.max.filter((v) => !Number.isNaN(v)))).toBe(106);
    const html = renderReport(report);
    expect(html).toContain('data-metric="price" data-source="alpha"');
    expect(html).toContain('data-metric="price" data-source="beta"');
  });

  it("puts every event on the process's clock and calendar, and counts instrumentation losses", async () => {
    const { rows } = await analytics.query(
      `SELECT min(l.time_ns) > 0, bool_and(abs(epoch_ns(l.time) - (p.start_ns + l.time_ns)) < 1000)
       FROM log_entries l JOIN processes p USING (process_id)`,
      { process: processId },
    );
    expect(rows).toEqual([[true, true]]);
    // A tick's log entry comes after the tick was published (one clock for spine and threads).
    const order = await analytics.query(
      `SELECT count(*) FROM log_entries l JOIN stream_ticks t ON t.seq = (l.properties->>'n')::INTEGER
       WHERE l.message = 'tick handled' AND l.time_ns < t.publish_t`,
      { process: processId },
    );
    expect(n(order.rows[0]![0])).toBe(0);
    // The main thread's entry logged before start() comes before every tick, on its own clock base.
    const before = await analytics.query(
      "SELECT count(*) FROM stream_ticks t, log_entries l WHERE l.message = 'system made' AND t.publish_t <= l.time_ns",
      { process: processId },
    );
    expect(n(before.rows[0]![0])).toBe(0);
    // Exactly: between two readings of the System's clock around it.
    const made = await analytics.query("SELECT time_ns FROM log_entries WHERE message = 'system made'", {
      process: processId,
    });
    expect(n(made.rows[0]![0])).toBeGreaterThanOrEqual(logged[0]!);
    expect(n(made.rows[0]![0])).toBeLessThanOrEqual(logged[1]!);
    const losses = await analytics.query(
      "SELECT stream, lost, dropped FROM losses WHERE stream LIKE 'log:%' OR stream LIKE 'spans:%' OR stream LIKE 'metrics:%' ORDER BY 1",
      { process: processId },
    );
    expect(losses.rows.length).toBeGreaterThanOrEqual(6);
    expect(losses.rows.every((r) => n(r[1]) === 0 && n(r[2]) === 0)).toBe(true);
  });
});
