import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  ActorCrashedError,
  ConfigError,
  System,
  type SystemReport,
  SystemStateError,
} from '../../src/index.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiled, compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { finished } from '../telemetry/cli-helpers.js';
import { tempDir } from '../telemetry/fixtures.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

describe('a start and a stop at their edges', () => {
  /**
   * A system whose held-crasher (restarts: 1) throws on its tenth tick, in its handler or in its
   * loopBody once the drain committed, after the stop has begun to drain, and whose thread says
   * so `holdMs` (300) later: a stand-in for a preemption between the throw and its report.
   */
  async function stopDuringHeldCrash(inLoopBody: boolean): Promise<SystemReport> {
    const go = new SharedArrayBuffer(4);
    const entered = new SharedArrayBuffer(4);
    const done = new SharedArrayBuffer(4);
    const system = new System(spine, { drainTimeoutMs: 20_000 });
    // Thread 0: reads ticks only, so its idle word is set once it has rested and stays so.
    system.spawn(fixture('held-crasher'), {
      args: { go, entered, throwAt: 10, holdMs: 300, inLoopBody },
      restarts: 1,
    });
    await system.start();
    await until(() => system.spine.control.isIdle(0), 'the crasher’s thread at rest');
    system.spawn(fixture('feed'), { args: { count: 10, done } });
    await until(() => Atomics.load(new Int32Array(done), 0) === 1, 'every tick published');
    await until(() => Atomics.load(new Int32Array(entered), 0) === 1, 'the first tick held');
    // The stop drains from here: the crasher handles the other nine, and throws.
    const stopping = system.stop();
    Atomics.store(new Int32Array(go), 0, 1);
    Atomics.notify(new Int32Array(go), 0);
    const report = await stopping;
    expect(system.liveThreads).toEqual([]);
    return report;
  }

  it('a crash in the stop’s drain is restarted even when its thread is slow to report it (the stop took it for quiet, and failed the run)', async () => {
    const report = await stopDuringHeldCrash(false);
    expect(report.failure).toBeUndefined();
    expect(report.crashes.map((c) => c.message)).toEqual([
      expect.stringMatching(/actor 'held-crasher' crashed while handling stream 'ticks': boom at tick 10/),
    ]);
    expect(report.actors.find((a) => a.name === 'held-crasher')!.streams[0]).toMatchObject({
      handled: 9,
      failed: 1,
      unread: 0,
    });
    expect(report.drained).toBe(true);
  }, 60_000);

  it('a loopBody that throws after its drains committed, as the stop ends the drain: listed, and with restarts left no failure', async () => {
    const report = await stopDuringHeldCrash(true);
    expect(report.failure).toBeUndefined();
    expect(report.crashes.map((c) => c.message)).toEqual([expect.stringMatching(/boom after tick 10/)]);
    expect(report.actors.find((a) => a.name === 'held-crasher')!.streams[0]).toMatchObject({
      handled: 10,
      failed: 0,
      unread: 0,
    });
    expect(report.drained).toBe(true);
  }, 60_000);

  it('an actor spawned after the start behind one whose onInit never returns still comes up', async () => {
    const system = new System(spine, { exitTimeoutMs: 300, drainTimeoutMs: 100 });
    system.spawn(fixture('idle'), { args: { name: 'first' } });
    await system.start();
    const hung = system.spawn(fixture('hang-init'), { thread: 'hung' });
    hung.ready.catch(() => {});
    const next = system.spawn(fixture('idle'), { args: { name: 'next' } });
    await next.ready;
    const report = await system.stop();
    expect(report.actors.map((a) => a.name)).toContain('next');
    expect(report.terminated).toEqual(['hung']);
    expect(system.liveThreads).toEqual([]);
  }, 60_000);

  it('a stop after a thread died without giving back its consumer does not wait for that consumer to read', async () => {
    // A drain timeout past the test's: waiting on the dead consumer's lag would never end in time.
    const system = new System(spine, { drainTimeoutMs: 600_000 });
    system.spawn(fixture('exits-in-handler'));
    system.spawn(fixture('feed'), { args: { count: 10 } });
    const failure = await system.run({ seconds: 600 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ActorCrashedError);
    expect(String(failure)).toMatch(/actor 'exits-in-handler' crashed: thread exited with code 3/);
    const report = await system.stop();
    expect(report.drained).toBe(false);
    const ticks = report.actors.find((a) => a.name === 'exits-in-handler')!.streams[0]!;
    const published = report.streams.find((s) => s.stream === 'ticks')!.published;
    expect(ticks.handled + ticks.failed + ticks.lost + ticks.skipped + ticks.unread).toBe(published);
    expect(ticks.unread).toBeGreaterThan(0);
    expect(system.liveThreads).toEqual([]);
  }, 60_000);

  it('run() settles when an onInit never returns: the start fails past startTimeoutMs, naming the thread', async () => {
    const system = new System(spine, { startTimeoutMs: 500 });
    system.spawn(fixture('feed'), { args: { count: 5 } });
    system.spawn(fixture('hang-init'), { thread: 'hung' });
    const failure = await system.run({ seconds: 0.1 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(SystemStateError);
    expect(String(failure)).toMatch(
      /the start did not complete within startTimeoutMs \(500 ms\): thread 'hung' had not started \(an onInit that does not return\?\) and was terminated/,
    );
    expect(system.liveThreads).toEqual([]);
    expect((await system.stop()).actors).toEqual([]);
  }, 60_000);

  it('a start past startTimeoutMs while the persister still opens its lake fails saying so, and leaves nothing running', async () => {
    const { dir, cleanup } = tempDir('dorsal-start-timeout-');
    const lake = Lake.open({ data: dir });
    await lake.ready();
    await lake.close();
    // Another process holds the lake's database: its persister waits on it (5 s, then fails).
    const locker = new Database(join(dir, 'lake.sqlite'));
    try {
      locker.pragma('locking_mode = EXCLUSIVE');
      locker.exec('BEGIN EXCLUSIVE');
      const system = new System(spine, { startTimeoutMs: 1000, persist: { data: dir } });
      system.spawn(fixture('feed'), { args: { count: 5 } });
      const failure = await system.start().catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(SystemStateError);
      expect(String(failure)).toMatch(
        /the start did not complete within startTimeoutMs \(1000 ms\): the persist attachment had not started \(a lake that does not answer\?\) and was given up/,
      );
      expect(system.liveThreads).toEqual([]);
      expect((await system.stop()).actors).toEqual([]);
    } finally {
      locker.exec('COMMIT');
      locker.close();
      cleanup();
    }
  }, 60_000);

  it('a start given up while the persister’s module still loads leaves nothing of the persister running: the process ends', async () => {
    const { dir, cleanup } = tempDir('dorsal-give-up-start-');
    try {
      const child = spawn(process.execPath, [compiled('test/fixtures/systems/give-up-start.ts'), dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      // Ended by itself, well before this kill (started after the abort, the persister's thread
      // held it for good).
      const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const { code, stdout, stderr } = await finished(child);
      clearTimeout(kill);
      expect(code, stderr).toBe(0);
      expect(stdout).toMatch(
        /the start did not complete within startTimeoutMs \(1 ms\): the persist attachment had not started/,
      );
    } finally {
      cleanup();
    }
  }, 30_000);

  it('an actor spawned after the start whose module never finishes loading is ended past startTimeoutMs, and those after it come up', async () => {
    // A drain timeout past the test's: a stop that took the ended thread for one coming up waited it out.
    const system = new System(spine, { startTimeoutMs: 500, drainTimeoutMs: 600_000 });
    system.spawn(fixture('idle'), { args: { name: 'first' } });
    await system.start();
    const hung = system.spawn(fixture('hang-load'), { thread: 'hung' });
    const next = system.spawn(fixture('idle'), { args: { name: 'next' } });
    await next.ready;
    await expect(hung.ready).rejects.toThrow(
      /thread 'hung' was terminated by the start timeout before it started/,
    );
    const report = await system.stop();
    expect(report.drained).toBe(true);
    expect(report.actors.map((a) => a.name)).toContain('next');
    expect(system.liveThreads).toEqual([]);
  }, 60_000);

  it('a restart whose onInit never returns fails the run past startTimeoutMs (it ran on, the actor down)', async () => {
    const incarnations = new SharedArrayBuffer(4);
    const system = new System(spine, { startTimeoutMs: 500 });
    system.spawn(fixture('crash-then-hang'), { args: { incarnations }, restarts: 1, thread: 'again' });
    system.spawn(fixture('feed'), { args: { count: 5 } });
    const failure = await system.run({ seconds: 600 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ActorCrashedError);
    expect(String(failure)).toMatch(
      /actor 'crash-then-hang' crashed: its restart did not start within startTimeoutMs \(500 ms\) and was terminated/,
    );
    const report = await system.stop();
    expect(report.crashes).toHaveLength(2);
    expect(system.liveThreads).toEqual([]);
  }, 60_000);

  it('the name of an actor spawned after the start and ended past startTimeoutMs is free again', async () => {
    const system = new System(spine, { startTimeoutMs: 500 });
    system.spawn(fixture('idle'), { args: { name: 'first' } });
    await system.start();
    const hung = system.spawn(fixture('hang-init'), { thread: 'hung' });
    await expect(hung.ready).rejects.toThrow(/terminated by the start timeout before it started/);
    // Its module loaded and named it: the name stayed taken (a second of the name, refused).
    const again = system.spawn(fixture('idle'), { args: { name: 'hang-init' } });
    await again.ready;
    const report = await system.stop();
    expect(report.actors.map((a) => a.name)).toEqual(['first', 'hang-init']);
    expect(system.liveThreads).toEqual([]);
  }, 60_000);

  it('a start that fails while another thread is still starting says why it failed, not that it timed out', async () => {
    // The crash once the other thread is blocked in native code, past the start's time: the
    // abort's terminate waits for it while the start's timer fires.
    const blocking = new SharedArrayBuffer(4);
    const system = new System(spine, { startTimeoutMs: 3000 });
    system.spawn(fixture('throw-init-later'), { args: { ms: 0, after: blocking } });
    system.spawn(fixture('native-block-init'), { args: { seconds: 5, blocking } });
    const failure = await system.start().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ActorCrashedError);
    expect(String(failure)).toMatch(/actor 'throw-init-later' crashed.*onInit failed late/);
    expect(system.liveThreads).toEqual([]);
  }, 60_000);

  it('refuses a startTimeoutMs that is not a number of ms, naming it', () => {
    for (const startTimeoutMs of [-1, Number.NaN, '5' as unknown as number, 2 ** 31]) {
      expect(() => new System(spine, { startTimeoutMs })).toThrow(ConfigError);
      expect(() => new System(spine, { startTimeoutMs })).toThrow(
        /System option 'startTimeoutMs' must be a number of ms/,
      );
    }
  });

  it('two actors of one name spawned after the start at once: the second is refused, the first runs', async () => {
    const system = new System(spine);
    system.spawn(fixture('idle'), { args: { name: 'first' } });
    await system.start();
    const a = system.spawn(fixture('idle'), { args: { name: 'twin' } });
    const b = system.spawn(fixture('idle'), { args: { name: 'twin' } });
    const settled = await Promise.allSettled([a.ready, b.ready]);
    expect(settled[0].status).toBe('fulfilled');
    expect(settled[1]).toMatchObject({ status: 'rejected' });
    expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/two actors are named 'twin'/);
    const report = await system.stop();
    expect(report.actors.filter((x) => x.name === 'twin')).toHaveLength(1);
    expect(system.liveThreads).toEqual([]);
  });
});
