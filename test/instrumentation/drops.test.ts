import { describe, expect, it } from 'vitest';
import { createThreadBuffers, ThreadBuffersReader } from '../../src/index.js';
import { collect, run, startCollector, startEmitter, stop, stopCollector } from './threads.js';

describe('what a full buffer does: never block, drop and count', () => {
  it('an event whose string cannot be interned (table full) is dropped and counted', async () => {
    // 8 strings: the empty one, the target 'full', and room for 6 templates of the 20 logged.
    const buffers = createThreadBuffers({ name: 'full', maxStrings: 8 });
    const emitter = await startEmitter(buffers);
    const collector = await startCollector([buffers]);
    try {
      await run(emitter, 'manyTemplates', { tag: 'full', count: 20 });
      const [thread] = await collect(collector);
      expect(thread!.logs.map((l) => l.template)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `template ${i}`));
      expect(thread!.dropped).toEqual({ strings: 14, depth: 0 });
      expect(thread!.strings).toHaveLength(8);
      // Strings already interned still work: a template seen before is recorded.
      await run(emitter, 'manyTemplates', { tag: 'full', count: 2 });
      const [again] = await collect(collector);
      expect(again!.logs.map((l) => l.template)).toEqual(['template 0', 'template 1']);
      expect(again!.dropped.strings).toBe(14);
    } finally {
      await stop(emitter);
      await stopCollector(collector);
    }
  });

  it('the byte room of the table bounds it too', async () => {
    // 64 bytes: 'bytes' (5) then templates of 10 bytes ('template 0' …) until 64 are used.
    const buffers = createThreadBuffers({ name: 'bytes', maxBytes: 64 });
    const emitter = await startEmitter(buffers);
    try {
      await run(emitter, 'manyTemplates', { tag: 'bytes', count: 10 });
      const reader = ThreadBuffersReader.attach(buffers);
      expect(reader.strings.count).toBe(1 + 1 + 5);
      expect(reader.dropped.strings).toBe(5);
      expect(reader.logs.stats().published).toBe(5);
    } finally {
      await stop(emitter);
    }
  });

  it('a table of any size is made: odd counts of strings and bytes', () => {
    // The table once ended where a Float64Array over it could not (a RangeError for 3 strings).
    for (const size of [{ maxStrings: 3 }, { maxStrings: 5, maxBytes: 61 }, { maxBytes: 1 }]) {
      const buffers = createThreadBuffers({ name: 'odd', clockBaseNs: 123, ...size });
      const reader = ThreadBuffersReader.attach(buffers);
      expect(reader.strings.count).toBe(1);
      expect(buffers.clockBaseNs).toBe(123);
    }
  });

  it('a reader lapped by the thread it reads counts what it lost: received + lost = published', async () => {
    const buffers = createThreadBuffers({ name: 'lapped', logCapacity: 16 });
    const emitter = await startEmitter(buffers);
    // The reader opens its consumer at the head, then reads nothing while 1000 entries go by.
    const collector = await startCollector([buffers], 'head');
    try {
      await run(emitter, 'infos', { tag: 'lapped', count: 1000 });
      const [thread] = await collect(collector);
      const received = thread!.logs.map((l) => l.properties.i);
      expect(received.length + thread!.lost.logs).toBe(1000);
      expect(thread!.lost.logs).toBeGreaterThanOrEqual(1000 - 16);
      // What it did receive is the newest entries, in order, with nothing missing among them.
      expect(received.length).toBeGreaterThan(0);
      expect(received).toEqual(received.map((_, k) => 1000 - received.length + k));
      // The source dropped nothing: the loss is the reader's, and it says so.
      expect(thread!.dropped).toEqual({ strings: 0, depth: 0 });
    } finally {
      await stop(emitter);
      await stopCollector(collector);
    }
  });
});
