import { afterEach, expect, it } from 'vitest';
import { System } from '../../src/index.js';
import { spine } from '../fixtures/actors/spine.js';
import { until } from '../helpers/until.js';
import { tempDir } from '../telemetry/fixtures.js';
import { compare } from './helpers.js';

const fixture = (name: string) => new URL(`../fixtures/actors/${name}.ts`, import.meta.url);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

it('embedded lake, one record per block, a 1 ms flush deadline: what the report says persisted is what the lake holds (blocks in flight at the deadline are not counted lost)', async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const system = new System(spine, { persist: { data: dir, blockBytes: 1, flushTimeoutMs: 1 } });
  system.spawn(fixture('feed'), { args: { count: 3000, perLoop: 100 } });
  system.spawn(fixture('strategy'));
  await system.start();
  await until(() => system.spine.queue(1).stats().published === 6000, 'the orders');
  const report = await system.stop();
  const rows = await compare(report, { data: dir });
  for (const r of rows) expect(Math.max(0, r.lakeRecords), r.key).toBe(r.reportPersisted);
});
