import { afterEach, expect, it } from 'vitest';
import { type PersistReport, System } from '../../src/index.js';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { spine } from '../fixtures/actors/spine.js';
import { until } from '../helpers/until.js';
import { tempDir } from '../telemetry/fixtures.js';
import { compare } from './helpers.js';

const fixture = (name: string) => new URL(`../fixtures/actors/${name}.ts`, import.meta.url);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

it('the server closed mid-run: what the report says persisted is what the lake holds', async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const server = await startIngestionServer({ port: 0, lake: { data: dir } });
  const system = new System(spine, { persist: { url: server.url, blockMs: 20, flushTimeoutMs: 1500 } });
  system.spawn(fixture('feed'), { args: { count: 0, perLoop: 20 } });
  system.spawn(fixture('strategy'));
  await system.start();
  await until(() => system.spine.queue(0).stats().published > 5000, 'ticks');
  await server.close();
  await new Promise((r) => setTimeout(r, 300));
  const report = await system.stop();
  const persist = report.persist as PersistReport;
  const rows = await compare(report, { data: dir });
  const bad = rows.filter(
    (r) =>
      Math.max(0, r.lakeRecords) !== r.reportPersisted ||
      (r.published !== undefined && r.published !== r.reportPersisted + r.reportLost),
  );
  if (bad.length > 0) console.table(bad);
  console.log(persist.flushed, persist.blocks, persist.blocksDropped);
  expect(bad).toEqual([]);
}, 60_000);
