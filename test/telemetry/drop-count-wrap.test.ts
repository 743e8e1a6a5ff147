import { expect, it } from 'vitest';
import { currentThreadBuffers, logger } from '../../src/index.js';
import { readPersisted, shipInstrumentation } from '../../src/persist.js';
import { StringTableHeader } from '../../src/telemetry/instrumentation/string-table.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { tempDir } from './fixtures.js';

// A file of its own: it sets this thread's drop counter, which the other tests' threads do not share.
it('drops at the source past 2^31 are counted on, not negative: the thread counts in words that wrap', async () => {
  const { dir, cleanup } = tempDir('dorsal-drop-wrap-');
  try {
    const log = logger('wrap');
    log.info('first');
    // As if 2^31 - 5 events had been dropped before (a minute of a thread dropping flat out).
    const words = new Int32Array(currentThreadBuffers().strings);
    Atomics.store(words, StringTableHeader.DROPPED_STRING_LOGS, 2 ** 31 - 5);
    const shipping = await shipInstrumentation({ data: dir });
    // Ten more, across the word's wrap: a template that is no string cannot be interned.
    for (let i = 0; i < 10; i++) log.info(i as unknown as string);
    expect(Atomics.load(words, StringTableHeader.DROPPED_STRING_LOGS)).toBeLessThan(0);
    const report = await shipping.stop();
    const logs = report.sources.find((s) => s.kind === 'log' && s.name === 'main')!;
    expect(logs.dropped).toBe(10);
    const lake = Lake.open({ data: dir });
    try {
      const stored = (await readPersisted(lake, shipping.processId)).find(
        (d) => d.stream.tags.includes('log') && d.stream.properties.thread === 'main',
      )!;
      expect(stored.dropped).toEqual({ strings: 10, depth: 0 });
    } finally {
      await lake.close();
    }
  } finally {
    cleanup();
  }
});
