import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BlockingWaitStrategy,
  type PoisonedSlot,
  PoisonedSlotError,
  SeqlockQueue,
  SeqlockVector,
} from '../../src/index.js';
import { QueueHeader } from '../../src/queues/queue-header.js';
import { Numbered } from '../fixtures/dying-writer.js';
import { until } from '../helpers/until.js';
import { exited, messageOfType, startWorker } from '../helpers/workers.js';

const dyingWriter = new URL('../fixtures/dying-writer.ts', import.meta.url);
const numberedProducer = new URL('../fixtures/numbered-producer.ts', import.meta.url);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

function start(module: URL, data: object): Worker {
  const worker = startWorker(module, data);
  workers.push(worker);
  return worker;
}

/** Starts a writer that writes `before` messages, then dies with its next slot half written. */
async function dieMidWrite(kind: 'queue' | 'multi' | 'vector', buffer: SharedArrayBuffer, before: number) {
  const writer = start(dyingWriter, { role: 'dying-writer', kind, buffer, before });
  await messageOfType(writer, 'dying');
  expect(await exited(writer)).toBe(0);
}

/** Polls `consumer` until `condition` holds (bounded), collecting what it reads. */
async function pollUntil(
  consumer: { poll(out: Numbered): boolean },
  condition: () => boolean,
  what: string,
): Promise<number[]> {
  const out = Numbered.create();
  const seen: number[] = [];
  await until(() => {
    while (consumer.poll(out)) seen.push(out.n);
    return condition();
  }, what);
  return seen;
}

const TIMEOUT = 40;

describe('a slot whose writer died half way', () => {
  it('single producer: consumers skip it after the poison timeout and count it; a replacement producer goes on', async () => {
    const queue = SeqlockQueue.create(Numbered, { capacity: 16, poisonTimeoutMs: TIMEOUT });
    const events: PoisonedSlot[] = [];
    const polled = queue.consumer({ onPoisoned: (e) => events.push(e) });
    const waiting = queue.consumer({ wait: new BlockingWaitStrategy() });
    await dieMidWrite('queue', queue.buffer, 5);

    expect(await pollUntil(polled, () => polled.poisoned === 1, 'the poisoned slot to be skipped')).toEqual([
      0, 1, 2, 3, 4,
    ]);
    expect(events).toEqual([{ queue: 'Numbered', sequence: 5, what: 'skipped' }]);
    expect(polled).toMatchObject({ received: 5, lost: 1, sequence: 6 });

    // A consumer parked in take() with no timeout: nothing will ever wake it for the dead slot,
    // yet it skips it once the timeout has passed, and then gives up at its own deadline.
    const out = Numbered.create();
    for (let n = 0; n < 5; n++) expect(waiting.take(out)).toBe(true);
    expect(waiting.take(out, 500)).toBe(false);
    expect(waiting).toMatchObject({ received: 5, lost: 1, poisoned: 1 });

    // The dead thread's role is given back; its replacement resumes at the sequence that died.
    queue.releaseProducer();
    const producer = queue.producer();
    for (let n = 5; n < 8; n++) producer.publish({ n });
    expect(await pollUntil(polled, () => polled.sequence === 8, 'the replacement messages')).toEqual([6, 7]);
    expect(waiting.take(out, 5000) && out.n).toBe(6);
    const [stats] = queue.stats().consumers;
    expect(stats).toMatchObject({ received: 7, lost: 1, poisoned: 1, lag: 0 });
    expect(stats!.received + stats!.lost).toBe(queue.stats().published);
  });

  const multiCases = [
    {
      what: 'a producer died after its claim, before writing',
      kill: async (queue: SeqlockQueue<Numbered>) => {
        // What a producer killed right after its claim leaves: the claim counter past a slot nobody writes.
        Atomics.add(new Int32Array(queue.buffer), QueueHeader.CLAIM, 1);
      },
    },
    {
      what: 'a producer died half way through its write',
      kill: (queue: SeqlockQueue<Numbered>) => dieMidWrite('multi', queue.buffer, 0),
    },
  ];
  for (const { what, kill } of multiCases) {
    it(`multi-producer, ${what}: consumers skip the slot, and the producer a lap later takes it over`, async () => {
      const capacity = 8;
      const queue = SeqlockQueue.create(Numbered, {
        capacity,
        multiProducer: true,
        poisonTimeoutMs: TIMEOUT,
      });
      const consumer = queue.consumer();
      const producer = queue.producer();
      for (let n = 0; n < 3; n++) producer.publish({ n });
      expect(await pollUntil(consumer, () => consumer.sequence === 3, 'the first messages')).toEqual([
        0, 1, 2,
      ]);
      await kill(queue);
      // Up to a lap after the dead slot (3): none of these needs slot 3 again.
      for (let n = 4; n < 3 + capacity; n++) producer.publish({ n });
      const seen = await pollUntil(
        consumer,
        () => consumer.sequence === 3 + capacity,
        'the dead slot to be skipped',
      );
      expect(seen).toEqual([4, 5, 6, 7, 8, 9, 10]);
      expect(consumer).toMatchObject({ lost: 1, poisoned: 1 });

      // Sequence 11 maps to slot 3: its producer (on another thread: it waits) takes it over.
      const next = start(numberedProducer, { buffer: queue.buffer, from: 11, count: 5 });
      const poisoned = messageOfType<{ type: 'poisoned' } & PoisonedSlot>(next, 'poisoned');
      expect(await messageOfType<{ type: 'done'; published: number }>(next, 'done')).toMatchObject({
        published: 5,
      });
      expect(await poisoned).toMatchObject({ queue: 'Numbered', sequence: 3, what: 'taken-over' });
      expect(await pollUntil(consumer, () => consumer.sequence === 16, 'the messages after it')).toEqual([
        11, 12, 13, 14, 15,
      ]);
      expect(queue.stats()).toMatchObject({ published: 16, poisoned: 1 });
      expect(consumer.received + consumer.lost).toBe(16);
    });
  }

  it('SeqlockVector: a reader gets a PoisonedSlotError instead of spinning, and the next writer takes the key over', async () => {
    const vector = SeqlockVector.create(Numbered, { length: 2, poisonTimeoutMs: TIMEOUT });
    const reader = vector.reader();
    await dieMidWrite('vector', vector.buffer, 0);
    const out = Numbered.create();
    let error: unknown;
    try {
      reader.read(0, out);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PoisonedSlotError);
    expect(error).toMatchObject({ layout: 'Numbered', index: 0, code: 'DORSAL_POISONED_SLOT' });
    // The other key is untouched.
    expect(reader.read(1, out)).toBe(false);

    vector.write(0, { n: 42 });
    expect(vector.poisoned).toBe(1);
    expect(reader.read(0, out)).toBe(true);
    expect(out.n).toBe(42);
  });
});
