import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, defineMessage, SeqlockQueue, SeqlockVector } from '../../src/index.js';
import { Tagged } from '../fixtures/mp-producer.js';
import { isIntact, Stress } from '../fixtures/stress-message.js';
import { compiledUrl } from '../helpers/compiled.js';
import { messageOfType, startWorker } from '../helpers/workers.js';

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

describe('multi-producer queue across threads', () => {
  // 'x86-v8': the opt-in orderings that rely on x86 and V8's code generation (see memory-order.ts).
  for (const order of ['language', 'x86-v8'] as const) {
    it(`three producers publish at once (${order} memory order): every message arrives once, each producer in its own order`, async () => {
      const env = order === 'x86-v8' ? { DORSAL_MEMORY_ORDER: 'x86-v8' } : undefined;
      const PER = 50_000;
      const queue = SeqlockQueue.create(Tagged, { capacity: 1 << 19, multiProducer: true });
      const consumer = queue.consumer();
      const producers = [1, 2, 3].map((id) =>
        startWorker(
          compiledUrl('../fixtures/mp-producer.ts', import.meta.url),
          {
            role: 'mp-producer',
            buffer: queue.buffer,
            id,
            count: PER,
          },
          env,
        ),
      );
      workers.push(...producers);
      await Promise.all(producers.map((w) => messageOfType(w, 'done')));
      const next = new Map([
        [1, 0],
        [2, 0],
        [3, 0],
      ]);
      const out = Tagged.create();
      let received = 0;
      while (consumer.poll(out)) {
        received++;
        expect(out.n).toBe(next.get(out.producer));
        expect(out.check).toBe(out.producer * 1e7 + out.n);
        next.set(out.producer, out.n + 1);
      }
      expect(received).toBe(3 * PER);
      expect(consumer.lost).toBe(0);
      expect([...next.values()]).toEqual([PER, PER, PER]);
    });
  }

  it('three producers lap a small ring across threads: lapped consumers get intact messages in order and count the rest', async () => {
    const PER = 100_000;
    const queue = SeqlockQueue.create(Tagged, { capacity: 64, multiProducer: true });
    const consumerModule = compiledUrl('../fixtures/mp-consumer.ts', import.meta.url);
    const consumers = [
      startWorker(consumerModule, { buffer: queue.buffer, mode: 'spin' }),
      startWorker(consumerModule, { buffer: queue.buffer, mode: 'slow', napEvery: 200 }),
    ];
    workers.push(...consumers);
    await Promise.all(consumers.map((w) => messageOfType(w, 'ready')));
    const verdicts = consumers.map((w) =>
      messageOfType<{
        type: 'done';
        received: number;
        lost: number;
        poisoned: number;
        disordered: number;
        torn: number;
      }>(w, 'done'),
    );
    const producers = [1, 2, 3].map((id) =>
      startWorker(compiledUrl('../fixtures/mp-producer.ts', import.meta.url), {
        role: 'mp-producer',
        buffer: queue.buffer,
        id,
        count: PER,
      }),
    );
    workers.push(...producers);
    const done = await Promise.all(
      producers.map((w) => messageOfType<{ type: 'done'; published: number }>(w, 'done')),
    );
    expect(done.map((d) => d.published)).toEqual([PER, PER, PER]);
    queue.close();
    const [spin, slow] = await Promise.all(verdicts);
    for (const v of [spin!, slow!]) {
      expect(v.torn).toBe(0);
      expect(v.disordered).toBe(0);
      expect(v.poisoned).toBe(0);
      expect(v.received + v.lost).toBe(3 * PER);
    }
    // The slowed consumer was lapped; no producer took a slot over from another.
    expect(slow!.lost).toBeGreaterThan(0);
    expect(queue.stats()).toMatchObject({ published: 3 * PER, poisoned: 0 });
  });
});

