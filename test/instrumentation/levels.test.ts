import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createThreadBuffers, levelOf, setLevel, type ThreadBuffersDescriptor } from '../../src/index.js';
import { StringInterner, StringTable } from '../../src/telemetry/instrumentation/string-table.js';
import { collect, run, startCollector, startEmitter, stop, stopCollector } from './threads.js';

describe('levels per target, decided at the call site, set from any thread', () => {
  let buffers: ThreadBuffersDescriptor;
  let emitter: Worker;
  let collector: Worker;

  beforeAll(async () => {
    buffers = createThreadBuffers({ name: 'levels' });
    emitter = await startEmitter(buffers);
    collector = await startCollector([buffers]);
  });

  afterAll(async () => {
    await stop(emitter);
    await stopCollector(collector);
  });

  const read = async () => (await collect(collector))[0]!;

  it('a filtered-out level records nothing: no event, not even its strings', async () => {
    await run(emitter, 'debugs', { tag: 'quiet', count: 100 });
    const thread = await read();
    expect(thread.logs).toEqual([]);
    expect(thread.strings).not.toContain('debug entry');
    expect(thread.strings).not.toContain('i');
    expect(thread.dropped).toEqual({ strings: 0, depth: 0 });
  });

  it('a level set in the main thread takes effect in a worker, and one set there in the main thread', async () => {
    // The worker's logger of 'loud' exists before the level changes: it sees the change.
    await run(emitter, 'debugs', { tag: 'loud', count: 1 });
    expect((await read()).logs).toEqual([]);
    setLevel('loud', 'debug');
    await run(emitter, 'debugs', { tag: 'loud', count: 3 });
    expect((await read()).logs.map((l) => [l.level, l.target, l.properties.i])).toEqual([
      ['debug', 'loud', 0],
      ['debug', 'loud', 1],
      ['debug', 'loud', 2],
    ]);
    await run(emitter, 'setLevelOf', { tag: 'from-worker', level: 'trace' });
    expect(levelOf('from-worker')).toBe('trace');
    expect(levelOf('never-set')).toBe('info');
  });

  it('each level records up to its threshold; off records nothing, not even fatal', async () => {
    const levelsOf = async (target: string) => {
      await run(emitter, 'everyLevel', { tag: target });
      return (await read()).logs.map((l) => l.level);
    };
    setLevel('errors-only', 'error');
    expect(await levelsOf('errors-only')).toEqual(['fatal', 'error']);
    setLevel('all', 'trace');
    expect(await levelsOf('all')).toEqual(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);
    setLevel('silent', 'off');
    expect(await levelsOf('silent')).toEqual([]);
    expect(await levelsOf('untouched')).toEqual(['fatal', 'error', 'warn', 'info']);
  });

  it("the default ('*') moves every target not set by name, and only those", async () => {
    setLevel('kept', 'debug');
    setLevel('*', 'warn');
    try {
      expect(levelOf('*')).toBe('warn');
      expect(levelOf('untouched')).toBe('warn');
      expect(levelOf('kept')).toBe('debug');
      await run(emitter, 'everyLevel', { tag: 'untouched' });
      await run(emitter, 'everyLevel', { tag: 'kept' });
      expect((await read()).logs.map((l) => `${l.target}:${l.level}`)).toEqual([
        'untouched:fatal',
        'untouched:error',
        'untouched:warn',
        'kept:fatal',
        'kept:error',
        'kept:warn',
        'kept:info',
        'kept:debug',
      ]);
    } finally {
      setLevel('*', 'info');
    }
  });

  it('a target whose name holds a lone surrogate gets its level, and setting it again takes no new slot', async () => {
    const odd = 'odd\ud800';
    for (let i = 0; i < 300; i++) setLevel(odd, 'debug');
    expect(levelOf(odd)).toBe('debug');
    await run(emitter, 'debugs', { tag: odd, count: 2 });
    // Stored as UTF-8 stores it: the lone surrogate as U+FFFD.
    expect((await read()).logs.map((l) => [l.level, l.target])).toEqual([
      ['debug', 'odd\ufffd'],
      ['debug', 'odd\ufffd'],
    ]);
    // The table is not full: 300 sets of one name took one slot.
    setLevel('after-odd', 'trace');
    expect(levelOf('after-odd')).toBe('trace');
  });

  it('a string with a lone surrogate keeps its id when a restarted thread takes the table over', () => {
    const buffer = StringTable.createBuffer(0);
    const first = StringInterner.claim(buffer, 1);
    const id = first.intern('tmpl\udc00');
    first.close();
    const second = StringInterner.claim(buffer, 2);
    expect(second.intern('tmpl\udc00')).toBe(id);
    expect(second.intern('tmpl\ufffd')).toBe(id);
    expect(second.size).toBe(first.size);
    second.close();
    // So in a table that is full.
    const full = StringTable.createBuffer(0, { maxStrings: 2 });
    const writer = StringInterner.claim(full, 3);
    const kept = writer.intern('tmpl\udc00');
    expect(writer.intern('another')).toBe(-1);
    writer.close();
    const restarted = StringInterner.claim(full, 4);
    expect(restarted.intern('tmpl\udc00')).toBe(kept);
    restarted.close();
  });

  it('an unknown level is refused with a ConfigError naming the known ones', () => {
    expect(() => setLevel('x', 'verbose' as never)).toThrow(/unknown log level 'verbose'.*trace/);
  });
});
