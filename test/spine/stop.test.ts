import { describe, expect, it } from 'vitest';
import { defineSpine, SpineAdapter, System, type SystemOptions, SystemStateError } from '../../src/index.js';
import { actorConsumerOwner } from '../../src/spine/actor-figures.js';
import { Fill, Order, spine, type TestSpine, Tick } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { tempDir } from '../telemetry/fixtures.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

describe('a graceful stop', () => {
  it('waits for a handler in flight on a thread shared with an actor driven by time, and for what it produces', async () => {
    const trigger = new SharedArrayBuffer(4);
    const entered = new SharedArrayBuffer(4);
    const system = new System(spine);
    // One thread: an ingress actor that wakes every millisecond, and a handler that works 300 ms.
    system.spawn(fixture('trigger-feed'), { args: { trigger }, thread: 'shared' });
    system.spawn(fixture('relay'), {
      args: { name: 'slow', from: 'ticks', workMs: 300, entered },
      thread: 'shared',
    });
    // The consumer of the slow handler's output, on a thread of its own.
    system.spawn(fixture('relay'), { args: { name: 'sink', from: 'orders' } });
    await system.start();
    // Let the shared thread go idle between its timed-out parks, then feed it one tick.
    await new Promise((r) => setTimeout(r, 50));
    Atomics.store(new Int32Array(trigger), 0, 1);
    await until(() => Atomics.load(new Int32Array(entered), 0) === 1, 'the slow handler to start');
    const report = await system.stop();
    const of = (actor: string, stream: string) =>
      report.actors.find((a) => a.name === actor)!.streams.find((s) => s.stream === stream)!;
    const published = (stream: string) => report.streams.find((s) => s.stream === stream)!.published;
    expect(published('ticks')).toBe(1);
    expect(of('slow', 'ticks')).toMatchObject({ handled: 1, lost: 0 });
    // The order the slow handler produced after the stop began was handled before the threads left.
    expect(published('orders')).toBe(1);
    expect(of('sink', 'orders')).toMatchObject({ handled: 1, lost: 0 });
    expect(published('fills')).toBe(1);
    expect(report.drained).toBe(true);
  });

  it('restarts an actor that crashes while it drains, as often as its restarts allow: every message handled or failed, drained', async () => {
    const system = new System(spine, { drainTimeoutMs: 20_000 });
    system.spawn(fixture('feed'), { args: { count: 10 } });
    // Throws on ticks 0, 2, 4, 6 and 8: five crashes, each restarted after the tick it threw on.
    system.spawn(fixture('odd-only'), { restarts: 20 });
    await system.start();
    // The stop begins with four crashes to come: they happen while it drains.
    await until(() => system.crashReports.length >= 1, 'a first crash');
    const report = await system.stop();
    expect(report.failure).toBeUndefined();
    expect(report.crashes).toHaveLength(5);
    expect(report.actors.find((a) => a.name === 'odd-only')!.streams[0]).toMatchObject({
      handled: 5,
      failed: 5,
      unread: 0,
    });
    expect(report.drained).toBe(true);
  });

  it('drains beside an actor driven by time whose rounds work long and produce nothing', async () => {
    const system = new System(spine);
    // At rest (it produces nothing), though it is in a round most of the time.
    system.spawn(fixture('grinder'), { args: { workMs: 20 } });
    system.spawn(fixture('feed'), { args: { count: 50 } });
    system.spawn(fixture('strategy'));
    await system.start();
    await until(() => system.spine.queue(1).stats().published === 100, 'the orders of 50 ticks');
    const report = await system.stop();
    expect(report.drained).toBe(true);
    expect(report.actors.find((a) => a.name === 'strategy')!.streams[0]).toMatchObject({
      handled: 50,
      lost: 0,
    });
  });

  it('ingress after the stop began is refused, and every attempt counted', async () => {
    const system = new System(spine);
    system.spawn(fixture('exit-ingress'), { args: { count: 2, atExit: 3 } });
    system.spawn(fixture('relay'), { args: { name: 'strategy', from: 'ticks' } });
    await system.start();
    await until(() => system.spine.queue(0).stats().published === 2, 'the two ticks');
    const report = await system.stop();
    expect(report.refused).toBe(3);
    expect(report.crashes).toEqual([]);
    expect(report.streams.find((s) => s.stream === 'ticks')!.published).toBe(2);
    expect(report.actors.find((a) => a.name === 'strategy')!.streams[0]).toMatchObject({
      handled: 2,
      lost: 0,
    });
  });

  for (const delay of [0, 5, 20, 50]) {
    it(`a stop asked ${delay} ms into start() waits for it: both settle, every thread ends, the persister reports`, async () => {
      const { dir, cleanup } = tempDir('dorsal-stop-starting-');
      try {
        const system = new System(spine, { persist: { data: dir } });
        system.spawn(fixture('feed'), { args: { count: 100, perLoop: 10 } });
        system.spawn(fixture('strategy'));
        const started = system.start();
        const startedOutcome = started.then(
          () => 'resolved',
          (error: unknown) => `rejected: ${String(error)}`,
        );
        await new Promise((r) => setTimeout(r, delay));
        const report = await system.stop();
        // stop() waited for start(): it settled first, and into a system that is now stopped.
        expect(await Promise.race([startedOutcome, 'pending'])).toBe('resolved');
        expect(system.liveThreads).toEqual([]);
        expect(report.persist?.processId).toMatch(/^[0-9a-f-]{36}$/);
      } finally {
        cleanup();
      }
    }, 30_000);
  }

  it('a thread that does not end in the exit timeout is terminated and named, not taken for a crash that fails the run', async () => {
    const system = new System(spine, { exitTimeoutMs: 300, drainTimeoutMs: 100 });
    // A round that outlasts the stop: its thread cannot leave its loop in time.
    system.spawn(fixture('grinder'), { args: { workMs: 60_000 }, thread: 'stuck' });
    system.spawn(fixture('idle'), { args: { name: 'quiet' } });
    const report = await system.run({ seconds: 0.2 });
    expect(report.terminated).toEqual(['stuck']);
    expect(report.failure).toBeUndefined();
    expect(report.crashes).toEqual([]);
    expect(system.failure).toBeUndefined();
    expect(system.liveThreads).toEqual([]);
  }, 20_000);

  it('a thread terminated with a message claimed and never committed: the claim counts as published and lost, so the accounts add up', async () => {
    const { dir, cleanup } = tempDir('dorsal-dead-claim-');
    try {
      const system = new System(spine, {
        exitTimeoutMs: 300,
        drainTimeoutMs: 100,
        spine: { poisonTimeoutMs: 100 },
        persist: { data: dir },
      });
      system.spawn(fixture('claim-and-hang'), { thread: 'stuck' });
      const report = await system.run({ seconds: 0.2 });
      expect(report.terminated).toEqual(['stuck']);
      const ticks = report.streams.find((s) => s.stream === 'ticks')!;
      expect(ticks.published).toBe(1);
      const persisted = report.persist!.sources.find((s) => s.name === 'ticks')!;
      expect(persisted).toMatchObject({ persisted: 0, lost: 1 });
    } finally {
      cleanup();
    }
  }, 30_000);

  it('a late spawn whose onInit outlasts the stop: the stop terminates it, names it, and its ready rejects (it does not hang)', async () => {
    const system = new System(spine, { exitTimeoutMs: 300, drainTimeoutMs: 100 });
    system.spawn(fixture('idle'), { args: { name: 'quiet' } });
    await system.start();
    const { ready } = system.spawn(fixture('hang-init'), { thread: 'late' });
    const settled = ready.then(
      () => 'resolved',
      (error: unknown) => `rejected: ${String(error)}`,
    );
    const report = await system.stop();
    expect(report.terminated).toEqual(['late']);
    expect(report.failure).toBeUndefined();
    expect(report.crashes).toEqual([]);
    const hung = new Promise((r) => setTimeout(() => r('hung'), 5000).unref());
    expect(await Promise.race([settled, hung])).toMatch(/^rejected: .*terminated by the stop/);
  }, 20_000);

  it('a restart whose onInit outlasts the stop: terminated and named, the first crash only reported, no failure', async () => {
    const incarnations = new SharedArrayBuffer(4);
    const system = new System(spine, { exitTimeoutMs: 300, drainTimeoutMs: 100 });
    system.spawn(fixture('crash-then-hang'), { args: { incarnations }, restarts: 1, thread: 'again' });
    system.spawn(fixture('feed'), { args: { count: 5 } });
    await system.start();
    await until(() => Atomics.load(new Int32Array(incarnations), 0) === 2, 'the restarted incarnation');
    await until(() => system.spine.queue(0).stats().published === 5, 'every tick');
    const report = await system.stop();
    expect(report.terminated).toEqual(['again']);
    // The restart never read: what the crash left is unread from where the crashed one stopped.
    const ticks = report.actors
      .find((a) => a.name === 'crash-then-hang')!
      .streams.find((s) => s.stream === 'ticks')!;
    expect(ticks).toMatchObject({ failed: 1, handled: 0, unread: 4 });
    expect(report.crashes).toHaveLength(1);
    expect(report.failure).toBeUndefined();
    expect(system.failure).toBeUndefined();
    expect(system.liveThreads).toEqual([]);
  }, 20_000);

  it('a stop that begins while a crashed actor waits to be restarted: no incarnation started after it, no thread left', async () => {
    // The drain times out long before the restart would come.
    const { system, incarnations, report, ticks } = await stopWhileRestarting(
      { exitTimeoutMs: 300, drainTimeoutMs: 100 },
      Number.POSITIVE_INFINITY,
    );
    expect(report.failure).toBeUndefined();
    // What the crash left, no restart read: counted unread, not lost from sight.
    expect(ticks).toMatchObject({ failed: 1, handled: 0, unread: 4 });
    // The stop ended the crashed worker; the restart then launched a new one nobody would end.
    expect(system.liveThreads).toEqual([]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(Atomics.load(new Int32Array(incarnations), 0)).toBe(1);
    expect(system.liveThreads).toEqual([]);
  }, 20_000);

  it('a stop that begins while a crashed actor waits to be restarted, with time to drain: the restart drains what the crash left', async () => {
    // Restarted, it no longer throws.
    const { system, incarnations, report, ticks } = await stopWhileRestarting(
      { exitTimeoutMs: 3000, drainTimeoutMs: 10_000 },
      1,
    );
    expect(report.failure).toBeUndefined();
    expect(report.drained).toBe(true);
    expect(Atomics.load(new Int32Array(incarnations), 0)).toBe(2);
    // The tick it threw at, then the four after it, handled by the incarnation the stop waited for.
    expect(ticks).toMatchObject({ failed: 1, handled: 4, lost: 0, unread: 0 });
    expect(system.liveThreads).toEqual([]);
  }, 20_000);

  it('a stop that does not drain counts what each actor left unread: every tick published is counted once', async () => {
    const system = new System(spine, { drainTimeoutMs: 100 });
    system.spawn(fixture('laggard'), { args: { handlerMs: 5, perLoop: 1 }, thread: 'slow' });
    system.spawn(fixture('feed'), { args: { count: 1000, perLoop: 1000 } });
    await system.start();
    await until(() => system.spine.queue(0).stats().published === 1000, 'every tick');
    const report = await system.stop();
    expect(report.drained).toBe(false);
    const ticks = report.actors.find((a) => a.name === 'laggard')!.streams.find((s) => s.stream === 'ticks')!;
    expect(ticks.unread).toBeGreaterThan(0);
    expect(ticks.handled + ticks.skipped + ticks.lost + ticks.failed + ticks.unread).toBe(1000);
  }, 20_000);

  it('a thread the stop terminates is reported all the same: its figures until its last commit, from shared memory', async () => {
    const system = new System(spine, { exitTimeoutMs: 300, drainTimeoutMs: 100 });
    const entered = new SharedArrayBuffer(4);
    system.spawn(fixture('stuck-at'), { args: { at: 5, entered }, thread: 'stuck' });
    system.spawn(fixture('feed'), { args: { count: 20, perLoop: 20 } });
    await system.start();
    await until(
      () => system.spine.queue(0).stats().published === 20 && Atomics.load(new Int32Array(entered), 0) === 1,
      'every tick, and the handler stuck on tick 5',
    );
    const report = await system.stop();
    expect(report.terminated).toEqual(['stuck']);
    const stuck = report.actors.find((a) => a.name === 'stuck-at')!;
    // Ticks 0–4 handled; the one its handler is stuck on was never committed: unread, as the rest.
    expect(stuck.streams.find((s) => s.stream === 'ticks')).toMatchObject({
      handled: 5,
      skipped: 0,
      lost: 0,
      failed: 0,
      unread: 15,
    });
    expect(stuck.streams.find((s) => s.stream === 'orders')).toMatchObject({ produced: 5, unread: 0 });
  }, 20_000);

  it('a thread the stop terminates, producing a stream with several producers: what it produced is its own count, from shared memory', async () => {
    const shared = defineSpine({
      ticks: { message: Tick, capacity: 1 << 12 },
      orders: { message: Order, capacity: 1 << 13, multiProducer: true },
      fills: { message: Fill, capacity: 1 << 13 },
    });
    const system = new System(shared, { exitTimeoutMs: 300, drainTimeoutMs: 100 });
    const entered = new SharedArrayBuffer(4);
    system.spawn(fixture('stuck-at'), { args: { at: 5, entered }, thread: 'stuck' });
    // A second producer of orders: 4 of the stream's 9 messages are not the stuck actor's.
    system.spawn(fixture('order-feed'), { args: { count: 4 } });
    system.spawn(fixture('feed'), { args: { count: 20, perLoop: 20 } });
    await system.start();
    await until(
      () => system.spine.queue(1).stats().published === 9 && Atomics.load(new Int32Array(entered), 0) === 1,
      'the orders of both producers, and the handler stuck on tick 5',
    );
    const report = await system.stop();
    expect(report.terminated).toEqual(['stuck']);
    const produced = (name: string) =>
      report.actors.find((a) => a.name === name)!.streams.find((s) => s.stream === 'orders')!.produced;
    expect(produced('stuck-at')).toBe(5);
    expect(produced('order-feed')).toBe(4);
  }, 20_000);

  it("a thread terminated in a drain: what the drain read is counted once, as of the drain's start", async () => {
    const system = new System(spine, { exitTimeoutMs: 300, drainTimeoutMs: 100 });
    const entered = new SharedArrayBuffer(4);
    const go = new SharedArrayBuffer(4);
    // One drain reads all 20 ticks: it skips 0–18 and gets stuck on 19.
    system.spawn(fixture('stuck-at'), { args: { at: 19, entered, go }, thread: 'stuck' });
    system.spawn(fixture('feed'), { args: { count: 20, perLoop: 20 } });
    await system.start();
    await until(() => system.spine.queue(0).stats().published === 20, 'every tick');
    Atomics.store(new Int32Array(go), 0, 1);
    await until(() => Atomics.load(new Int32Array(entered), 0) === 1, 'the handler stuck on tick 19');
    const report = await system.stop();
    expect(report.terminated).toEqual(['stuck']);
    const ticks = report.actors
      .find((a) => a.name === 'stuck-at')!
      .streams.find((s) => s.stream === 'ticks')!;
    // Nothing committed: every tick unread, none also skipped.
    expect(ticks).toMatchObject({ handled: 0, skipped: 0, lost: 0, failed: 0, unread: 20 });
  }, 20_000);

  it('a stop asked while an onInit never returns ends the start in the exit timeout: no hang, no thread left, no crash', async () => {
    const system = new System(spine, { exitTimeoutMs: 300, drainTimeoutMs: 100 });
    system.spawn(fixture('hang-init'));
    const started = system.start().then(
      () => 'resolved',
      (error: unknown) => `rejected: ${String(error)}`,
    );
    await new Promise((r) => setTimeout(r, 300));
    const stopped = system.stop();
    const hung = new Promise((r) => setTimeout(() => r('hung'), 5000).unref());
    // The stop stopped it: its report names the thread it terminated; no actor ran.
    expect(await Promise.race([stopped, hung])).toMatchObject({
      actors: [],
      drained: false,
      terminated: ['actor-0'],
      crashes: [],
    });
    expect(await started).toMatch(
      /^rejected: SystemStateError: thread 'actor-0' was terminated by the stop before it started/,
    );
    expect(system.liveThreads).toEqual([]);
  }, 20_000);

  // 100 ms: an exit timeout shorter than the grace a thread that reported gets (it was named).
  it.each([2000, 100])(
    'an actor that leaves a timer open past its onExit does not have its thread named as terminated (exitTimeoutMs %i)',
    async (exitTimeoutMs) => {
      const system = new System(spine, { exitTimeoutMs });
      system.spawn(fixture('feed'), { args: { count: 5 } });
      system.spawn(fixture('timer-left-open'));
      await system.start();
      await until(() => system.spine.queue(0).stats().published === 5, 'the ticks');
      const report = await system.stop();
      expect(report.terminated).toEqual([]);
      expect(report.actors.find((a) => a.name === 'timer-left-open')!.streams[0]).toMatchObject({
        handled: 5,
        unread: 0,
      });
      expect(system.liveThreads).toEqual([]);
    },
  );

  it('a stop after a failed start resolves (a finally does not hide why the start failed)', async () => {
    const system = new System(spine);
    system.spawn(fixture('not-an-actor'));
    await expect(system.start()).rejects.toThrow();
    const report = await system.stop();
    expect(report).toMatchObject({ actors: [], drained: false, terminated: [] });
    expect(system.liveThreads).toEqual([]);
  });

  it('spawn while start() is under way is refused with a clear error, and start() settles', async () => {
    const system = new System(spine);
    system.spawn(fixture('idle'), { args: { name: 'first' } });
    const starting = system.start();
    expect(() => system.spawn(fixture('idle'), { args: { name: 'late' } })).toThrow(SystemStateError);
    expect(() => system.spawn(fixture('idle'), { args: { name: 'late' } })).toThrow(/start\(\) is under way/);
    await starting;
    // Once running, a spawn starts the actor at once.
    await system.spawn(fixture('idle'), { args: { name: 'after' } }).ready;
    const report = await system.stop();
    expect(report.actors.map((a) => a.name).sort()).toEqual(['after', 'first']);
    expect(system.liveThreads).toEqual([]);
  });
});

describe('wake-ups', () => {
  it('parked actors are woken by every message, with the idle timeout out of reach', async () => {
    // The actors park for up to ten minutes: only a producer's wake-up brings a message to them.
    const system = new System(spine);
    for (const [name, from] of [
      ['strategy', 'ticks'],
      ['gateway', 'orders'],
    ] as const) {
      system.spawn(fixture('relay'), { args: { name, from, idleTimeoutMs: 600_000 }, wait: 'blocking' });
    }
    const main = new SpineAdapter<TestSpine>(system.spine, 255, 'test');
    const fills: number[] = [];
    const onFill = (fill: { order: number }) => {
      fills.push(fill.order);
    };
    main.consume('fills', onFill);
    await system.start();
    for (let n = 0; n < 30; n++) {
      // Both actors are parked before each tick.
      await until(() => system.spine.control.sleeping === 2, 'both actors to park', 10_000);
      expect(main.produce('ticks', { n, price: 1 })).toBe(true);
      await until(
        () => main.consume('fills', onFill) > 0 || fills.length > n,
        `the fill of tick ${n}`,
        10_000,
      );
    }
    expect(fills).toEqual(Array.from({ length: 30 }, (_, n) => n));
    main.close();
    await system.stop();
  });
});

describe('a writer that died, seen from actors', () => {
  it('a parked actor skips a slot claimed by a producer that never wrote it, and the report counts it', async () => {
    // Ticks from several producers, with a short poison timeout.
    const mp = defineSpine({
      ticks: { message: Tick, capacity: 8, multiProducer: true, poisonTimeoutMs: 40 },
      orders: { message: Order, capacity: 1 << 8 },
      fills: { message: Fill, capacity: 1 << 8 },
    });
    const system = new System(mp);
    for (const [name, from] of [
      ['strategy', 'ticks'],
      ['gateway', 'orders'],
    ] as const) {
      system.spawn(fixture('relay'), { args: { name, from, idleTimeoutMs: 600_000 }, wait: 'blocking' });
    }
    const main = new SpineAdapter<typeof mp>(system.spine, 255, 'test');
    const fills: number[] = [];
    const onFill = (fill: { order: number }) => {
      fills.push(fill.order);
    };
    main.consume('fills', onFill);
    await system.start();
    main.produce('ticks', { n: 0, price: 1 });
    await until(() => main.consume('fills', onFill) > 0 || fills.length === 1, 'the first fill');
    // A producer of ticks that died right after its claim: sequence 1 is never written.
    Atomics.add(new Int32Array(system.spine.queue(0).buffer), 32, 1);
    await until(() => system.spine.control.sleeping === 2, 'both actors to park', 10_000);
    for (let n = 2; n < 6; n++) main.produce('ticks', { n, price: 1 });
    await until(() => main.consume('fills', onFill) > 0 && fills.length === 5, 'the fills after the hole');
    expect(fills).toEqual([0, 2, 3, 4, 5]);
    main.close();
    const report = await system.stop();
    expect(report.actors.find((a) => a.name === 'strategy')!.streams[0]).toMatchObject({
      handled: 5,
      lost: 1,
      poisoned: 1,
    });
    expect(report.drained).toBe(true);
  });
});

describe('what a stop counts past where a reader stopped', () => {
  it('a consumer lapped since its last poll: what the ring wrote over is lost, what it holds unread', async () => {
    const system = new System(spine, { exitTimeoutMs: 300, drainTimeoutMs: 100 });
    const entered = new SharedArrayBuffer(4);
    system.spawn(fixture('stuck-at'), { args: { at: 5, entered }, thread: 'stuck' });
    await system.start();
    const feed = new SpineAdapter<TestSpine>(system.spine, 255, 'test');
    for (let n = 0; n < 6; n++) feed.produce('ticks', { n, price: 1 });
    await until(() => Atomics.load(new Int32Array(entered), 0) === 1, 'the handler stuck on tick 5');
    // Twice around the ring and more while its handler is stuck: it never polls again.
    const capacity = system.spine.queue(0).capacity;
    const published = 2 * capacity + 100;
    for (let n = 6; n < published; n++) feed.produce('ticks', { n, price: 1 });
    const report = await system.stop();
    feed.close();
    expect(report.terminated).toEqual(['stuck']);
    const ticks = report.actors
      .find((a) => a.name === 'stuck-at')!
      .streams.find((s) => s.stream === 'ticks')!;
    // Ticks 0–4 handled; past them, the ring holds its capacity's worth: the rest was written over.
    expect(ticks).toMatchObject({ handled: 5, unread: capacity, lost: published - 5 - capacity });
    expect(ticks.handled + ticks.skipped + ticks.lost + ticks.failed + ticks.unread).toBe(published);
  }, 20_000);

  it('an observer that stopped reading: the timing records it left are counted unread, or lost where they were written over', async () => {
    const system = new System(spine, { drainTimeoutMs: 200, spine: { timingCapacity: 16 } });
    const stopped = new SharedArrayBuffer(4);
    system.spawn(fixture('timing-observer'), { args: { readUntil: 10, stopped } });
    system.spawn(fixture('strategy'));
    // Paced, until the stop refuses its ticks: the observer reads the first records as they come.
    system.spawn(fixture('feed'), { args: { count: 0, perLoop: 1 } });
    await system.start();
    const strategy = () => system.spine.timingQueue(1)!;
    // Once it stopped reading, and more than the ring holds came after where it stopped: the ring
    // holds 16 it did not read, whatever the threads' pace (waiting for a count of records alone,
    // it could still be reading when the stop came, and read the last 16).
    await until(() => Atomics.load(new Int32Array(stopped), 0) === 1, 'the observer stopped reading');
    const observer = strategy()
      .stats()
      .consumers.find((c) => c.owner === actorConsumerOwner(0))!;
    await until(
      () => strategy().stats().published >= Math.max(300, observer.position + 32),
      'records past where the observer stopped',
    );
    const report = await system.stop();
    const published = strategy().settledPublished();
    // The observer ran on and exited when told: its report says where its reader stopped.
    expect(report.drained).toBe(false);
    expect(report.terminated).toEqual([]);
    const read = report.actors
      .find((a) => a.name === 'timing-observer')!
      .timings.find((t) => t.actor === 'strategy')!;
    expect(read.handled).toBeGreaterThanOrEqual(10);
    expect(read.handled).toBeLessThan(published - 16);
    expect(read.unread).toBe(16);
    expect(read.handled + read.lost + read.unread).toBe(published);
  }, 20_000);

  it('an observer terminated in a handler: its reads come from its entries, the record it was in unread', async () => {
    const system = new System(spine, { exitTimeoutMs: 300, drainTimeoutMs: 100 });
    const entered = new SharedArrayBuffer(4);
    system.spawn(fixture('timing-observer'), { args: { stuckAt: 3, entered }, thread: 'observer' });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('feed'), { args: { count: 20, perLoop: 1 } });
    await system.start();
    await until(
      () =>
        system.spine.timingQueue(1)!.stats().published === 20 &&
        Atomics.load(new Int32Array(entered), 0) === 1,
      "the strategy's 20 records, and the observer stuck on its fourth",
    );
    const report = await system.stop();
    expect(report.terminated).toEqual(['observer']);
    const read = report.actors
      .find((a) => a.name === 'timing-observer')!
      .timings.find((t) => t.actor === 'strategy');
    // Records 0–2 committed; record 3 was polled, and its handler never ended: unread, as the rest.
    expect(read).toEqual({ actor: 'strategy', actorId: 1, handled: 3, lost: 0, unread: 17 });
  }, 20_000);

  it('an observer terminated in a handler right after its poll found it lapped: what it skipped counted once', async () => {
    const system = new System(spine, {
      exitTimeoutMs: 300,
      drainTimeoutMs: 100,
      spine: { timingCapacity: 16 },
    });
    const entered = new SharedArrayBuffer(4);
    const resume = new SharedArrayBuffer(4);
    system.spawn(fixture('timing-observer'), {
      args: { readUntil: 5, stuckOnResume: true, entered, resume },
      thread: 'observer',
    });
    system.spawn(fixture('strategy'));
    // Paced, until the stop refuses its ticks.
    system.spawn(fixture('feed'), { args: { count: 0, perLoop: 1 } });
    await system.start();
    const strategy = () => system.spine.timingQueue(1)!;
    const observer = () => strategy().stats().consumers[0]!;
    // It reads 5 or a few more, then stops until told; the strategy laps it.
    await until(
      () => (strategy().stats().consumers[0]?.position ?? 0) >= 5,
      'the observer to read 5 records',
    );
    await new Promise((r) => setTimeout(r, 50));
    // Where it stopped, and what it counted: it began at the oldest record the ring held then.
    const before = observer();
    await until(
      () => strategy().stats().published > before.position + 100,
      'the strategy to lap the observer',
    );
    Atomics.store(new Int32Array(resume), 0, 1);
    await until(
      () => Atomics.load(new Int32Array(entered), 0) === 1,
      'the observer stuck on the first record after its lap',
    );
    const report = await system.stop();
    const published = strategy().settledPublished();
    expect(report.terminated).toEqual(['observer']);
    const read = report.actors
      .find((a) => a.name === 'timing-observer')!
      .timings.find((t) => t.actor === 'strategy')!;
    // As of its last commit, what it had read and lost; past it, the ring's worth unread (the
    // record it is stuck on among them), and what the strategy wrote over, lost: counted once.
    expect(read).toEqual({
      actor: 'strategy',
      actorId: 1,
      handled: before.received,
      lost: before.lost + published - before.position - 16,
      unread: 16,
    });
    expect(read.handled + read.lost + read.unread).toBe(published - before.began);
  }, 20_000);
});

