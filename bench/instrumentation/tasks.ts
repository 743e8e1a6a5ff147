/**
 * The cost of one instrumentation call in the calling thread, with tinybench, every task in
 * this one thread (a worker of its own: nothing the other sections compiled shares its code).
 * Each sample is the mean of a batch of calls timed together; the figure is the median sample.
 *
 * Measured, from cheapest to dearest:
 * - floors: a bare SharedArrayBuffer write (4 plain Float64 stores into a ring: no clock, no
 *   seqlock, no strings); one read of the spine clock; a hand-written event write into 64-byte
 *   slots (a clock read, the seqlock's two SC operations as dorsal orders them, 5 fields, no
 *   checks, no strings): the floor of an event;
 * - dorsal: a filtered-out debug; log.info with no properties and with 2 (a number and a
 *   string, from one object changed in place); the same entry through a prepared line
 *   (`Logger.line`: the values passed as they are); a metric; a span (begin + end: two events);
 * - pino 10, the same log line at info (`{ qty, side }`, 'order sent'), to two destinations
 *   that do no I/O in the loop: an object whose write() drops the line (pino's own work: the
 *   line formatted as JSON, with its time), and `pino.destination({ dest: '/dev/null', sync:
 *   false })` (SonicBoom: lines appended to its buffer, written to /dev/null between batches,
 *   when the loop yields); and pino's filtered-out debug (a no-op it swaps in per level).
 * Nobody reads dorsal's buffers meanwhile: they wrap, and the producer never waits.
 */
import pino from 'pino';
import { Bench, type FnReturnedObject } from 'tinybench';
import { logger, metric, span } from '../../src/index.js';
import { Clock } from '../../src/spine/clock.js';

export const TASK = {
  bare: 'bare SharedArrayBuffer write (4 Float64 stores)',
  clock: 'spine clock read',
  hand: 'hand-written event write (clock + seqlock + 6 words)',
  filtered: 'dorsal filtered-out debug',
  pinoFiltered: 'pino filtered-out debug',
  logBare: 'dorsal log.info, no properties',
  log: 'dorsal log.info, 2 properties',
  line: 'dorsal prepared log line (Logger.line), 2 properties',
  metric: 'dorsal metric',
  span: 'dorsal span(fn): begin + end',
  pinoNowhere: 'pino.info, same line, to a write() that drops it',
  pinoDevNull: "pino.info, same line, to pino.destination('/dev/null') async",
} as const;

export type TaskResults = Record<string, { ns: number; note: string }>;

let sink = 0;

