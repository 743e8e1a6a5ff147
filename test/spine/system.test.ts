import { describe, expect, it } from 'vitest';
import {
  ActorCrashedError,
  ActorModuleError,
  ConfigError,
  defineMessage,
  defineSpine,
  Spine,
  SpineDefinition,
  System,
} from '../../src/index.js';
import type { Recorded } from '../fixtures/actors/recorder.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

describe('System lifecycle', () => {
  it('run({ seconds }) runs the actors, then stops gracefully and reports what each did', async () => {
    const system = new System(spine);
    // count 0: the feed publishes until the system stops, paced.
    system.spawn(fixture('feed'), { args: { count: 0, perLoop: 1 } });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('gateway'));
    const report = await system.run({ seconds: 0.5 });
    expect(report.drained).toBe(true);
    expect(report.terminated).toEqual([]);
    expect(report.crashes).toEqual([]);
    const of = (actor: string, stream: string) =>
      report.actors.find((a) => a.name === actor)!.streams.find((s) => s.stream === stream)!;
    const published = (stream: string) => report.streams.find((s) => s.stream === stream)!.published;
    expect(published('ticks')).toBeGreaterThan(0);
    // Drained: every message published was handled, or counted lost if a consumer was lapped.
    const strategy = of('strategy', 'ticks');
    expect(strategy.handled).toBeGreaterThan(0);
    expect(strategy.handled + strategy.lost).toBe(published('ticks'));
    expect(published('orders')).toBe(2 * strategy.handled);
    const gateway = of('gateway', 'orders');
    expect(gateway.handled + gateway.lost).toBe(published('orders'));
    expect(system.liveThreads).toEqual([]);
  });

  it('spawn refuses options of the wrong kind, naming the option', () => {
    const system = new System(spine);
    const bad: Array<[unknown, RegExp]> = [
      [{ restarts: -1 }, /spawn option 'restarts' must be an integer ≥ 0, got -1/],
      [{ restarts: 1.5 }, /'restarts'.*got 1\.5/],
      [{ restarts: '2' }, /'restarts'.*got 2/],
      [{ thread: '' }, /spawn option 'thread' must be a non-empty string/],
      [{ thread: 7 }, /'thread'.*got 7/],
      [{ wait: 'sometimes' }, /sometimes/],
      [null, /spawn options must be an object/],
    ];
    for (const [options, message] of bad) {
      expect(() => system.spawn(fixture('feed'), options as never)).toThrow(ConfigError);
      expect(() => system.spawn(fixture('feed'), options as never)).toThrow(message);
    }
    // Nothing was registered by the refused calls.
    expect(system.spawn(fixture('feed')).id).toBe(0);
  });

  it('run refuses a duration that is not a finite number of seconds, before starting anything', async () => {
    for (const seconds of [Number.NaN, -1, Number.POSITIVE_INFINITY, '1' as unknown as number]) {
      const system = new System(spine);
      system.spawn(fixture('feed'), { args: { count: 1 } });
      await expect(system.run({ seconds })).rejects.toThrow(ConfigError);
      await expect(system.run({ seconds })).rejects.toThrow(/run needs \{ seconds \}/);
      expect(system.liveThreads).toEqual([]);
    }
  });

  it('a crashing actor is reported with its name, stream and stack; the system stops and no thread is left', async () => {
    const system = new System(spine);
    // The crasher reads once the feed has published all ten: it leaves seven unread, whatever
    // the threads' pace (read as they came, the feed could have published three when it crashed).
    const published = new SharedArrayBuffer(4);
    system.spawn(fixture('feed'), { args: { count: 10, done: published } });
    system.spawn(fixture('crasher'), { args: { after: published } });
    system.spawn(fixture('strategy'));
    const failure = await system.run({ seconds: 30 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ActorCrashedError);
    const crash = failure as ActorCrashedError;
    expect(crash.actor).toBe('crasher');
    expect(crash.stream).toBe('ticks');
    expect(crash.message).toMatch(
      /actor 'crasher' crashed while handling stream 'ticks': boom at the third tick/,
    );
    // The actor module's own frame (it runs compiled here; see test/helpers/compiled.ts).
    expect(crash.actorStack).toMatch(/fixtures\/actors\/crasher\.js:\d+/);
    expect(system.liveThreads).toEqual([]);
    // What the crashed actor did not read is its unread, and the stop did not drain: the crashed
    // consumer left the ring, so no lag of its own said so.
    const report = await system.stop();
    expect(report.actors.find((a) => a.name === 'crasher')!.streams[0]).toMatchObject({
      handled: 2,
      failed: 1,
      unread: 7,
    });
    expect(report.drained).toBe(false);
  });

  it('an async handler, or an async loopBody, is a crash naming it, counted failed, not a promise let go', async () => {
    for (const where of ['handler', 'loopBody'] as const) {
      const system = new System(spine);
      system.spawn(fixture('feed'), { args: { count: 5 } });
      system.spawn(fixture('async-handler'), { args: { where } });
      const failure = await system.run({ seconds: 30 }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ActorCrashedError);
      const crash = failure as ActorCrashedError;
      expect(crash.actor).toBe('async-handler');
      expect(crash.message).toMatch(
        where === 'handler'
          ? /while handling stream 'ticks': a handler returned a promise: it must be synchronous/
          : /actor 'async-handler': loopBody returned a promise: it must be synchronous/,
      );
      const report = await system.stop();
      const ticks = report.actors.find((a) => a.name === 'async-handler')!.streams[0]!;
      expect(ticks.failed).toBe(where === 'handler' ? 1 : 0);
      expect(system.liveThreads).toEqual([]);
    }
  });

  it('run() returns once stop() is called while its start is under way', async () => {
    const system = new System(spine);
    system.spawn(fixture('slow-init'));
    const running = system.run({ seconds: 600 });
    const [stopped, ran] = await Promise.all([system.stop(), running]);
    expect(ran).toBe(stopped);
    expect(system.liveThreads).toEqual([]);
  });

  it('an async timing handler is a crash of its observer, not of another actor on its thread', async () => {
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: 5 }, thread: 'shared' });
    system.spawn(fixture('async-observer'), { thread: 'shared' });
    // Its handler calls are timed: records for the observer.
    system.spawn(fixture('strategy'));
    const failure = await system.run({ seconds: 30 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ActorCrashedError);
    expect((failure as ActorCrashedError).actor).toBe('async-observer');
    expect((failure as Error).message).toMatch(/a timing handler returned a promise: it must be synchronous/);
    await system.stop();
  });

  it('run() returns once stop() is called, not at its seconds', async () => {
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: 10 } });
    const running = system.run({ seconds: 600 });
    await until(() => system.spine.queue(0).stats().published === 10, 'the ten ticks');
    const [stopped, ran] = await Promise.all([system.stop(), running]);
    expect(ran).toBe(stopped);
    expect(ran.drained).toBe(true);
  });

  it('a crashed actor with restarts left is started again and the others keep running', async () => {
    const system = new System(spine);
    // Five ticks: the crasher dies at the third; restarted, it sees the two after it.
    system.spawn(fixture('feed'), { args: { count: 5 } });
    system.spawn(fixture('crasher'), { restarts: 1 });
    await system.start();
    // The restarted crasher's consumer (a fresh table entry) reaches the fifth tick.
    await until(
      () =>
        system.crashReports.length === 1 &&
        system.spine
          .queue(0)
          .stats()
          .consumers.some((c) => c.received === 2),
      'the restarted crasher to read the last two ticks',
    );
    const report = await system.stop();
    expect(system.crashReports.map((c) => c.actor)).toEqual(['crasher']);
    // Both incarnations in one report: two ticks handled, the third failed (its handler threw),
    // the last two handled after the restart, which resumed after the failed tick; none lost.
    const crasher = report.actors.find((a) => a.name === 'crasher')!.streams[0]!;
    expect(crasher).toMatchObject({ handled: 4, failed: 1, lost: 0 });
    expect(report.actors.map((a) => a.name).sort()).toEqual(['crasher', 'feed']);
    expect(system.liveThreads).toEqual([]);
    // The crashed thread counted itself out once, its replacement in and out again.
    expect(system.spine.control.coreBudget.threads).toBe(0);
  });

  it('a module without a default Actor export, or a missing module, is refused naming the module', async () => {
    const system = new System(spine);
    system.spawn(fixture('not-an-actor'));
    const failure = await system.start().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ActorModuleError);
    expect((failure as Error).message).toMatch(
      /not-an-actor\.js: its default export is not a class that extends Actor/,
    );
    expect(system.liveThreads).toEqual([]);
    // One that extends another copy's Actor is told apart: its logs would go nowhere.
    const twice = new System(spine);
    twice.spawn(fixture('other-copy-actor'));
    const copied = await twice.start().catch((e: unknown) => e);
    expect(copied).toBeInstanceOf(ActorModuleError);
    expect((copied as Error).message).toMatch(
      /other-copy-actor\.js: its default export extends the Actor of another copy of dorsal/,
    );
    expect(twice.liveThreads).toEqual([]);
    // Actor itself is this copy's: not an actor, and not another copy's.
    const bare = new System(spine);
    bare.spawn(fixture('bare-actor'));
    expect(((await bare.start().catch((e: unknown) => e)) as Error).message).toMatch(
      /bare-actor\.js: its default export is not a class that extends Actor/,
    );
    expect(() => new System(spine).spawn(fixture('no-such-actor'))).toThrow(
      /no-such-actor\.ts: no such file/,
    );
  });

  it('an idleTimeoutMs its thread cannot wait by is refused naming the actor', async () => {
    for (const idleTimeoutMs of [Number.NaN, -1]) {
      const system = new System(spine);
      system.spawn(fixture('idle'), { args: { name: 'sleepless', idleTimeoutMs } });
      const failure = await system.start().catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ActorModuleError);
      expect((failure as Error).message).toMatch(
        new RegExp(`actor 'sleepless': idleTimeoutMs must be a number of ms from 0 .* got ${idleTimeoutMs}`),
      );
      expect(system.liveThreads).toEqual([]);
    }
  });

  it('a start that fails terminates the other threads without taking their exits for crashes', async () => {
    // A module refused beside a good one; two actors of one name.
    const refused = new System(spine);
    refused.spawn(fixture('idle'), { args: { name: 'innocent' } });
    refused.spawn(fixture('not-an-actor'));
    await expect(refused.start()).rejects.toBeInstanceOf(ActorModuleError);
    const twins = new System(spine);
    twins.spawn(fixture('idle'), { args: { name: 'same' } });
    twins.spawn(fixture('idle'), { args: { name: 'same' } });
    await expect(twins.start()).rejects.toThrow(/two actors are named 'same'/);
    for (const system of [refused, twins]) {
      expect(system.failure).toBeUndefined();
      expect(system.crashReports).toEqual([]);
      expect(system.liveThreads).toEqual([]);
    }
  });

  it('an unknown stream in produce crashes the actor with an error naming the stream and the known ones', async () => {
    const system = new System(spine);
    system.spawn(fixture('wrong-stream'));
    const failure = (await system.run({ seconds: 30 }).catch((e: unknown) => e)) as Error;
    expect(failure.message).toMatch(/unknown stream 'quotes' \(this spine has: ticks, orders, fills\)/);
  });

  it('two actors with the same name are refused at start', async () => {
    const system = new System(spine);
    system.spawn(fixture('idle'), { args: { name: 'twin' } });
    system.spawn(fixture('idle'), { args: { name: 'twin' } });
    await expect(system.start()).rejects.toThrow(/two actors are named 'twin'/);
    expect(system.liveThreads).toEqual([]);
  });

  it('idle actors park on the spine signal, several light actors can share a thread', async () => {
    const system = new System(spine);
    for (const name of ['a', 'b', 'c']) system.spawn(fixture('idle'), { args: { name } });
    system.spawn(fixture('idle'), { args: { name: 'd' }, thread: 'shared' });
    system.spawn(fixture('idle'), { args: { name: 'e' }, thread: 'shared' });
    await system.start();
    let sleeping = 0;
    for (let i = 0; i < 400 && sleeping !== 4; i++) {
      await new Promise((r) => setTimeout(r, 5));
      sleeping = system.spine.control.sleeping;
    }
    expect(sleeping).toBe(4); // five actors, four threads, all parked
    // Four threads on the core budget: more than this machine's cores, so no long spins.
    expect(system.spine.control.coreBudget.threads).toBe(4);
    const report = await system.stop();
    expect(system.spine.control.coreBudget.threads).toBe(0);
    expect(report.actors.map((a) => a.name).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(system.liveThreads).toEqual([]);
  });

  it('an observer attached mid-run sees subsequent messages and changes nothing for the consumers', async () => {
    const channel = `observer-${Math.random()}`;
    const bc = new BroadcastChannel(channel);
    const observed = new Promise<Recorded[]>((resolve) => {
      bc.onmessage = (event) =>
        resolve((event as unknown as { data: { messages: Recorded[] } }).data.messages);
    });
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: 0, perLoop: 1 } });
    system.spawn(fixture('strategy'));
    await system.start();
    await until(() => system.spine.queue(0).stats().published > 100, 'the feed to publish');
    const before = system.spine.queue(0).stats().published;
    const observer = system.spawn(fixture('recorder'), { args: { channel, name: 'late' } });
    await observer.ready;
    // Ticks have two consumers: the strategy's entry, then the observer's.
    await until(
      () => (system.spine.queue(0).stats().consumers[1]?.received ?? 0) > 50,
      'the observer to read ticks',
    );
    const report = await system.stop();
    const messages = await observed;
    bc.close();
    const ticks = messages.filter((m) => m.stream === 'ticks');
    expect(ticks.length).toBeGreaterThan(0);
    // Sequences count from 0: the first one published after `before` were published is `before`.
    expect(Math.min(...ticks.map((t) => t.seq))).toBeGreaterThanOrEqual(before);
    const seqs = ticks.map((t) => t.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const produced = report.actors.find((a) => a.name === 'feed')!.streams[0]!.produced;
    const strategy = report.actors.find((a) => a.name === 'strategy')!.streams[0]!;
    expect(strategy.handled + strategy.lost).toBe(produced);
  });
});

