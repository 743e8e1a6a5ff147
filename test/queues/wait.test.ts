import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { SeqlockQueue } from '../../src/index.js';
import { fillStress, Stress } from '../fixtures/stress-message.js';
import { exited, messageOfType, startWorker } from '../helpers/workers.js';

const sleepy = new URL('../fixtures/sleepy-consumer.ts', import.meta.url);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

/** Waits (bounded) until `count` consumers are parked on the queue's signal. */
async function untilSleeping(queue: SeqlockQueue<Stress>, count: number): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (queue.stats().sleeping === count) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never saw ${count} sleeping consumers (saw ${queue.stats().sleeping})`);
}

describe('parked consumers', () => {
  for (const strategy of ['blocking', 'adaptive']) {
    it(`a ${strategy} consumer parked on an empty queue is woken by a publish, and by close`, async () => {
      const queue = SeqlockQueue.create(Stress, { capacity: 8 });
      const producer = queue.producer();
      const worker = startWorker(sleepy, { buffer: queue.buffer, strategy });
      workers.push(worker);
      await messageOfType(worker, 'ready');
      await untilSleeping(queue, 1);

      const got = messageOfType<{ type: 'got'; got: boolean; seq: number }>(worker, 'got');
      producer.publish(fillStress(Stress.create(), 42));
      expect(await got).toMatchObject({ got: true, seq: 42 });

      await untilSleeping(queue, 1);
      const closed = messageOfType<{ type: 'closed'; more: boolean }>(worker, 'closed');
      queue.close();
      expect(await closed).toMatchObject({ more: false });
      expect(await exited(worker)).toBe(0);
      expect(queue.stats().sleeping).toBe(0);
    });
  }

  it('close wakes every sleeper at once', async () => {
    const queue = SeqlockQueue.create(Stress, { capacity: 8 });
    const sleepers = [0, 1, 2].map(() => startWorker(sleepy, { buffer: queue.buffer, strategy: 'blocking' }));
    workers.push(...sleepers);
    await Promise.all(sleepers.map((w) => messageOfType(w, 'ready')));
    await untilSleeping(queue, 3);
    const woken = sleepers.map((w) => messageOfType<{ type: 'got'; got: boolean }>(w, 'got'));
    queue.close();
    for (const answer of await Promise.all(woken)) expect(answer.got).toBe(false);
    expect(await Promise.all(sleepers.map(exited))).toEqual([0, 0, 0]);
  });
});
