import { describe, expect, it } from 'vitest';
import type { HeapWindow } from '../fixtures/instrumentation/heap-meter.js';
import { compiledUrl } from '../helpers/compiled.js';
import { exited, messageOfType, startWorker } from '../helpers/workers.js';

describe('the instrumentation hot path makes no garbage', () => {
  it('each kind of call, once optimized, allocates less than a byte per call in a worker', {
    timeout: 240_000,
  }, async () => {
    // Bytes per call: one boxed double per call would be 16; a fresh string, 16 or more.
    const below = 1;
    const worker = startWorker(compiledUrl('../fixtures/instrumentation/heap-meter.ts', import.meta.url), {
      warmup: 50_000,
      perWindow: 20_000,
      windows: 5,
      // Measuring goes on until V8 has optimized the calls (see the fixture), at most this long.
      settledBelow: below,
      settleMs: 20_000,
    });
    const { results } = await messageOfType<{ type: 'windows'; results: Record<string, HeapWindow[]> }>(
      worker,
      'windows',
    );
    await exited(worker);
    expect(Object.keys(results)).toHaveLength(9);
    for (const [kind, windows] of Object.entries(results)) {
      // A collection inside a window hides what was allocated before it: such a window says
      // nothing.
      const clean = windows.filter((w) => w.collections === 0 && w.bytes >= 0);
      expect(clean.length, `${kind}: ${JSON.stringify(windows)}`).toBeGreaterThan(0);
      const best = Math.min(...clean.map((w) => w.bytes / w.calls));
      expect(best, `${kind}: ${JSON.stringify(windows)}`).toBeLessThan(below);
    }
  });
});
