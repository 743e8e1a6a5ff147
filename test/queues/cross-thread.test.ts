import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { SeqlockQueue } from '../../src/index.js';
import { fillStress, Stress } from '../fixtures/stress-message.js';
import { compiledUrl } from '../helpers/compiled.js';
import { exited, messageOfType, startWorker } from '../helpers/workers.js';

interface Verdict {
  type: 'done';
  received: number;
  lost: number;
  last: number;
  inOrder: boolean;
  consecutive: boolean;
  torn: number;
  duplicates: number;
}

const consumerModule = compiledUrl('../fixtures/stress-consumer.ts', import.meta.url);
const producerModule = compiledUrl('../fixtures/stress-producer.ts', import.meta.url);
const workers: Worker[] = [];

function start(module: URL, data: unknown, env?: Record<string, string>): Worker {
  const worker = startWorker(module, data, env);
  workers.push(worker);
  return worker;
}

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

describe('one producer, consumers on other worker threads', () => {
  it('a million messages: the consumer that keeps up gets all in order once; the slowed one gets intact messages in order and counts its loss', async () => {
    const COUNT = 1_000_000;
    const capacity = 1 << 14;
    const queue = SeqlockQueue.create(Stress, { capacity });
    const fast = start(consumerModule, { buffer: queue.buffer, mode: 'fast' });
    const fast2 = start(consumerModule, { buffer: queue.buffer, mode: 'fast' });
    const slow = start(consumerModule, { buffer: queue.buffer, mode: 'slow', napEvery: 2000, napMs: 2 });
    // Listen for the exits now: a worker that is done may exit before we would ask later.
    const exits = [fast, fast2, slow].map(exited);
    const ready = await Promise.all(
      [fast, fast2, slow].map((w) => messageOfType<{ type: 'ready'; index: number }>(w, 'ready')),
    );
    const verdicts = [fast, fast2, slow].map((w) => messageOfType<Verdict>(w, 'done'));
    const keepUp = new Set([ready[0]!.index, ready[1]!.index]);

    // The producer never waits for consumers; the *test* paces itself on the monitoring view so
    // that the two "keeping up" consumers are never a ring behind on this 2-core machine.
    const producer = queue.producer();
    const msg = Stress.create();
    const nap = new Int32Array(new SharedArrayBuffer(4));
    for (let seq = 0; seq < COUNT; seq++) {
      if (seq % 1024 === 0) {
        for (;;) {
          const lag = Math.max(
            ...queue
              .stats()
              .consumers.filter((c) => keepUp.has(c.index))
              .map((c) => c.lag),
          );
          if (lag < capacity / 2) break;
          Atomics.wait(nap, 0, 0, 0.2);
        }
      }
      producer.publish(fillStress(msg, seq));
    }
    queue.close();

    const [a, b, s] = await Promise.all(verdicts);
    for (const v of [a!, b!]) {
      expect(v).toMatchObject({
        received: COUNT,
        lost: 0,
        last: COUNT - 1,
        inOrder: true,
        consecutive: true,
        torn: 0,
        duplicates: 0,
      });
    }
    expect(s!.torn).toBe(0);
    expect(s!.inOrder).toBe(true);
    expect(s!.duplicates).toBe(0);
    expect(s!.lost).toBeGreaterThan(0);
    expect(s!.received + s!.lost).toBe(COUNT);
    expect(producer.published).toBe(COUNT);
    expect(await Promise.all(exits)).toEqual([0, 0, 0]);
  });

  // 'language': the default orderings, sound by the ECMAScript memory model; 'x86-v8': the opt-in
  // path that relies on x86 and on V8's code generation (see memory-order.ts). A producer that
  // does not wake anyone has its own done store: stressed too.
  // A producer that writes in place (claim, stores, commit): the same orderings, stressed too.
  const variants = [
    { order: 'language', wakes: true, claim: false },
    { order: 'x86-v8', wakes: true, claim: false },
    { order: 'language', wakes: false, claim: false },
    { order: 'x86-v8', wakes: false, claim: false },
    { order: 'language', wakes: true, claim: true },
  ] as const;
  for (const { order, wakes, claim } of variants) {
    const producerKind = claim
      ? 'a producer writing in place'
      : wakes
        ? 'a producer'
        : 'a producer that wakes no one';
    it(`torn-read stress (${order} memory order): ${producerKind} flat out on a tiny ring, a spinning and a slowed reader, never a torn message`, async () => {
      const COUNT = 300_000;
      const env = order === 'x86-v8' ? { DORSAL_MEMORY_ORDER: 'x86-v8' } : undefined;
      const queue = SeqlockQueue.create(Stress, { capacity: 4 });
      const spin = start(consumerModule, { buffer: queue.buffer, mode: 'spin' }, env);
      const slow = start(
        consumerModule,
        { buffer: queue.buffer, mode: 'slow', napEvery: 100, napMs: 0.05 },
        env,
      );
      await Promise.all([spin, slow].map((w) => messageOfType(w, 'ready')));
      const verdicts = [spin, slow].map((w) => messageOfType<Verdict>(w, 'done'));
      const producer = start(producerModule, { buffer: queue.buffer, count: COUNT, wakes, claim }, env);
      const { published } = await messageOfType<{ type: 'done'; published: number }>(producer, 'done');
      expect(published).toBe(COUNT);
      for (const v of await Promise.all(verdicts)) {
        expect(v.torn).toBe(0);
        expect(v.duplicates).toBe(0);
        expect(v.inOrder).toBe(true);
        expect(v.received + v.lost).toBe(COUNT);
        expect(v.received).toBeGreaterThan(0);
      }
    });
  }
});