describe("an actor's event loop", () => {
  it("runs a busy actor's timers, unref'd timers and promise callbacks", async () => {
    const system = new System(spine);
    system.spawn(fixture('event-loop-user'));
    await system.start();
    // The actor publishes a fill only once all three ran; its ticks show its thread never rested.
    await until(
      () => system.spine.queue(2).stats().published === 1,
      "the actor's timers and promises to run",
    );
    const report = await system.stop();
    expect(report.streams.find((s) => s.stream === 'ticks')!.published).toBeGreaterThan(1);
  });
});

describe('an idle thread whose rounds are slow', () => {
  it('gives its event loop a turn every few rounds, not once per spin of cheap rounds', async () => {
    const system = new System(spine);
    // Each idle round works 2 ms: the spin by rounds ends after one, and the event loop gets its
    // turn after the park that follows (every 1 ms of timed-out parks at most), not after 16.
    system.spawn(fixture('slow-idle'), { args: { workMs: 2, rounds: 60 } });
    await system.start();
    await until(() => system.spine.queue(2).stats().published === 1, 'the slow actor to report');
    const consumer = system.spine.queue(2).consumer({ from: 0 });
    const fill = system.spine.queue(2).layout.create() as { order: number };
    expect(consumer.poll(fill)).toBe(true);
    consumer.close();
    await system.stop();
    // The most rounds it ran between two turns of its 1 ms timer.
    expect(fill.order).toBeGreaterThan(0);
    expect(fill.order).toBeLessThanOrEqual(4);
  });
});