describe("a producer's count in shared memory (ProducerOptions.counter)", () => {
  it('a multi-producer producer keeps its published count in the cell it is given; a single producer refuses one', () => {
    const queue = SeqlockQueue.create(Tagged, { capacity: 8, multiProducer: true });
    const counts = new Float64Array(new SharedArrayBuffer(3 * 8)).fill(7);
    const first = queue.producer({ counter: { counts, index: 1 } });
    const second = queue.producer({ counter: { counts, index: 2 } });
    // A cell given is its count from the start, whatever it held.
    expect([...counts]).toEqual([7, 0, 0]);
    for (let i = 0; i < 20; i++) first.publish({ producer: 1, n: i, check: i });
    for (let i = 0; i < 3; i++) second.publish({ producer: 2, n: i, check: i });
    expect([...counts]).toEqual([7, 20, 3]);
    expect([first.published, second.published]).toEqual([20, 3]);
    expect(() => queue.producer({ counter: { counts, index: 3 } })).toThrow(ConfigError);
    expect(() => queue.producer({ counter: { counts, index: 1.5 } })).toThrow(/index 1.5 is not a cell/);
    const single = SeqlockQueue.create(Tagged, { capacity: 8 });
    expect(() => single.producer({ counter: { counts, index: 0 } })).toThrow(/for a multi-producer queue/);
    // Refused before it took the producer role: the queue's producer is still to be had.
    expect(single.producer().published).toBe(0);
  });
});

describe('SeqlockVector', () => {
  it('a reader on another thread always gets the newest complete value per key, never a torn one', async () => {
    const COUNT = 300_000;
    const vector = SeqlockVector.create(Stress, { length: 4 });
    const reader = vector.reader();
    const writer = startWorker(compiledUrl('../fixtures/vector-writer.ts', import.meta.url), {
      buffer: vector.buffer,
      count: COUNT,
    });
    workers.push(writer);
    const done = messageOfType(writer, 'done');
    let finished = false;
    done.then(() => {
      finished = true;
    });
    const out = Stress.create();
    const lastSeen = [0, 0, 0, 0];
    let reads = 0;
    let torn = 0;
    let backwards = 0;
    for (let round = 1; !finished; round++) {
      for (let key = 0; key < 4; key++) {
        if (!reader.read(key, out)) continue;
        reads++;
        if (!isIntact(out) || out.seq % 4 !== key) torn++;
        if (out.seq < lastSeen[key]!) backwards++;
        lastSeen[key] = out.seq;
      }
      // Let the event loop deliver the writer's 'done' now and then.
      if (round % 256 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(torn).toBe(0);
    expect(backwards).toBe(0);
    expect(reads).toBeGreaterThan(0);
    for (let key = 0; key < 4; key++) {
      expect(reader.read(key, out)).toBe(true);
      expect(isIntact(out)).toBe(true);
      expect(out.seq).toBe(COUNT - ((COUNT - key) % 4));
    }
  });

  it('unwritten keys read false; indices and layouts are checked', () => {
    const vector = SeqlockVector.create(Stress, { length: 2 });
    const reader = vector.reader();
    expect(reader.read(1, Stress.create())).toBe(false);
    expect(vector.version(1)).toBe(0);
    expect(() => vector.version(2)).toThrow(/index must be an integer from 0 to 1, got 2/);
    expect(() => SeqlockVector.create(Stress, { length: 0 })).toThrow(ConfigError);
    expect(() => SeqlockVector.create(Stress, { length: 2, poisonTimeoutMs: 0 })).toThrow(
      'poisonTimeoutMs must be an integer from 1 to 2147483647 (ms), got 0',
    );
    expect(() => SeqlockVector.attach(Tagged, vector.buffer)).toThrow(/layout mismatch/);
    // Past 2 GiB: a ConfigError naming the vector (a RangeError from a typed array once).
    const Wide = defineMessage('Wide', { s: { type: 'bytes', bytes: 1000 } });
    expect(() => SeqlockVector.create(Wide, { length: 2 ** 22 })).toThrow(
      /over the 2147483647 a vector may take/,
    );
  });

  it("a reader closed twice frees only its own entry, not a later reader's", () => {
    const vector = SeqlockVector.create(Stress, { length: 2, maxReaders: 1 });
    const first = vector.reader();
    first.close();
    const second = vector.reader();
    first.close();
    // The one entry is still the second reader's.
    expect(() => vector.reader()).toThrow(ConfigError);
    second.close();
    vector.reader();
  });
});
