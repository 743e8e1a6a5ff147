import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The addon of `native/clock.cc`: `tick()` writes the time in ns into the bound array. */
interface ClockAddon {
  tick(): void;
  bind(slot: Float64Array): void;
  /** Where the time comes from: RDTSC scaled to CLOCK_MONOTONIC, or clock_gettime itself. */
  readonly source: string;
  /** How `tick` is called from optimized code: a V8 fast call or a V8 function call. */
  readonly call: string;
}

/** A thread's native clock: call `tick()`, then read `slot[0]` (ns on CLOCK_MONOTONIC's line). */
export interface NativeClock {
  readonly tick: () => void;
  readonly slot: Float64Array;
  readonly source: string;
  readonly call: string;
}

const ADDON = join('build', 'Release', 'dorsal_clock.node');

/**
 * Loads the native clock for this thread, or returns why it cannot: the addon is built on
 * install when a C++ compiler is there, and is optional. Looked for in the package root, which is
 * two folders up from `src/spine` and three from `dist/src/spine`.
 */
function load(): NativeClock | string {
  if (process.env.DORSAL_CLOCK === 'performance.now') return 'DORSAL_CLOCK=performance.now';
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++, dir = dirname(dir)) {
    const path = join(dir, ADDON);
    if (!existsSync(path)) continue;
    try {
      const addon = createRequire(import.meta.url)(path) as ClockAddon;
      const slot = new Float64Array(1);
      addon.bind(slot);
      addon.tick();
      if (!(slot[0]! > 0)) return `${path} did not tick`;
      return { tick: addon.tick, slot, source: addon.source, call: addon.call };
    } catch (error) {
      return `${path} did not load: ${(error as Error).message}`;
    }
  }
  return `${ADDON} was not built (no C++ compiler at install?)`;
}

const loaded = load();

/** This thread's native clock, or undefined. */
export const nativeClock: NativeClock | undefined = typeof loaded === 'string' ? undefined : loaded;

/** Why there is no native clock (empty when there is one). */
export const nativeClockMissing: string = typeof loaded === 'string' ? loaded : '';