describe('observers and actors spawned mid-run', () => {
  it('an observer running from the start reads the timing queue of an actor spawned later', async () => {
    const channel = `timings-${Math.random()}`;
    const bc = new BroadcastChannel(channel);
    const recorded = new Promise<{ timings: { actor: string }[] }>((resolve) => {
      bc.onmessage = (event) =>
        resolve((event as unknown as { data: { timings: { actor: string }[] } }).data);
    });
    const system = new System(spine);
    system.spawn(fixture('recorder'), { args: { channel } });
    system.spawn(fixture('feed'), { args: { count: 0, perLoop: 1 } });
    await system.start();
    const late = system.spawn(fixture('strategy'));
    await late.ready;
    await until(() => system.spine.queue(1).stats().published > 100, 'the late strategy to produce orders');
    const report = await system.stop();
    const { timings } = await recorded;
    bc.close();
    const handled = report.actors.find((a) => a.name === 'strategy')!.streams[0]!.handled;
    expect(handled).toBeGreaterThan(0);
    // A slow observer may be lapped on a timing queue: what it misses is counted, never silent.
    const observer = report.actors.find((a) => a.name === 'recorder')!;
    const lost = observer.timings.find((t) => t.actor === 'strategy')!.lost;
    // Records read before the observer learnt the newcomer's name carry its id instead.
    const ofStrategy = timings.filter((t) => t.actor === 'strategy' || t.actor === `actor-${late.id}`);
    expect(ofStrategy.length + lost).toBe(handled);
  });
});

