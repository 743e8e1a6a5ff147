import { afterEach, expect, it } from 'vitest';
import { type PersistReport, System } from '../../src/index.js';
import { spine } from '../fixtures/actors/spine.js';
import { tempDir } from '../telemetry/fixtures.js';

const fixture = (name: string) => new URL(`../fixtures/actors/${name}.ts`, import.meta.url);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});
const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p.then((v) => ({ settled: 'resolved', v }), (e) => ({ settled: 'rejected', v: String(e) })), new Promise<{ settled: string }>((r) => setTimeout(() => r({ settled: 'pending' }), ms))]);

for (const delay of [0, 5, 20, 50]) {
  it(`a stop asked ${delay} ms into start() settles, ends every thread, and reports the persister`, async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const system = new System(spine, { persist: { data: dir } });
    system.spawn(fixture('feed'), { args: { count: 100, perLoop: 10 } });
    system.spawn(fixture('strategy'));
    const started = system.start();
    started.catch(() => {});
    await new Promise((r) => setTimeout(r, delay));
    const stopped = await within(system.stop(), 15_000);
    const start = await within(started, 2000);
    await new Promise((r) => setTimeout(r, 500));
    const report = (stopped as { v?: { persist?: PersistReport; streams: { published: number }[] } }).v;
    if (process.env.REVIEW_VERBOSE) console.log(delay, { stop: stopped.settled, start: start.settled, startError: start.settled === 'rejected' ? (start as {v:string}).v : undefined, live: system.liveThreads, persist: report?.persist?.processId, published: system.spine.queue(0).stats().published });
    expect(stopped.settled).toBe('resolved');
    expect(start.settled).toBe('resolved');
    expect(system.liveThreads).toEqual([]);
    expect(report?.persist).toBeDefined();
  }, 30_000);
}