describe('a restarted actor', () => {
  it('an observer restarted after a crash resumes every timing queue where it stopped: no record twice, none lost', async () => {
    const channel = `timing-observer-${Math.random()}`;
    const bc = new BroadcastChannel(channel);
    const lastIncarnation = new Promise<number>((resolve) => {
      bc.onmessage = (event) => resolve((event as unknown as { data: { records: number } }).data.records);
    });
    const system = new System(spine);
    // A feed that runs until the stop (paced), so that records keep coming after the restart.
    system.spawn(fixture('feed'), { args: { count: 0, perLoop: 1 } });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('timing-observer'), {
      args: { crashAt: 50, crashed: new SharedArrayBuffer(4), channel },
      restarts: 1,
    });
    await system.start();
    await until(() => system.crashReports.length === 1, 'the observer to crash once');
    const strategyRecords = () => system.spine.timingQueue(1)!.stats().published;
    // The restarted observer reads again (its consumer of the strategy's timing queue is back:
    // the crashed one's was given back), then more records come: a stop made before the restart
    // ran would leave it none to read.
    await until(() => system.spine.timingQueue(1)!.stats().consumers.length > 0, 'the restarted observer');
    const atRestart = strategyRecords();
    await until(() => strategyRecords() > atRestart + 200, 'records after the restart');
    const report = await system.stop();
    const published = strategyRecords();
    // Both incarnations together read each of the strategy's records once.
    const observer = report.actors.find((a) => a.name === 'timing-observer')!;
    expect(observer.timings.find((t) => t.actor === 'strategy')).toEqual({
      actor: 'strategy',
      actorId: 1,
      handled: published,
      lost: 0,
      unread: 0,
    });
    // The restarted one read only what the crashed one had not: at least 50 fewer.
    const records = await lastIncarnation;
    bc.close();
    expect(records).toBeGreaterThan(0);
    expect(records).toBeLessThanOrEqual(published - 50);
    expect(report.drained).toBe(true);
  });
});

/**
 * A crashed actor whose worker lingers (a timer of its own: the restart waits a second for it to
 * end, then ends it), in its first `crashes` incarnations, and five ticks; stopped as soon as it
 * crashed and every tick is out. What the stop reported, and of the crashed actor's ticks.
 */
async function stopWhileRestarting(options: SystemOptions, crashes: number) {
  const incarnations = new SharedArrayBuffer(4);
  const system = new System(spine, options);
  system.spawn(fixture('crash-linger'), { args: { incarnations, crashes }, restarts: 1, thread: 'again' });
  system.spawn(fixture('feed'), { args: { count: 5 } });
  await system.start();
  await until(() => system.crashReports.length === 1, 'the crash');
  await until(() => system.spine.queue(0).stats().published === 5, 'every tick');
  const report = await system.stop();
  const ticks = report.actors
    .find((a) => a.name === 'crash-linger')!
    .streams.find((s) => s.stream === 'ticks')!;
  return { system, incarnations, report, ticks };
}
