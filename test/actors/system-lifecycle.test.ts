import { describe, expect, it } from 'vitest';
import { ActorCrashedError, System, SystemStateError } from '../../src/index.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

/** A promise's outcome, readable once it settled without awaiting it (a test waits with `until`). */
function watch<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const outcome: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(outcome, { settled: true, value }),
    (error: unknown) => Object.assign(outcome, { settled: true, error }),
  );
  return outcome;
}

describe('a thread that ends between its onInit and the names', () => {
  const deaths = [
    ['timer-throw', /a timer of onInit threw/],
    ['rejection', /a promise of onInit rejected/],
    ['process-exit', /thread exited with code 3/],
  ] as const;
  for (const [how, message] of deaths) {
    it(`a thread dead (${how}) after its onInit returned, while another still starts: start() rejects with its crash, stop() settles, no thread is left`, async () => {
      const go = new SharedArrayBuffer(4);
      const system = new System(spine, { exitTimeoutMs: 500, drainTimeoutMs: 500 });
      system.spawn(fixture('dies-after-init'), { args: { how }, thread: 'dying' });
      system.spawn(fixture('init-on-signal'), { args: { go }, thread: 'starting' });
      const started = watch(system.start());
      // The first thread is dead, and its system knows it, before the second is up and the
      // actors' names go out.
      await until(
        () => system.failure !== undefined && !system.liveThreads.includes('dying'),
        'the first thread to die',
      );
      // Seq-cst: the second thread's onInit polls it (a flag, nothing published with it).
      Atomics.store(new Int32Array(go), 0, 1);
      await until(() => started.settled, 'start() to settle');
      expect(started.error).toBeInstanceOf(ActorCrashedError);
      expect((started.error as ActorCrashedError).actor).toBe('dies-after-init');
      expect(String(started.error)).toMatch(message);
      const report = await system.stop();
      expect(report.actors).toEqual([]);
      expect(report.failure).toBe(started.error);
      expect(system.liveThreads).toEqual([]);
    });
  }

  it('a stop that terminates the threads while they are given the names: start() rejects saying so, the report names them terminated', async () => {
    const blocked = new SharedArrayBuffer(4);
    const go = new SharedArrayBuffer(4);
    const system = new System(spine, { exitTimeoutMs: 1000, drainTimeoutMs: 1000 });
    // Initialized, then its event loop blocked: it cannot answer the names.
    system.spawn(fixture('blocks-after-init'), { args: { blocked }, thread: 'blocked' });
    system.spawn(fixture('init-on-signal'), { args: { go }, thread: 'late' });
    const started = watch(system.start());
    await until(() => Atomics.load(new Int32Array(blocked), 0) === 1, 'the first thread to block');
    // Seq-cst: the second thread's onInit polls it (a flag, nothing published with it).
    Atomics.store(new Int32Array(go), 0, 1);
    // It waits for the start, which waits for the blocked thread's answer, until the exit timeout
    // ends it: every thread is terminated.
    const report = await system.stop();
    expect(started.settled).toBe(true);
    expect(started.error).toBeInstanceOf(SystemStateError);
    expect(String(started.error)).toMatch(/terminated by the stop/);
    expect([...report.terminated].sort()).toEqual(['blocked', 'late']);
    expect(report.drained).toBe(false);
    expect(report.actors).toEqual([]);
    expect(system.liveThreads).toEqual([]);
  }, 30_000);
});

describe('stop() and run()', () => {
  it('a stop asked while a failed start gives its threads back: it waits for that, and names the thread it terminated', async () => {
    // The start fails once its other thread is blocked in native code for 3 s, past the stop's
    // exit timeout (1 s), so that giving the threads back is still under way then (failing at a
    // set time, it could fail before that thread was blocked, and give it back at once).
    const blocking = new SharedArrayBuffer(4);
    const system = new System(spine, { exitTimeoutMs: 1000 });
    system.spawn(fixture('throw-init-later'), { args: { ms: 0, after: blocking }, thread: 'fails' });
    system.spawn(fixture('native-block-init'), { args: { seconds: 3, blocking }, thread: 'blocked' });
    const start = watch(system.start());
    const report = await system.stop();
    expect(start.settled).toBe(true);
    expect(start.error).toBeInstanceOf(ActorCrashedError);
    expect(system.liveThreads).toEqual([]);
    expect(report.terminated).toEqual(['blocked']);
  }, 30_000);

  it('stop() before start() rejects and is not kept: the system then starts, and stops with a report', async () => {
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: 10 } });
    system.spawn(fixture('relay'), { args: { name: 'strategy', from: 'ticks' } });
    await expect(system.stop()).rejects.toThrow(SystemStateError);
    await expect(system.stop()).rejects.toThrow(/never started/);
    await system.start();
    await until(() => system.spine.queue(0).stats().published === 10, 'the ten ticks');
    const report = await system.stop();
    expect(report.drained).toBe(true);
    expect(report.actors.find((a) => a.name === 'strategy')!.streams[0]).toMatchObject({ handled: 10 });
    expect(system.liveThreads).toEqual([]);
  });

  it('run() after a stop() that came before any start runs, and stops', async () => {
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: 10 } });
    await expect(system.stop()).rejects.toThrow(/never started/);
    const report = await system.run({ seconds: 0 });
    expect(report.actors.map((a) => a.name)).toEqual(['feed']);
    expect(system.liveThreads).toEqual([]);
  });

  it('a stop() ends every run() waiting, the first one too when a second was refused', async () => {
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: 0 } });
    const first = watch(system.run({ seconds: 600 }));
    await expect(system.run({ seconds: 600 })).rejects.toThrow(/cannot start/);
    const report = await system.stop();
    await until(() => first.settled, 'the first run() to end');
    expect(first.value).toBe(report);
    expect(system.liveThreads).toEqual([]);
  });

  it('run({ seconds }) longer than one timer can wait (24.8 days) runs on until stopped', async () => {
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: 0 } });
    const run = watch(system.run({ seconds: 30 * 24 * 3600 }));
    // A timer that fired at once would have stopped the feed (its ticks refused) long before.
    await until(
      () => run.settled || system.spine.queue(0).stats().published >= 1000,
      'a thousand ticks, or the run to end',
    );
    expect(run.settled).toBe(false);
    const report = await system.stop();
    await until(() => run.settled, 'the run to end');
    expect(run.value).toBe(report);
  });
});
