import { existsSync, readFileSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Clock } from '../../src/index.js';
import { compiledUrl } from '../helpers/compiled.js';
import { exited, messageOfType, startWorker } from '../helpers/workers.js';

const reader = compiledUrl('../fixtures/clock-reader.ts', import.meta.url);
const addon = new URL('../../build/Release/dorsal_clock.node', import.meta.url);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

interface Ready {
  type: 'ready';
  source: string;
  uncertaintyNs: number;
}

describe('the spine clock', () => {
  it('reads the native clock when the addon was built, and never goes back', () => {
    const clock = new Clock(Clock.newBase());
    expect(clock.source).toBe(existsSync(addon) ? 'native' : 'performance.now');
    expect(Clock.nativeMissing === '').toBe(clock.source === 'native');
    let last = clock.now();
    expect(last).toBeGreaterThanOrEqual(-clock.uncertaintyNs);
    let backwards = 0;
    for (let i = 0; i < 100_000; i++) {
      const now = clock.now();
      if (now < last) backwards++;
      last = now;
    }
    expect(backwards).toBe(0);
  });

  it('the native clock says where it reads the time, and its readings stay on the monotonic clock', async () => {
    const clock = new Clock(Clock.newBase());
    if (clock.source !== 'native') {
      expect(Clock.nativeSource).toBe('');
      return;
    }
    const kernelClock = '/sys/devices/system/clocksource/clocksource0/current_clocksource';
    const tsc =
      process.platform === 'linux' &&
      process.arch === 'x64' &&
      existsSync(kernelClock) &&
      readFileSync(kernelClock, 'utf8').trim() === 'tsc';
    const fast = process.versions.v8.startsWith('11.3.');
    expect(Clock.nativeSource).toBe(
      `${tsc ? 'rdtsc, calibrated against CLOCK_MONOTONIC' : 'clock_gettime(CLOCK_MONOTONIC)'} · V8 ${fast ? 'fast' : 'function'} call`,
    );
    // base + now() is a CLOCK_MONOTONIC reading (hrtime's clock), to within the TSC calibration:
    // before and after the first refinement of the TSC's rate, one second after the addon loaded.
    const tolerance = 50_000;
    const bracket = (): void => {
      const before = Number(process.hrtime.bigint());
      const reading = clock.baseNs + clock.now();
      const after = Number(process.hrtime.bigint());
      expect(reading).toBeGreaterThanOrEqual(before - tolerance);
      expect(reading).toBeLessThanOrEqual(after + tolerance);
    };
    for (let i = 0; i < 100; i++) bracket();
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the addon loaded before this test began
    for (let i = 0; i < 100; i++) bracket();
  });

  // 'native' where the addon was built; 'performance.now' forced: both must agree with this thread.
  for (const forced of [false, true]) {
    it(`a worker's reading falls between two readings of this thread (${forced ? 'performance.now forced' : 'default source'})`, async () => {
      const base = Clock.newBase();
      const clock = new Clock(base);
      const env = forced ? { DORSAL_CLOCK: 'performance.now' } : undefined;
      const worker = startWorker(reader, { base }, env);
      workers.push(worker);
      const ready = await messageOfType<Ready>(worker, 'ready');
      if (forced) expect(ready.source).toBe('performance.now');
      const slack = clock.uncertaintyNs + ready.uncertaintyNs;
      for (let i = 0; i < 20; i++) {
        const before = clock.now();
        const reading = messageOfType<{ type: 'reading'; now: number }>(worker, 'reading');
        worker.postMessage('read');
        const { now } = await reading;
        const after = clock.now();
        expect(now).toBeGreaterThanOrEqual(before - slack);
        expect(now).toBeLessThanOrEqual(after + slack);
      }
      worker.postMessage('done');
      expect(await exited(worker)).toBe(0);
    });
  }
});
