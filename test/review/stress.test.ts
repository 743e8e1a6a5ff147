import { afterEach, expect, it } from 'vitest';
import { defineSpine, type PersistReport, System } from '../../src/index.js';
import { readPersisted } from '../../src/persist.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { join } from 'node:path';
import { Fill, Order, Tick } from '../fixtures/actors/spine.js';
import { until } from '../helpers/until.js';
import { tempDir } from '../telemetry/fixtures.js';
import { compare } from './helpers.js';

const fixture = (name: string) => new URL(`../fixtures/actors/${name}.ts`, import.meta.url);
const chatty = new URL('./fixtures/chatty.ts', import.meta.url);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const small = defineSpine({
  ticks: { message: Tick, capacity: 16 },
  orders: { message: Order, capacity: 16 },
  fills: { message: Fill, capacity: 16 },
});

for (const [label, persistExtra] of [
  ['default blocks', {}],
  ['small blocks', { blockBytes: 2048 }],
  ['blockMs tiny', { blockMs: 0.01 }],
] as const) {
  it(`tiny rings, a chatty thread, ${label}: the report agrees with the lake, and published = persisted + lost`, async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const done = new SharedArrayBuffer(4);
    const system = new System(small, {
      spine: { timingCapacity: 16 },
      persist: { data: dir, ...persistExtra },
    });
    system.spawn(fixture('feed'), { args: { count: 20000, perLoop: 200 } });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('gateway'));
    system.spawn(chatty, { args: { perLoop: 500, distinct: 6000, total: 30000, done } });
    await system.start();
    await until(() => system.spine.queue(0).stats().published === 20000 && Atomics.load(new Int32Array(done), 0) === 1, 'all', 30000);
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    if (!persist.flushed) console.log(label, 'not flushed', persist.blocks, persist.blocksDropped);
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    const losses = await analytics.query(
      "SELECT stream, lost::DOUBLE, dropped::DOUBLE FROM losses WHERE counted_by = 'persister' ORDER BY ALL",
    );
    await analytics.close();
    const byStream = new Map(losses.rows.map((r) => [r[0] as string, { lost: r[1] as number, dropped: r[2] as number }]));
    const expected = persist.sources
      .filter((s) => s.lost > 0 || (s.dropped ?? 0) > 0)
      .map((s) => [
        s.kind === 'messages'
          ? s.name
          : `${s.kind}:${s.name.replace(/^actor-(\d+)$/, (_, id) => report.actors.find((a) => a.id === Number(id))!.name)}`,
        s.lost,
        s.dropped ?? 0,
      ])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    const analyticsSays = expected.map(([k]) => [k, byStream.get(k as string)?.lost ?? 0, byStream.get(k as string)?.dropped ?? 0]);
    expect(analyticsSays, 'analytics losses').toEqual(expected);
    const rows = await compare(report, { data: dir });
    const lake = Lake.open({ data: dir });
    const data = await readPersisted(lake, persist.processId);
    await lake.close();
    const bad = rows.filter(
      (r) =>
        Math.max(0, r.lakeRecords) !== r.reportPersisted ||
        Math.max(0, r.lakeLost) !== r.reportLost ||
        (r.published !== undefined && r.published !== r.reportPersisted + r.reportLost) ||
        Math.max(0, r.lakeCovered) !== r.reportPersisted + r.reportLost,
    );
    if (bad.length > 0) console.table(bad);
    // Instrumentation: drops at the source as the report and the lake say.
    for (const s of persist.sources.filter((x) => x.dropped !== undefined && x.dropped > 0)) {
      const d = data.find((x) => x.stream.tags.includes(s.kind) && x.stream.properties.thread === s.name);
      const lakeDropped = (d?.dropped?.strings ?? 0) + (d?.dropped?.depth ?? 0);
      if (lakeDropped !== s.dropped) console.log('dropped mismatch', s, d?.dropped);
      expect(lakeDropped, `${s.kind}:${s.name}`).toBe(s.dropped);
    }
    expect(bad).toEqual([]);
  }, 60_000);
}
