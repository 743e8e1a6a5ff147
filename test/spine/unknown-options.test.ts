import { describe, expect, it } from 'vitest';
import { ActorModuleError, ConfigError, defineSpine, System } from '../../src/index.js';
import { checkOptionNames } from '../../src/options.js';
import { spine, Tick } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

/** The ConfigError thrown by `fn`, or a failure if it throws something else or nothing. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('an unknown option is a ConfigError naming it', () => {
  it('new System refuses an unknown option, and an unknown one inside spine: {...}', () => {
    const misspelt = configError(() => new System(spine, { drainTimeout: 100 } as never));
    expect(misspelt.code).toBe('DORSAL_CONFIG');
    expect(misspelt.message).toMatch(
      /unknown System option 'drainTimeout' \(did you mean 'drainTimeoutMs'\?\); known: spine, drainTimeoutMs, exitTimeoutMs, startTimeoutMs, persist/,
    );
    expect(configError(() => new System(spine, { persits: { data: 'x' } } as never)).message).toMatch(
      /'persits' \(did you mean 'persist'\?\)/,
    );
    expect(configError(() => new System(spine, { spine: { core: 2 } } as never)).message).toMatch(
      /unknown System option 'spine\.core' \(did you mean 'spine\.cores'\?\); known: spine\.timingCapacity, spine\.maxConsumers, spine\.poisonTimeoutMs, spine\.cores/,
    );
    // Nothing near enough: no guess, still the name and the list.
    expect(configError(() => new System(spine, { verbose: true } as never)).message).toBe(
      "unknown System option 'verbose'; known: spine, drainTimeoutMs, exitTimeoutMs, startTimeoutMs, persist, instrumentation",
    );
    expect(configError(() => new System(spine, { spine: 4 } as never)).message).toBe(
      "System option 'spine' must be an object, got 4",
    );
    expect(configError(() => new System(spine, null as never)).message).toBe(
      'System options must be an object, got null',
    );
  });

  it('new System takes every option it declares; persist is checked by the persister (test/telemetry/persist.test.ts)', () => {
    const system = new System(spine, {
      spine: { timingCapacity: 1 << 10, maxConsumers: 8, poisonTimeoutMs: 500, cores: 2 },
      drainTimeoutMs: 1000,
      exitTimeoutMs: 1000,
      persist: { data: './never-used' },
      instrumentation: { logCapacity: 1024, metricCapacity: 1024, spanCapacity: 1024 },
    });
    expect(system.spine.names).toEqual(spine.names);
    // An explicit undefined is a known option left unset, not an unknown one.
    expect(() => new System(spine, { spine: undefined, persist: undefined })).not.toThrow();
  });

  it('spawn refuses an unknown option, registering nothing', () => {
    const system = new System(spine);
    expect(
      configError(() => system.spawn(fixture('feed'), { thraed: 'io', args: { count: 1 } } as never)).message,
    ).toBe("unknown spawn option 'thraed' (did you mean 'thread'?); known: thread, args, restarts, wait");
    expect(configError(() => system.spawn(fixture('feed'), { Wait: 'blocking' } as never)).message).toMatch(
      /'Wait' \(did you mean 'wait'\?\)/,
    );
    expect(configError(() => system.spawn(fixture('feed'), [] as never)).message).toBe(
      'spawn options must be an object, got an array',
    );
    // Every declared option is taken; the refused calls registered nothing.
    expect(system.spawn(fixture('feed'), { thread: 't', args: {}, restarts: 0, wait: 'blocking' }).id).toBe(
      0,
    );
  });

  it('run refuses an unknown option before starting anything', async () => {
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: 1 } });
    await expect(system.run({ seconds: 0.1, drainTimeoutMs: 10 } as never)).rejects.toThrow(
      /unknown run option 'drainTimeoutMs'; known: seconds/,
    );
    // A misspelt seconds is named as such, not taken for seconds missing.
    await expect(system.run({ secnds: 1 } as never)).rejects.toThrow(
      /unknown run option 'secnds' \(did you mean 'seconds'\?\)/,
    );
    expect(system.liveThreads).toEqual([]);
  });

  it('defineSpine refuses a misspelt stream option; System refuses what defineSpine did not make', () => {
    // A generic's inferred literal is not checked for excess properties: the run time says it.
    const typo = () => defineSpine({ s: { message: Tick, capacity: 16, multiproducer: true } });
    expect(configError(typo).message).toBe(
      "unknown stream option 's.multiproducer' (did you mean 's.multiProducer'?); known: s.message, s.capacity, s.multiProducer, s.poisonTimeoutMs",
    );
    expect(
      configError(() => defineSpine({ s: { message: Tick, capacity: 16, multiProducer: 'yes' as never } }))
        .message,
    ).toBe("stream 's': 'multiProducer' must be true or false, got yes");
    expect(configError(() => new System({ s: { message: Tick, capacity: 16 } } as never)).message).toBe(
      'a spine is made with defineSpine({ streamName: { message, capacity } })',
    );
  });
});

describe('a value an option cannot take is a ConfigError naming it', () => {
  it('new System refuses stop timeouts no timer can wait, and a timing capacity no queue can have', () => {
    for (const [name, value] of [
      ['drainTimeoutMs', Number.NaN],
      ['drainTimeoutMs', -1],
      ['exitTimeoutMs', '3000'],
      ['exitTimeoutMs', 2 ** 31],
    ] as const) {
      expect(configError(() => new System(spine, { [name]: value } as never)).message).toMatch(
        new RegExp(`^System option '${name}' must be a number of ms from 0 to 2147483647, got`),
      );
    }
    expect(configError(() => new System(spine, { spine: { timingCapacity: 3 } })).message).toMatch(
      /^spine option 'timingCapacity': capacity must be a power of two/,
    );
  });

  it('spawn refuses args a worker cannot be sent, and restarts on a shared thread, registering nothing', () => {
    const system = new System(spine);
    expect(configError(() => system.spawn(fixture('feed'), { args: { f: () => 1 } })).message).toMatch(
      /^spawn option 'args' must be a value a worker can be sent \(structured-cloneable/,
    );
    system.spawn(fixture('feed'), { thread: 'shared' });
    const shared = /^thread 'shared' would be shared by an actor with restarts/;
    expect(
      configError(() => system.spawn(fixture('relay'), { thread: 'shared', restarts: 1 })).message,
    ).toMatch(shared);
    system.spawn(fixture('strategy'), { thread: 'alone', restarts: 1 });
    expect(configError(() => system.spawn(fixture('relay'), { thread: 'alone' })).message).toMatch(
      /^thread 'alone' would be shared/,
    );
    // The refused calls registered nothing: the next actor is the third.
    expect(system.spawn(fixture('relay'), { args: { name: 'r', from: 'ticks' } }).id).toBe(2);
  });

  it('a default thread name never joins a thread the user named alike', async () => {
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: 1 }, thread: 'actor-1' });
    system.spawn(fixture('strategy'));
    await system.start();
    expect(system.liveThreads.sort()).toEqual(['actor-1', 'actor-1-2']);
    await system.stop();
  });

  it('an actor spawned after the start with a name another actor has does not run', async () => {
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: 1 } });
    system.spawn(fixture('strategy'));
    await system.start();
    const late = system.spawn(fixture('strategy'));
    const refused = await late.ready.catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ActorModuleError);
    expect((refused as Error).message).toMatch(/two actors are named 'strategy' \(ids 1 and 2\)/);
    const report = await system.stop();
    expect(report.actors.map((a) => a.name).sort()).toEqual(['feed', 'strategy']);
    expect(report.drained).toBe(true);
  });

  it('a name every object inherits (toString, constructor) is still unknown', () => {
    const known = { seconds: true } as const;
    for (const name of ['toString', 'constructor', 'hasOwnProperty']) {
      expect(configError(() => checkOptionNames({ [name]: 1 }, known, 'run option')).message).toMatch(
        new RegExp(`unknown run option '${name}'`),
      );
    }
    expect(() => checkOptionNames({ seconds: 1 }, known, 'run option')).not.toThrow();
  });
});
