import { afterEach, expect, it } from 'vitest';
import { type PersistReport, System } from '../../src/index.js';
import { spine } from '../fixtures/actors/spine.js';
import { until } from '../helpers/until.js';
import { tempDir } from '../telemetry/fixtures.js';
import { compare } from './helpers.js';

const fixture = (name: string) => new URL(`../fixtures/actors/${name}.ts`, import.meta.url);
const chatty = new URL('./fixtures/chatty.ts', import.meta.url);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function check(report: Awaited<ReturnType<System<typeof spine>['stop']>>, rows: Awaited<ReturnType<typeof compare>>) {
  const bad = rows.filter(
    (r) =>
      Math.max(0, r.lakeRecords) !== r.reportPersisted ||
      Math.max(0, r.lakeLost) !== r.reportLost ||
      (r.published !== undefined && r.published !== r.reportPersisted + r.reportLost) ||
      Math.max(0, r.lakeCovered) !== r.reportPersisted + r.reportLost,
  );
  if (bad.length > 0) console.table(bad);
  expect((report.persist as PersistReport).flushed).toBe(true);
  expect(bad).toEqual([]);
}

it('crashes and restarts: the report agrees with the lake', async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const system = new System(spine, { persist: { data: dir } });
  system.spawn(fixture('feed'), { args: { count: 50 } });
  system.spawn(fixture('instrumented'), { args: { name: 'phoenix', crashAt: 5 }, restarts: 3 });
  system.spawn(fixture('instrumented'), { args: { name: 'again', crashAt: 7 }, restarts: 1 });
  await system.start();
  await until(() => system.spine.queue(0).stats().published === 50, 'ticks');
  await new Promise((r) => setTimeout(r, 300));
  const report = await system.stop();
  check(report, await compare(report, { data: dir }));
});

it('a thread terminated at the stop while it logs flat out: the report agrees with the lake', async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const done = new SharedArrayBuffer(4);
  const system = new System(spine, { persist: { data: dir }, drainTimeoutMs: 50, exitTimeoutMs: 50 });
  system.spawn(fixture('feed'), { args: { count: 50 } });
  system.spawn(fixture('grinder'), { args: { workMs: 3000 } });
  system.spawn(chatty, { args: { perLoop: 1_000_000, distinct: 100, total: 1e12, done } });
  await system.start();
  await new Promise((r) => setTimeout(r, 300));
  const report = await system.stop();
  console.log('terminated', report.terminated);
  check(report, await compare(report, { data: dir }));
}, 60_000);
