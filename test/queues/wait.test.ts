import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AdaptiveWaitStrategy,
  BlockingWaitStrategy,
  BusySpinWaitStrategy,
  ConfigError,
  SeqlockQueue,
  Signal,
  SpinThenYieldWaitStrategy,
} from '../../src/index.js';
import { parkUntil, type WaitStrategy } from '../../src/queues/index.js';
import { fillStress, Stress } from '../fixtures/stress-message.js';
import { compiledUrl } from '../helpers/compiled.js';
import { exited, messageOfType, startWorker } from '../helpers/workers.js';

const sleepy = compiledUrl('../fixtures/sleepy-consumer.ts', import.meta.url);
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

  it('close wakes a consumer parked on a signal its queue shares with another queue', async () => {
    // Queue b's producer wakes queue a's signal, which b's consumer parks on: one word for both.
    const a = SeqlockQueue.create(Stress, { capacity: 8 });
    const b = SeqlockQueue.create(Stress, { capacity: 8 });
    const producer = b.producer({ signal: a.signal });
    const worker = startWorker(sleepy, { buffer: b.buffer, strategy: 'blocking', signalOf: a.buffer });
    workers.push(worker);
    await messageOfType(worker, 'ready');
    await untilSleeping(a, 1);
    const got = messageOfType<{ type: 'got'; got: boolean; seq: number }>(worker, 'got');
    producer.publish(fillStress(Stress.create(), 7));
    expect(await got).toMatchObject({ got: true, seq: 7 });

    await untilSleeping(a, 1);
    const closed = messageOfType<{ type: 'closed'; more: boolean }>(worker, 'closed');
    b.close();
    const outcome = await Promise.race([
      closed,
      new Promise((r) => setTimeout(() => r('still parked'), 10_000)),
    ]);
    expect(outcome).toMatchObject({ more: false });
    expect(await exited(worker)).toBe(0);
  });

  it('a ping-pong where each side parks with no timeout: every message wakes its sleeper, none is missed', async () => {
    // A lost wake-up (a producer that looked for sleepers before its done store) leaves one side
    // asleep for good: the exchange then stops. Nothing else wakes them. Stuck means no round
    // for 10 s (a slow machine only makes the rounds slower).
    const ROUNDS = 20_000;
    const ping = SeqlockQueue.create(Stress, { capacity: 8 });
    const pong = SeqlockQueue.create(Stress, { capacity: 8 });
    const progress = new Int32Array(new SharedArrayBuffer(4));
    const module = compiledUrl('../fixtures/ping-pong.ts', import.meta.url);
    const sides = ['ponger', 'pinger'].map((role) =>
      startWorker(module, {
        role,
        ping: ping.buffer,
        pong: pong.buffer,
        rounds: ROUNDS,
        progress: progress.buffer,
      }),
    );
    workers.push(...sides);
    const [ponger, pinger] = sides as [Worker, Worker];
    await messageOfType(ponger, 'ready');
    const done = Promise.all(sides.map((w) => messageOfType<{ type: 'done'; received: number }>(w, 'done')));
    let finished = false;
    void done.then(() => (finished = true));
    for (let seen = -1; !finished; ) {
      const before = Atomics.load(progress, 0);
      if (before === seen) break;
      seen = before;
      for (let waited = 0; waited < 10_000 && !finished && Atomics.load(progress, 0) === seen; waited += 20) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(finished ? 'finished' : `stuck after ${Atomics.load(progress, 0)} rounds`).toBe('finished');
    expect(await done).toEqual([
      { type: 'done', received: ROUNDS },
      { type: 'done', received: ROUNDS },
    ]);
    expect(await exited(pinger)).toBe(0);
  });

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

describe('how long each strategy spins before it parks (for waiters that spin on their work)', () => {
  const parker = (coreFree?: boolean) => ({
    announce: () => 0,
    park: () => {},
    retire: () => {},
    ...(coreFree === undefined ? {} : { coreFree: () => coreFree }),
  });

  it('busy-spin never parks, blocking never spins, adaptive spins as its own wait does', () => {
    expect(new BusySpinWaitStrategy().spinMs()).toBe(Number.POSITIVE_INFINITY);
    expect(new BlockingWaitStrategy().spinMs()).toBe(0);
    const adaptive = new AdaptiveWaitStrategy({ spinMicros: 10, freeCoreSpinMicros: 200 });
    // No core budget, or no core free: the short spin, a quarter of a short wait at most.
    expect(adaptive.spinMs(parker(), 50)).toBe(0.01);
    expect(adaptive.spinMs(parker(false), 50)).toBe(0.01);
    expect(adaptive.spinMs(parker(false), 0.02)).toBe(0.005);
    // A core free: the long spin, or up to the timeout of a time-driven wait.
    expect(adaptive.spinMs(parker(true), 50)).toBe(0.2);
    expect(adaptive.spinMs(parker(true), 0.05)).toBe(0.05);
    const naps: WaitStrategy = new SpinThenYieldWaitStrategy();
    expect(naps.spinMs).toBeUndefined();
  });

  it('a wait of NaN ms (or below zero) times out at once with every strategy; take refuses it', () => {
    // Each wait below spun or slept for good: a NaN deadline is never reached.
    const signal = new Signal(new Int32Array(new SharedArrayBuffer(8)), 0, 1);
    const never = { ready: () => false };
    const strategies = [
      new BusySpinWaitStrategy(),
      new SpinThenYieldWaitStrategy(),
      new BlockingWaitStrategy(),
      new AdaptiveWaitStrategy(),
    ];
    for (const strategy of strategies) {
      expect(strategy.wait(never, signal, Number.NaN), strategy.name).toBe(false);
      expect(strategy.wait(never, signal, -5), strategy.name).toBe(false);
    }
    expect(new AdaptiveWaitStrategy().spinMs(parker(true), Number.NaN)).toBe(0);
    expect(parkUntil(never, signal, Number.NaN, () => 1000)).toBe(false);
    const queue = SeqlockQueue.create(Stress, { capacity: 8 });
    const consumer = queue.consumer({ wait: new SpinThenYieldWaitStrategy() });
    expect(() => consumer.take(Stress.create(), Number.NaN)).toThrow(ConfigError);
    expect(() => consumer.take(Stress.create(), '5' as never)).toThrow(/the timeout must be a number/);
    expect(consumer.take(Stress.create(), -1)).toBe(false);
  });

  it('options no wait can end are refused: a nap or a spin of Infinity', () => {
    expect(() => new SpinThenYieldWaitStrategy({ napMs: Number.POSITIVE_INFINITY })).toThrow(ConfigError);
    expect(() => new SpinThenYieldWaitStrategy({ spins: Number.POSITIVE_INFINITY })).toThrow(/finite/);
    expect(() => new AdaptiveWaitStrategy({ spinMicros: Number.POSITIVE_INFINITY })).toThrow(/finite/);
    expect(() => new AdaptiveWaitStrategy({ freeCoreSpinMicros: Number.NaN })).toThrow(/finite/);
  });

  it('spin-then-yield ends its spins at the timeout, reading the clock once per many checks', () => {
    // A clock that moves 1 ms a read, and a message that comes after a million checks: a wait of
    // 1 ms gives up long before it, not after spinning all its spins (it found the message).
    let reads = 0;
    const now = () => ++reads;
    let checks = 0;
    const late = { ready: () => ++checks > 1_000_000 };
    const strategy = new SpinThenYieldWaitStrategy({ spins: 1e9, now });
    expect(strategy.wait(late, parker(), 1)).toBe(false);
    expect(checks).toBeLessThan(1000);
    expect(reads).toBe(2);
    // A message found while spinning costs no clock read, nor does a wait without a timeout.
    reads = 0;
    checks = 0;
    expect(strategy.wait({ ready: () => true }, parker(), 1)).toBe(true);
    expect(strategy.wait({ ready: () => ++checks > 100_000 }, parker(), Number.POSITIVE_INFINITY)).toBe(true);
    expect(reads).toBe(0);
  });

  it('parkUntil returns at once when the condition holds, and false at a deadline passed', () => {
    let checks = 0;
    const now = () => 1000;
    expect(parkUntil({ ready: () => true }, parker(), 2000, now)).toBe(true);
    const never = () => {
      checks++;
      return false;
    };
    expect(parkUntil({ ready: never }, parker(), 999, now)).toBe(false);
    expect(checks).toBe(1);
  });
});
