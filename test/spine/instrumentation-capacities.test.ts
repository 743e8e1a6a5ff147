import { expect, it } from 'vitest';
import {
  ConfigError,
  currentThreadBuffers,
  System,
  ThreadBuffersReader,
  unbindThreadInstrumentation,
} from '../../src/index.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

it('instrumentation capacities size the queues of every thread the system makes buffers for', async () => {
  // This thread has none: the system makes them, as deep as asked.
  unbindThreadInstrumentation();
  const system = new System(spine, { instrumentation: { logCapacity: 64, spanCapacity: 1 << 15 } });
  const depths = new SharedArrayBuffer(12);
  system.spawn(fixture('buffer-depth'), { args: { out: depths } });
  await system.start();
  try {
    const seen = new Int32Array(depths);
    await until(() => Atomics.load(seen, 2) !== 0, 'the actor to say how deep its queues are');
    // Logs and spans as asked, metrics at their default.
    expect([...seen]).toEqual([64, 4096, 1 << 15]);
    const own = ThreadBuffersReader.attach(currentThreadBuffers());
    expect([own.logs.capacity, own.metrics.capacity, own.spans.capacity]).toEqual([64, 4096, 1 << 15]);
  } finally {
    await system.stop();
    unbindThreadInstrumentation();
  }
});

it('a capacity that is no power of two, or an unknown one, is refused naming it', () => {
  expect(() => new System(spine, { instrumentation: { spanCapacity: 1000 } })).toThrow(ConfigError);
  expect(() => new System(spine, { instrumentation: { spanCapacity: 1000 } })).toThrow(
    "System option 'instrumentation.spanCapacity' must be a power of two from 2 to 2^30, got 1000",
  );
  expect(() => new System(spine, { instrumentation: { logCapacity: 2 ** 31 } })).toThrow(/logCapacity/);
  expect(() => new System(spine, { instrumentation: { spanCapcity: 8 } } as never)).toThrow(
    /unknown System option 'instrumentation\.spanCapcity' \(did you mean 'instrumentation\.spanCapacity'\?\)/,
  );
  // A power of two the check lets through whose queue would take 2 GiB or more: refused with a
  // ConfigError saying so, not a RangeError from a typed array ('Invalid typed array length: -1073…').
  unbindThreadInstrumentation();
  try {
    expect(() => new System(spine, { instrumentation: { spanCapacity: 2 ** 26 } })).toThrow(ConfigError);
    expect(() => new System(spine, { instrumentation: { logCapacity: 2 ** 30 } })).toThrow(
      /a queue of 1073741824 slots of \d+ bytes \(dorsal\.LogEvent\) takes \d+ bytes, over the 2147483647 a queue may take/,
    );
  } finally {
    unbindThreadInstrumentation();
  }
});
