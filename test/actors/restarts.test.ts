import { describe, expect, it } from 'vitest';
import { ActorCrashedError, ActorModuleError, System, type SystemReport } from '../../src/index.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

/**
 * Ten ticks, twenty orders and the sink's twenty timing records are there before the gated reader
 * reads any stream; its first incarnation has read those timing records. Then it reads ticks
 * first in each round and throws on the even ones: five crashes, each in its incarnation's first
 * consume, before it opened the orders or the timing queues. Only the last one reaches them.
 */
async function crashesBeforeTheOtherRings(): Promise<{
  report: SystemReport;
  sinkId: number;
  records: number;
}> {
  const go = new SharedArrayBuffer(4);
  const system = new System(spine, { drainTimeoutMs: 20_000 });
  system.spawn(fixture('feed'), { args: { count: 10, perLoop: 10 } });
  system.spawn(fixture('order-feed'), { args: { count: 20 } });
  const sink = system.spawn(fixture('relay'), { args: { name: 'sink', from: 'orders' } });
  system.spawn(fixture('gated-reader'), { args: { go }, restarts: 10 });
  await system.start();
  const sinkTimings = system.spine.timingQueue(sink.id)!;
  const published = (stream: number) => system.spine.queue(stream).stats().published;
  await until(
    () =>
      published(0) === 10 &&
      published(1) === 20 &&
      sinkTimings.stats().consumers.some((c) => c.position === 20),
    "the ticks, the orders, and the sink's timing records read",
  );
  // Seq-cst: the reader's loopBody polls it (a flag, nothing published with it).
  Atomics.store(new Int32Array(go), 0, 1);
  await until(() => system.crashReports.length === 5, 'the five crashes');
  const report = await system.stop();
  return { report, sinkId: sink.id, records: sinkTimings.stats().published };
}

describe('a restarted actor', () => {
  it('reads a stream its crashed runs never opened from where they began: nothing published meanwhile skipped', async () => {
    const { report } = await crashesBeforeTheOtherRings();
    const reader = report.actors.find((a) => a.name === 'gated-reader')!;
    const of = (stream: string) => reader.streams.find((s) => s.stream === stream)!;
    expect(report.crashes).toHaveLength(5);
    expect(report.failure).toBeUndefined();
    expect(of('ticks')).toMatchObject({ handled: 5, failed: 5, lost: 0, unread: 0 });
    expect(of('orders')).toMatchObject({ handled: 20, lost: 0, unread: 0 });
    expect(report.drained).toBe(true);
  }, 60_000);

  it('reads a timing queue its crashed run never opened from where the run before it stopped: no record counted twice', async () => {
    const { report, sinkId, records } = await crashesBeforeTheOtherRings();
    const reader = report.actors.find((a) => a.name === 'gated-reader')!;
    expect(records).toBe(20);
    expect(reader.timings.find((t) => t.actorId === sinkId)).toMatchObject({
      handled: 20,
      lost: 0,
      unread: 0,
    });
    expect(report.drained).toBe(true);
  }, 60_000);

  it('whose relaunch fails (its module no longer loads): the failure is listed with the crashes', async () => {
    const incarnations = new SharedArrayBuffer(4);
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: 5 } });
    system.spawn(fixture('fails-to-relaunch'), { args: { incarnations }, restarts: 3 });
    const failure = await system.run({ seconds: 30 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ActorCrashedError);
    expect(String(failure)).toMatch(/its configuration is gone/);
    const report = await system.stop();
    expect(report.failure).toBe(failure);
    expect(report.crashes).toHaveLength(2);
    expect(report.crashes).toContain(failure);
    expect(system.crashReports).toContain(failure);
  });

  it('an actor class with no loopBody is refused at its load, not crashed and restarted', async () => {
    const system = new System(spine);
    system.spawn(fixture('no-loop-body'), { restarts: 3 });
    const failure = await system.start().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ActorModuleError);
    expect(String(failure)).toMatch(/actor 'no-loop-body' has no loopBody method/);
    const report = await system.stop();
    expect(report.crashes).toEqual([]);
    expect(system.liveThreads).toEqual([]);
  });
});
