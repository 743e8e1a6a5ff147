import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AdaptiveWaitStrategy,
  ConfigError,
  CoreBudget,
  defineMessage,
  defineSpine,
  SeqlockQueue,
  Signal,
  Spine,
  waitStrategyNamed,
} from '../../src/index.js';
import { fillStress, Stress } from '../fixtures/stress-message.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { exited, messageOfType, startWorker } from '../helpers/workers.js';

const budgetConsumer = compiledUrl('../fixtures/budget-consumer.ts', import.meta.url);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

/**
 * A consumer in a worker (member 0) with a long spin of a minute: it parks only if the budget
 * says no. `alsoJoin` counts this thread in too.
 */
async function startConsumer(options: { cores: number; members: number }, alsoJoin?: number) {
  const queue = SeqlockQueue.create(Stress, { capacity: 8 });
  const budget = CoreBudget.create(options);
  if (alsoJoin !== undefined) budget.join(alsoJoin);
  const data = { buffer: queue.buffer, budget: budget.buffer, member: 0, freeCoreSpinMicros: 60e6 };
  const worker = startWorker(budgetConsumer, data);
  workers.push(worker);
  await messageOfType(worker, 'ready');
  return { queue, budget, worker };
}

describe('CoreBudget', () => {
  it('counts each member once, however often it joins or leaves', () => {
    const budget = CoreBudget.create({ cores: 2, members: 4 });
    expect(budget.cores).toBe(2);
    budget.join(0);
    budget.join(0);
    budget.join(3);
    expect(budget.threads).toBe(2);
    expect(budget.coreFree()).toBe(true);
    budget.join(1);
    expect(budget.coreFree()).toBe(false);
    budget.leave(1);
    budget.leave(1);
    budget.leave(2); // never joined
    expect(budget.threads).toBe(2);
    expect(CoreBudget.attach(budget.buffer).threads).toBe(2);
  });

  it('refuses bad cores, member counts and members with errors naming them', () => {
    expect(() => CoreBudget.create({ cores: 0 })).toThrow(ConfigError);
    expect(() => CoreBudget.create({ cores: 1.5 })).toThrow(/option 'cores'/);
    expect(() => CoreBudget.create({ members: 0 })).toThrow(/option 'members'/);
    const budget = CoreBudget.create({ members: 2 });
    expect(() => budget.join(2)).toThrow(/member must be a whole number from 0 to 1, got 2/);
    expect(() => budget.leave(-1)).toThrow(ConfigError);
    expect(() => new AdaptiveWaitStrategy({ freeCoreSpinMicros: -1 })).toThrow(/freeCoreSpinMicros/);
    for (const name of ['busy-spin', 'spin-then-yield', 'blocking', 'adaptive']) {
      expect(() => waitStrategyNamed(name, { now: 5 as unknown as () => number })).toThrow(
        /wait strategy option 'now' must be a function returning milliseconds, got 5/,
      );
    }
    const Ping = defineMessage('Ping', { n: 'u32' });
    const definition = defineSpine({ pings: { message: Ping, capacity: 8 } });
    expect(() => Spine.create(definition, { cores: 0 })).toThrow(
      /option 'cores' must be a positive whole number, got 0/,
    );
    expect(Spine.create(definition, { cores: 3 }).control.coreBudget.cores).toBe(3);
  });

  it('with a core per thread, an adaptive consumer keeps spinning instead of parking', async () => {
    const { queue, budget, worker } = await startConsumer({ cores: 2, members: 2 });
    expect(budget.threads).toBe(1);
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 10));
      expect(queue.stats().sleeping).toBe(0);
    }
    const got = messageOfType<{ type: 'got'; got: boolean; seq: number }>(worker, 'got');
    queue.producer().publish(fillStress(Stress.create(), 7));
    expect(await got).toMatchObject({ got: true, seq: 7 });
    expect(await exited(worker)).toBe(0);
    expect(budget.threads).toBe(0);
  });

  it('with more threads than cores, the same consumer parks and a publish wakes it', async () => {
    // This thread (member 1) and the consumer's: two threads on one core.
    const { queue, budget, worker } = await startConsumer({ cores: 1, members: 2 }, 1);
    await until(() => queue.stats().sleeping === 1, 'the consumer to park');
    const got = messageOfType<{ type: 'got'; got: boolean; seq: number }>(worker, 'got');
    queue.producer().publish(fillStress(Stress.create(), 9));
    expect(await got).toMatchObject({ got: true, seq: 9 });
    expect(await exited(worker)).toBe(0);
    expect(budget.threads).toBe(1);
  });
});

describe('wait strategies read the clock they are given', () => {
  for (const name of ['busy-spin', 'spin-then-yield', 'blocking', 'adaptive']) {
    it(`${name}: a deadline passes when the given clock says so`, () => {
      // A clock that jumps a day ahead after its first read: with performance.now() this wait
      // would take its whole 10 minutes.
      let reads = 0;
      const now = () => (reads++ === 0 ? 0 : 86_400_000);
      const strategy = waitStrategyNamed(name, { now });
      const signal = new Signal(new Int32Array(new SharedArrayBuffer(8)), 0, 1);
      expect(strategy.wait({ ready: () => false }, signal, 600_000)).toBe(false);
      expect(reads).toBeGreaterThan(1);
    });
  }
});
