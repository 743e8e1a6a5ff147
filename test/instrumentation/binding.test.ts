import { describe, expect, it } from 'vitest';
import {
  bindThreadInstrumentation,
  ConfigError,
  createThreadBuffers,
  currentThreadBuffers,
  logger,
  releaseThreadBuffers,
  SpanKind,
  type ThreadBuffersDescriptor,
  unbindThreadInstrumentation,
} from '../../src/index.js';
import { collect, emitterEnd, run, startCollector, startEmitter, stop, stopCollector } from './threads.js';

describe('binding buffers to threads', () => {
  it('buffers bound in one thread are refused in any other', async () => {
    const buffers = createThreadBuffers({ name: 'taken' });
    const first = await startEmitter(buffers);
    try {
      await expect(emitterEnd(buffers)).rejects.toThrow(/already bound in another thread/);
      expect(() => bindThreadInstrumentation(buffers)).toThrow(ConfigError);
    } finally {
      await stop(first);
    }
  });

  it("a dead thread's buffers, released, let its replacement resume: ids, spans and order", async () => {
    const buffers = createThreadBuffers({ name: 'restarted' });
    const collector = await startCollector([buffers]);
    const dead = await startEmitter(buffers);
    try {
      await run(dead, 'everything', { tag: 'before' });
      // Ended without giving its roles back, as a crashed worker is.
      await dead.terminate();
      await expect(emitterEnd(buffers)).rejects.toThrow(/already bound/);
      releaseThreadBuffers(buffers);
      const replacement = await startEmitter(buffers);
      const done = await run(replacement, 'everything', { tag: 'after' });
      await stop(replacement);
      const [thread] = await collect(collector);
      expect(thread!.threadId).toBe(done.threadId);
      expect(thread!.logs.map((l) => `${l.template}:${l.properties.who ?? ''}`)).toEqual([
        'started:before',
        'inside outer:',
        'failed:',
        'started:after',
        'inside outer:',
        'failed:',
      ]);
      // One id per string: the replacement found the strings already interned.
      expect(new Set(thread!.strings).size).toBe(thread!.strings.length);
      const begins = thread!.spans.filter((s) => s.kind === SpanKind.BEGIN).map((s) => s.id);
      expect(begins).toHaveLength(4);
      expect(new Set(begins).size).toBe(4);
      expect(begins).toEqual([...begins].sort((a, b) => a - b));
    } finally {
      await stopCollector(collector);
    }
  });

  it('binding replaces buffers that recorded nothing, and refuses to drop ones that did', () => {
    unbindThreadInstrumentation();
    const lazy = currentThreadBuffers();
    expect(lazy.name).toBe('main');
    const chosen = createThreadBuffers({ name: 'chosen' });
    bindThreadInstrumentation(chosen);
    expect(currentThreadBuffers()).toBe(chosen);
    logger('binding').info('recorded');
    expect(() => bindThreadInstrumentation(createThreadBuffers())).toThrow(/bind before its first event/);
    expect(currentThreadBuffers()).toBe(chosen);
  });

  it('anything but a descriptor of this version is refused with a ConfigError', () => {
    const good = createThreadBuffers();
    const bad: unknown[] = [
      null,
      {},
      { ...good, format: 'dorsal.instrumentation/0' },
      { ...good, logs: new ArrayBuffer(8) },
      { ...good, strings: new SharedArrayBuffer(256) },
      { ...good, levels: good.strings },
    ];
    for (const descriptor of bad) {
      expect(() => bindThreadInstrumentation(descriptor as ThreadBuffersDescriptor)).toThrow(ConfigError);
    }
  });
});
