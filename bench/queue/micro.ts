/**
 * Publish and consume cost of one 64-byte message in one thread, with tinybench.
 *
 * Each tinybench sample is the mean of a batch of BATCH operations timed together (a single
 * operation is shorter than the clock's own ~40 ns cost); the row is the median sample.
 * Baselines in the same run, from cheapest to closest:
 * - a bare `Atomics.store` / `Atomics.load` (Int32): what one ordered access costs here;
 * - a plain copy of the eight fields between an object and a Float64Array: the payload alone;
 * - a hand-written seqlock write / read of the same slots (the Atomics a seqlock needs plus the
 *   copy, no checks, no abstraction): the floor dorsal's publish / poll is compared with.
 *
 * Consume: before each batch the producer refills the ring (not timed), and the one long-lived
 * consumer reads what it wrote; nothing is allocated per batch.
 */
import { Bench, type FnReturnedObject } from 'tinybench';
import { type Consumer, SeqlockQueue } from '../../src/index.js';
import type { BenchRow } from '../types.js';
import {
  Bench64,
  Bench64Class,
  type Bench64Message,
  readFields,
  sampleMessage,
  writeFields,
} from './message.js';
import { against, row, target } from './rows.js';

const BATCH = 1024;
const CAPACITY = 4096;
/** Float64 stride of the hand-written slots: 128 bytes, as dorsal lays out a 64-byte message. */
const SLOT_F64 = 16;

/** Results feed this so that no loop is optimized away. */
let sink = 0;

/** Times `body` (BATCH operations) and reports the mean per operation as the sample. */
function batched(body: () => void): () => FnReturnedObject {
  return () => {
    const start = performance.now();
    body();
    const elapsed = performance.now() - start;
    return { overriddenDuration: elapsed / BATCH, overriddenIterationCost: elapsed };
  };
}

