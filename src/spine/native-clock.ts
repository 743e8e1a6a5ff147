import { loadAddon } from '../native-addon.js';

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

/** Loads the native clock for this thread, or returns why it cannot (see loadAddon). */
function load(): NativeClock | string {
  if (process.env.DORSAL_CLOCK === 'performance.now') return 'DORSAL_CLOCK=performance.now';
  const slot = new Float64Array(1);
  const addon = loadAddon<ClockAddon>('dorsal_clock', (clock) => {
    clock.bind(slot);
    clock.tick();
    return slot[0]! > 0 ? undefined : 'did not tick';
  });
  if (typeof addon === 'string') return addon;
  return { tick: addon.tick, slot, source: addon.source, call: addon.call };
}

const loaded = load();

/** This thread's native clock, or undefined. */
export const nativeClock: NativeClock | undefined = typeof loaded === 'string' ? undefined : loaded;

/** Why there is no native clock (empty when there is one). */
export const nativeClockMissing: string = typeof loaded === 'string' ? loaded : '';
