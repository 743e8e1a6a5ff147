import { threadId } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  createThreadBuffers,
  currentThreadBuffers,
  LogEvent,
  MetricKind,
  SpanKind,
  ThreadBuffersReader,
} from '../../src/index.js';
import type { CollectedThread } from '../fixtures/instrumentation/collector.js';
import { decodeLog } from '../fixtures/instrumentation/decode.js';
import { floodText, SCRIPTS } from '../fixtures/instrumentation/scripts.js';
import { collect, run, startCollector, startEmitter, stop, stopCollector } from './threads.js';

/** What `SCRIPTS.everything` must leave in a thread's buffers, read back by another thread. */
function expectEverything(thread: CollectedThread, tag: string): void {
  const [outerBegin, innerBegin, innerEnd, outerEnd] = thread.spans;
  expect(thread.spans.map((s) => [s.kind, s.name, s.depth])).toEqual([
    [SpanKind.BEGIN, 'outer', 0],
    [SpanKind.BEGIN, 'inner', 1],
    [SpanKind.END, 'inner', 1],
    [SpanKind.END, 'outer', 0],
  ]);
  expect(outerBegin!.parent).toBe(0);
  expect(innerBegin!.parent).toBe(outerBegin!.id);
  expect(innerEnd!.id).toBe(innerBegin!.id);
  expect(outerEnd!.id).toBe(outerBegin!.id);
  expect(innerBegin!.id).not.toBe(outerBegin!.id);

  // The debug entry is filtered out (the default level is info): nothing of it is recorded.
  expect(
    thread.logs.map(({ level, target, template, properties, flags }) => ({
      level,
      target,
      template,
      properties,
      flags,
    })),
  ).toEqual([
    { level: 'info', target: 'app', template: 'started', properties: { n: 1, ok: true, who: tag }, flags: 0 },
    { level: 'warn', target: 'app', template: 'inside outer', properties: {}, flags: 0 },
    {
      level: 'error',
      target: 'app',
      template: 'failed',
      properties: { code: 500, reason: `no route from ${tag}` },
      flags: 0,
    },
  ]);
  const [started, inside, failed] = thread.logs;
  expect(started!.span).toBe(0);
  expect(inside!.span).toBe(outerBegin!.id);
  expect(failed!.span).toBe(0);

  expect(
    thread.metrics.map(({ name, unit, value, kind, span }) => ({ name, unit, value, kind, span })),
  ).toEqual([
    { name: 'depth', unit: 'levels', value: 42.5, kind: MetricKind.FLOAT, span: innerBegin!.id },
    { name: 'count', unit: 'items', value: 7, kind: MetricKind.INTEGER, span: innerBegin!.id },
  ]);

  // Times come from one clock and follow the program's order within the thread.
  const times = [started!.t, outerBegin!.t, inside!.t, innerBegin!.t, ...thread.metrics.map((m) => m.t)];
  times.push(innerEnd!.t, outerEnd!.t, failed!.t);
  for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]!);
  expect(thread.lost).toEqual({ logs: 0, metrics: 0, spans: 0 });
  expect(thread.dropped).toEqual({ strings: 0, depth: 0 });
}

describe('instrumentation from the main thread and from workers, read by another thread', () => {
  it('brings back every event with its values, level, target, properties and nesting', async () => {
    const first = createThreadBuffers({ name: 'first' });
    const second = createThreadBuffers({ name: 'second' });
    const main = currentThreadBuffers();
    const collector = await startCollector([main, first, second]);
    const workers = [await startEmitter(first), await startEmitter(second)];
    try {
      const done = [await run(workers[0]!, 'everything', { tag: 'first' })];
      done.push(await run(workers[1]!, 'everything', { tag: 'second' }));
      SCRIPTS.everything({ tag: 'main' });
      const [fromMain, fromFirst, fromSecond] = await collect(collector);

      expect(fromMain!.name).toBe('main');
      expect(fromMain!.threadId).toBe(threadId);
      expect(fromFirst!.threadId).toBe(done[0]!.threadId);
      expect(fromSecond!.threadId).toBe(done[1]!.threadId);
      expect(new Set([fromMain!.threadId, fromFirst!.threadId, fromSecond!.threadId]).size).toBe(3);
      // The workers' buffers came from this thread: they share its clock base.
      expect(fromFirst!.clockBaseNs).toBe(main.clockBaseNs);
      expect(fromSecond!.clockBaseNs).toBe(main.clockBaseNs);
      expectEverything(fromMain!, 'main');
      expectEverything(fromFirst!, 'first');
      expectEverything(fromSecond!, 'second');
    } finally {
      await Promise.all(workers.map(stop));
      await stopCollector(collector);
    }
  });

  it('a worker given no buffers makes its own on its first event, and a reader finds them', async () => {
    const worker = await startEmitter();
    try {
      const done = await run(worker, 'everything', { tag: 'plain' });
      expect(done.buffers.name).toBe(`worker-${done.threadId}`);
      const collector = await startCollector([done.buffers]);
      const [plain] = await collect(collector);
      await stopCollector(collector);
      expectEverything(plain!, 'plain');
      expect(plain!.threadId).toBe(done.threadId);
    } finally {
      await stop(worker);
    }
  });
});

describe('events written in place, read while they are written', () => {
  it('a worker logging flat out into a ring of 4 slots: every entry read is whole, none torn', async () => {
    const buffers = createThreadBuffers({ name: 'flood', logCapacity: 4 });
    const reader = ThreadBuffersReader.attach(buffers);
    const consumer = reader.logs.consumer({ from: 'oldest' });
    const emitter = await startEmitter(buffers);
    let done = false;
    const finished = run(emitter, 'flood', { tag: 'flood', count: 100_000 }).then(() => {
      done = true;
    });
    const out = LogEvent.create();
    let read = 0;
    const torn: unknown[] = [];
    // Read as the worker writes: the reader is often a lap behind, and meets slots mid-write.
    for (let last = false; !last; ) {
      last = done;
      while (consumer.poll(out)) {
        read++;
        const entry = decodeLog(out, reader.strings);
        const n = entry.properties.n as number;
        const whole =
          entry.template === 'flood'
            ? entry.flags === 0 &&
              JSON.stringify(entry.properties) === JSON.stringify({ n, half: n / 2, text: floodText(n) })
            : entry.template === 'bare' && entry.flags === 0 && JSON.stringify(entry.properties) === '{}';
        if (!whole && torn.length < 5) torn.push(entry);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await finished;
    await stop(emitter);
    expect(torn).toEqual([]);
    expect(read).toBeGreaterThan(0);
    expect(read + consumer.lost).toBe(200_000);
  });
});
