import { afterAll, describe, expect, it } from 'vitest';
import { currentThreadBuffers, logger, type PersistReport, System } from '../../src/index.js';
import { readPersisted } from '../../src/persist.js';
import { ThreadBuffersReader } from '../../src/telemetry/instrumentation/index.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { tempDir } from './fixtures.js';

// A file of its own: it fills this thread's string table, which every later System here would share.
describe("the main thread's drops between the System's making and its start", () => {
  const { dir, cleanup } = tempDir('dorsal-main-drops-');
  afterAll(cleanup);

  it('are the run’s, counted in the report and in the lake like those after the start', async () => {
    const system = new System(spine, { persist: { data: dir } });
    const reader = ThreadBuffersReader.attach(currentThreadBuffers()!);
    const before = reader.droppedOf('logs').strings;
    // More templates than the string table holds (4096): the last ones' entries are dropped.
    const log = logger('loader');
    for (let i = 0; i < 5000; i++) log.info(`template ${i}`);
    const dropped = reader.droppedOf('logs').strings - before;
    expect(dropped).toBeGreaterThan(0);
    system.spawn(compiledUrl('../fixtures/actors/idle.ts', import.meta.url), { args: { name: 'idle' } });
    await system.start();
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    const main = persist.sources.find((s) => s.kind === 'log' && s.name === 'main');
    expect(main?.dropped).toBe(dropped);
    expect(persist.flushed).toBe(true);
    const lake = Lake.open({ data: dir });
    try {
      const stored = (await readPersisted(lake, persist.processId)).find(
        (d) => d.stream.tags.includes('log') && d.stream.properties.thread === 'main',
      );
      expect(stored?.dropped).toEqual({ strings: dropped, depth: 0 });
    } finally {
      await lake.close();
    }
  });
});
