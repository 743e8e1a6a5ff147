import { afterEach, expect, it } from 'vitest';
import { type PersistReport, System } from '../../src/index.js';
import { readPersisted } from '../../src/persist.js';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { spine } from '../fixtures/actors/spine.js';
import { until } from '../helpers/until.js';
import { tempDir } from '../telemetry/fixtures.js';

const fixture = (name: string) => new URL(`../fixtures/actors/${name}.ts`, import.meta.url);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

it('blocks a server refuses during the stop’s flush are counted lost in the lake, as in the report', async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  // Blocks of records are refused (4xx); blocks of coverage alone (32 bytes) pass.
  const server = await startIngestionServer({ port: 0, lake: { data: dir }, maxBlockBytes: 600 });
  try {
    const system = new System(spine, { persist: { url: server.url, flushTimeoutMs: 3000 } });
    system.spawn(fixture('feed'), { args: { count: 100, perLoop: 10 } });
    system.spawn(fixture('strategy'));
    await system.start();
    await until(() => system.spine.queue(1).stats().published === 200, 'the orders');
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    const ticks = persist.sources.find((s) => s.kind === 'messages' && s.name === 'ticks')!;
    expect(ticks).toMatchObject({ persisted: 0, lost: 100 });
    const lake = Lake.open({ data: dir });
    try {
      const data = await readPersisted(lake, persist.processId);
      const stored = data.find((d) => d.stream.tags.includes('messages') && d.stream.properties.name === 'ticks');
      // What the report says is lost, the lake says too.
      expect({ records: stored?.records.length ?? 0, lost: stored?.lost ?? 0 }).toEqual({ records: 0, lost: 100 });
    } finally {
      await lake.close();
    }
  } finally {
    await server.close();
  }
});