export async function measureInstrumentation(quick: boolean): Promise<TaskResults> {
  const BATCH = 1024;
  /** Filtered-out calls are ~1 ns: more per batch, so that the clock's own cost is small beside them. */
  const FILTERED_BATCH = 16 * 1024;
  // Each task's loop is a function literal of its own: a loop calling a body passed in would
  // share one call site between every task, too polymorphic for V8 to inline the call measured.
  const batched = (size: number, loop: () => void) => (): FnReturnedObject => {
    const start = performance.now();
    loop();
    const elapsed = performance.now() - start;
    return { overriddenDuration: elapsed / size, overriddenIterationCost: elapsed };
  };

  const ring = new Float64Array(new SharedArrayBuffer(4096 * 32));
  const slots = new SharedArrayBuffer(4096 * 64);
  const slotWords = new Int32Array(slots);
  const slotDoubles = new Float64Array(slots);
  const clock = new Clock(Clock.newBase());
  let k = 0;

  const app = logger('app');
  const props = { qty: 0, side: 'buy' };
  const orderSent = app.line('info', 'order sent', ['qty', 'side']);
  const work = () => undefined;
  const nowhere = pino(
    { level: 'info' },
    {
      write(line: string) {
        sink += line.length;
      },
    },
  );
  const devNull = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false }));

  const bench = new Bench({ time: quick ? 150 : 700, warmupTime: quick ? 80 : 250, iterations: 32 });
  bench
    .add(
      TASK.bare,
      batched(BATCH, () => {
        for (let i = 0; i < BATCH; i++) {
          const at = (k++ & 4095) << 2;
          ring[at] = i;
          ring[at + 1] = 3;
          ring[at + 2] = 5;
          ring[at + 3] = i;
        }
      }),
    )
    .add(
      TASK.clock,
      batched(BATCH, () => {
        for (let i = 0; i < BATCH; i++) {
          sink += clock.now();
        }
      }),
    )
    .add(
      TASK.hand,
      batched(BATCH, () => {
        for (let i = 0; i < BATCH; i++) {
          // 64-byte slots: the version word, then t and a value (Float64 1 and 2), then three ids.
          const slot = k & 4095;
          const version = (k++ >>> 12) * 2 + 2;
          // The seqlock's orderings as dorsal's producer makes them (src/queues/memory-order.ts).
          // SC exchange to the odd version: no reader's copy can read the stores that follow.
          Atomics.exchange(slotWords, slot << 4, version - 1);
          slotDoubles[(slot << 3) + 1] = clock.now();
          slotDoubles[(slot << 3) + 2] = i;
          slotWords[(slot << 4) + 6] = 3;
          slotWords[(slot << 4) + 7] = 5;
          slotWords[(slot << 4) + 8] = 4;
          // SC store of the done version: the payload stores happen-before a reader's SC load of it.
          Atomics.store(slotWords, slot << 4, version);
        }
      }),
    )
    .add(
      TASK.filtered,
      batched(FILTERED_BATCH, () => {
        for (let i = 0; i < FILTERED_BATCH; i++) {
          app.debug('hidden', props);
        }
      }),
    )
    .add(
      TASK.pinoFiltered,
      batched(FILTERED_BATCH, () => {
        for (let i = 0; i < FILTERED_BATCH; i++) {
          nowhere.debug(props, 'hidden');
        }
      }),
    )
    .add(
      TASK.logBare,
      batched(BATCH, () => {
        for (let i = 0; i < BATCH; i++) {
          app.info('order sent');
        }
      }),
    )
    .add(
      TASK.log,
      batched(BATCH, () => {
        for (let i = 0; i < BATCH; i++) {
          props.qty = i;
          app.info('order sent', props);
        }
      }),
    )
    .add(
      TASK.line,
      batched(BATCH, () => {
        for (let i = 0; i < BATCH; i++) {
          orderSent(i, 'buy');
        }
      }),
    )
    .add(
      TASK.metric,
      batched(BATCH, () => {
        for (let i = 0; i < BATCH; i++) {
          metric('book.depth', i, 'levels');
        }
      }),
    )
    .add(
      TASK.span,
      batched(BATCH, () => {
        for (let i = 0; i < BATCH; i++) {
          span('rebalance', work);
        }
      }),
    )
    .add(
      TASK.pinoNowhere,
      batched(BATCH, () => {
        for (let i = 0; i < BATCH; i++) {
          props.qty = i;
          nowhere.info(props, 'order sent');
        }
      }),
    )
    .add(
      TASK.pinoDevNull,
      batched(BATCH, () => {
        for (let i = 0; i < BATCH; i++) {
          props.qty = i;
          devNull.info(props, 'order sent');
        }
      }),
    );
  await bench.run();
  devNull.flush();
  if (sink === -1) console.log('');

  const results: TaskResults = {};
  for (const task of bench.tasks) {
    const result = task.result;
    if (result.state !== 'completed')
      throw new Error(`instrumentation bench '${task.name}' ended ${result.state}`);
    const { p50, rme, samplesCount } = result.latency;
    const size = task.name === TASK.filtered || task.name === TASK.pinoFiltered ? FILTERED_BATCH : BATCH;
    results[task.name] = {
      ns: p50 * 1e6,
      note: `median of ${samplesCount} batches of ${size}; ±${rme.toFixed(1)} % (rme of the mean)`,
    };
  }
  return results;
}