export async function microRows(quick: boolean): Promise<BenchRow[]> {
  const queue = SeqlockQueue.create(Bench64, { capacity: CAPACITY });
  const producer = queue.producer();
  const msg = sampleMessage();
  const out = Bench64.create();
  const classOut = new Bench64Class();
  /** The consumer of the running consume task: opened and closed by its hooks, one per phase. */
  let consumer: Consumer<Bench64Message> | undefined;
  const consumerHooks = {
    beforeAll: () => {
      consumer = queue.consumer({ from: 'head' });
    },
    afterAll: () => consumer?.close(),
  };
  /** Refills the ring (not timed), then times BATCH polls into `target()`. */
  const consumeBatch = (targetOf: () => Bench64Message) => {
    const into = targetOf();
    return (): FnReturnedObject => {
      const c = consumer!;
      const cost = performance.now();
      let k = n;
      for (let i = 0; i < BATCH; i++) {
        msg.seq = k++;
        producer.publish(msg);
      }
      n = k;
      const start = performance.now();
      let read = 0;
      for (let i = 0; i < BATCH; i++) if (c.poll(into)) read++;
      const end = performance.now();
      if (read !== BATCH) throw new Error(`consumer read ${read} of ${BATCH} messages`);
      sink += into.seq;
      return { overriddenDuration: (end - start) / BATCH, overriddenIterationCost: end - cost };
    };
  };
  const slots = new SharedArrayBuffer(CAPACITY * SLOT_F64 * 8);
  const f64 = new Float64Array(slots);
  const i32 = new Int32Array(slots);
  const mask = CAPACITY - 1;
  let n = 0;

  const bench = new Bench({ time: quick ? 150 : 800, warmupTime: quick ? 80 : 250, iterations: 32 });
  bench
    .add(
      'Atomics.store (Int32)',
      batched(() => {
        let k = n;
        for (let i = 0; i < BATCH; i++) Atomics.store(i32, ((k++ & mask) * SLOT_F64) << 1, k);
        n = k;
      }),
    )
    .add(
      'Atomics.load (Int32)',
      batched(() => {
        let s = 0;
        let k = n;
        for (let i = 0; i < BATCH; i++) s += Atomics.load(i32, ((k++ & mask) * SLOT_F64) << 1);
        n = k;
        sink += s;
      }),
    )
    .add(
      'plain copy, object → Float64Array (64 B)',
      batched(() => {
        let k = n;
        for (let i = 0; i < BATCH; i++) {
          const at = (k++ & mask) * SLOT_F64 + 1;
          msg.seq = k;
          writeFields(f64, at, msg);
        }
        n = k;
      }),
    )
    .add(
      'plain copy, Float64Array → object (64 B)',
      batched(() => {
        let k = n;
        let s = 0;
        for (let i = 0; i < BATCH; i++) {
          const at = (k++ & mask) * SLOT_F64 + 1;
          readFields(f64, at, out);
          s += out.seq;
        }
        n = k;
        sink += s;
      }),
    )
    .add(
      'hand-written seqlock write (64 B)',
      batched(() => {
        let k = n;
        for (let i = 0; i < BATCH; i++) {
          const slot = (k & mask) * SLOT_F64;
          const version = (k++ >>> 12) * 2 + 2;
          Atomics.store(i32, slot << 1, version - 1);
          msg.seq = k;
          writeFields(f64, slot + 1, msg);
          Atomics.store(i32, slot << 1, version);
        }
        n = k;
      }),
    )
    .add(
      'hand-written seqlock read (64 B)',
      batched(() => {
        let k = n;
        let s = 0;
        for (let i = 0; i < BATCH; i++) {
          const slot = (k++ & mask) * SLOT_F64;
          const before = Atomics.load(i32, slot << 1);
          readFields(f64, slot + 1, out);
          if (Atomics.load(i32, slot << 1) !== before) s++;
          s += out.seq;
        }
        n = k;
        sink += s;
      }),
    )
    .add(
      'dorsal publish (64 B)',
      batched(() => {
        let k = n;
        for (let i = 0; i < BATCH; i++) {
          msg.seq = k++;
          producer.publish(msg);
        }
        n = k;
      }),
    )
    .add(
      'dorsal consume, poll (64 B)',
      consumeBatch(() => out),
      consumerHooks,
    )
    .add(
      'dorsal consume, poll into a class instance (64 B)',
      consumeBatch(() => classOut),
      consumerHooks,
    );

  await bench.run();
  producer.close();
  queue.close();
  if (sink === -1) console.log('');

  const ns: Record<string, BenchRow> = {};
  for (const task of bench.tasks) {
    const result = task.result;
    if (result.state !== 'completed') throw new Error(`micro bench '${task.name}' ended ${result.state}`);
    const { p50, rme } = result.latency;
    ns[task.name] = row(
      task.name,
      p50 * 1e6,
      'ns/msg',
      `median of ${result.latency.samplesCount} batches of ${BATCH}; ±${rme.toFixed(1)} % (rme of the mean)`,
    );
  }
  const get = (name: string) => {
    const r = ns[name];
    if (r === undefined) throw new Error(`no micro result '${name}'`);
    return r;
  };
  const publish = get('dorsal publish (64 B)');
  const consume = get('dorsal consume, poll (64 B)');
  const classConsume = get('dorsal consume, poll into a class instance (64 B)');
  return [
    target(against(publish, get('hand-written seqlock write (64 B)')), '≤ 30 ns', publish.value <= 30),
    target(against(consume, get('hand-written seqlock read (64 B)')), '≤ 40 ns', consume.value <= 40),
    against(
      {
        ...classConsume,
        note: `${classConsume.note}; out = a class instance instead of Bench64.create(), whose hidden class is shared with same-shape literals`,
      },
      consume,
    ),
    against(get('hand-written seqlock write (64 B)'), get('plain copy, object → Float64Array (64 B)')),
    against(get('hand-written seqlock read (64 B)'), get('plain copy, Float64Array → object (64 B)')),
    get('plain copy, object → Float64Array (64 B)'),
    get('plain copy, Float64Array → object (64 B)'),
    get('Atomics.store (Int32)'),
    get('Atomics.load (Int32)'),
  ];
}