describe('bad spine definitions get a clear error naming the culprit', () => {
  const M = defineMessage('M', { x: 'u8' });
  it('duplicate stream names (differing only in case)', () => {
    expect(() =>
      defineSpine({ ticks: { message: M, capacity: 8 }, Ticks: { message: M, capacity: 8 } }),
    ).toThrow(/duplicate stream name: 'Ticks' and 'ticks'/);
  });
  it('a capacity that is not a power of two, a message that is not a layout, a bad name', () => {
    expect(() => defineSpine({ ticks: { message: M, capacity: 100 } })).toThrow(/stream 'ticks': capacity/);
    expect(() => defineSpine({ ticks: { message: {} as typeof M, capacity: 8 } })).toThrow(
      /stream 'ticks': 'message'/,
    );
    expect(() => defineSpine({ 'bad-name': { message: M, capacity: 8 } })).toThrow(ConfigError);
    expect(() => defineSpine({})).toThrow(/at least one stream/);
  });
  it('a poison timeout no timer can wait, refused by defineSpine naming the stream', () => {
    for (const bad of [0, 'x', 1.5, 2 ** 31]) {
      const define = () =>
        defineSpine({
          ticks: { message: M, capacity: 8 },
          orders: { message: M, capacity: 8, poisonTimeoutMs: bad as number },
        });
      expect(define).toThrow(ConfigError);
      expect(define).toThrow(
        `stream 'orders': 'poisonTimeoutMs' must be an integer from 1 to 2147483647 (ms), got ${bad}`,
      );
    }
    expect(defineSpine({ ticks: { message: M, capacity: 8, poisonTimeoutMs: 1 } }).names).toEqual(['ticks']);
    // Spine.create names it too: the spine's option, and a stream of a definition not checked.
    const one = defineSpine({ ticks: { message: M, capacity: 8 } });
    expect(() => Spine.create(one, { poisonTimeoutMs: 0 })).toThrow(
      "spine option 'poisonTimeoutMs' must be an integer from 1 to 2147483647 (ms), got 0",
    );
    const unchecked = new SpineDefinition({ ticks: { message: M, capacity: 8, poisonTimeoutMs: 0 } });
    expect(() => Spine.create(unchecked)).toThrow("stream 'ticks': 'poisonTimeoutMs' must be");
  });
});
