import { describe, expect, it } from 'vitest';
import { ActorModuleError, LIVE_STATS_ACTOR, System } from '../../src/index.js';
import { spine } from '../fixtures/actors/spine.js';

describe('the live-stats observer', () => {
  it('refuses a periodMs that is not a finite number of ms of at least 1, naming periodMs', async () => {
    for (const periodMs of [0, 1e-6, -5, 'soon', Number.NaN, Number.POSITIVE_INFINITY]) {
      const system = new System(spine);
      system.spawn(LIVE_STATS_ACTOR, { args: { periodMs } });
      const failure = await system.start().catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ActorModuleError);
      expect(String(failure)).toMatch(
        /live-stats: periodMs must be a finite number of ms of at least 1, got/,
      );
      await system.stop();
      expect(system.liveThreads).toEqual([]);
    }
  });
});
