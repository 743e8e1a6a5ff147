/**
 * Publish and consume cost of one 64-byte message in one thread, with tinybench, for both
 * orderings the queue has (see src/queues/memory-order.ts): the default, sound by the ECMAScript
 * memory model, and the x86 opt-in that relies on V8's code generation. The ordering is chosen
 * when the queue module loads, so each is measured in a worker of its own, one after the other.
 *
 * Each tinybench sample is the mean of a batch of BATCH operations timed together (a single
 * operation is shorter than the clock's own ~40 ns cost); the row is the median sample.
 * Baselines in the same worker, from cheapest to closest:
 * - a bare `Atomics.store` / `Atomics.load` (Int32): what one ordered access costs here;
 * - a plain copy of the eight fields between an object and a Float64Array: the payload alone;
 * - a hand-written seqlock write / read of the same slots with the orderings dorsal uses in that
 *   worker (the Atomics a seqlock needs plus the epoch word and the copy, no checks, no
 *   abstraction): the floor dorsal's publish / poll is compared with.
 *
 * Consume: before each batch the producer refills the ring (not timed), and the one long-lived
 * consumer reads what it wrote; nothing is allocated per batch.
 */
import { Worker } from 'node:worker_threads';
import { Bench, type FnReturnedObject } from 'tinybench';
import { type Consumer, SeqlockQueue } from '../../src/queues/index.js';
import { V8_X86_ORDERING } from '../../src/queues/memory-order.js';
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

/** The names of the tasks every worker measures. */
const TASK = {
  store: 'Atomics.store (Int32)',
  load: 'Atomics.load (Int32)',
  copyIn: 'plain copy, object → Float64Array (64 B)',
  copyOut: 'plain copy, Float64Array → object (64 B)',
  write: 'hand-written seqlock write (64 B)',
  read: 'hand-written seqlock read (64 B)',
  publish: 'dorsal publish (64 B)',
  poll: 'dorsal consume, poll (64 B)',
  pollClass: 'dorsal consume, poll into a class instance (64 B)',
} as const;

/**
 * Measures every task in this thread, with the hand-written seqlock on the orderings this
 * thread's queues use. Returns ns per operation by task name.
 */
export async function measureMicro(quick: boolean): Promise<Record<string, { ns: number; note: string }>> {
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
  /** The sleeper count a waking producer loads after its done store. */
  const sleepers = new Int32Array(new SharedArrayBuffer(64));
  const mask = CAPACITY - 1;
  let n = 0;

  // The hand-written seqlock, with dorsal's orderings: the version word at the slot's start, the
  // epoch word after it, the message from byte 8.
  const handWrite = V8_X86_ORDERING
    ? () => {
        let k = n;
        let s = 0;
        for (let i = 0; i < BATCH; i++) {
          const slot = (k & mask) * SLOT_F64;
          const version = (k++ >>> 12) * 2 + 2;
          i32[slot << 1] = version - 1;
          i32[(slot << 1) + 1] = 1;
          msg.seq = k;
          writeFields(f64, slot + 1, msg);
          Atomics.store(i32, slot << 1, version);
          s += sleepers[0]!;
        }
        n = k;
        sink += s;
      }
    : () => {
        let k = n;
        let s = 0;
        for (let i = 0; i < BATCH; i++) {
          const slot = (k & mask) * SLOT_F64;
          const version = (k++ >>> 12) * 2 + 2;
          Atomics.exchange(i32, slot << 1, version - 1);
          i32[(slot << 1) + 1] = 1;
          msg.seq = k;
          writeFields(f64, slot + 1, msg);
          Atomics.store(i32, slot << 1, version);
          s += Atomics.load(sleepers, 0);
        }
        n = k;
        sink += s;
      };
  const handRead = V8_X86_ORDERING
    ? () => {
        let k = n;
        let s = 0;
        for (let i = 0; i < BATCH; i++) {
          const slot = (k++ & mask) * SLOT_F64;
          const before = Atomics.load(i32, slot << 1);
          s += i32[(slot << 1) + 1]!;
          readFields(f64, slot + 1, out);
          if (Atomics.load(i32, slot << 1) !== before) s++;
          s += out.seq;
        }
        n = k;
        sink += s;
      }
    : () => {
        let k = n;
        let s = 0;
        for (let i = 0; i < BATCH; i++) {
          const slot = (k++ & mask) * SLOT_F64;
          const before = Atomics.load(i32, slot << 1);
          s += i32[(slot << 1) + 1]!;
          readFields(f64, slot + 1, out);
          if (Atomics.add(i32, slot << 1, 0) !== before) s++;
          s += out.seq;
        }
        n = k;
        sink += s;
      };

  const bench = new Bench({ time: quick ? 150 : 800, warmupTime: quick ? 80 : 250, iterations: 32 });
  bench
    .add(
      TASK.store,
      batched(() => {
        let k = n;
        for (let i = 0; i < BATCH; i++) Atomics.store(i32, ((k++ & mask) * SLOT_F64) << 1, k);
        n = k;
      }),
    )
    .add(
      TASK.load,
      batched(() => {
        let s = 0;
        let k = n;
        for (let i = 0; i < BATCH; i++) s += Atomics.load(i32, ((k++ & mask) * SLOT_F64) << 1);
        n = k;
        sink += s;
      }),
    )
    .add(
      TASK.copyIn,
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
      TASK.copyOut,
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
    .add(TASK.write, batched(handWrite))
    .add(TASK.read, batched(handRead))
    .add(
      TASK.publish,
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
      TASK.poll,
      consumeBatch(() => out),
      consumerHooks,
    )
    .add(
      TASK.pollClass,
      consumeBatch(() => classOut),
      consumerHooks,
    );

  await bench.run();
  producer.close();
  queue.close();
  if (sink === -1) console.log('');

  const results: Record<string, { ns: number; note: string }> = {};
  for (const task of bench.tasks) {
    const result = task.result;
    if (result.state !== 'completed') throw new Error(`micro bench '${task.name}' ended ${result.state}`);
    const { p50, rme } = result.latency;
    results[task.name] = {
      ns: p50 * 1e6,
      note: `median of ${result.latency.samplesCount} batches of ${BATCH}; ±${rme.toFixed(1)} % (rme of the mean)`,
    };
  }
  return results;
}

/** Runs `measureMicro` in a worker whose queues use `ordering`. */
function measureIn(
  ordering: 'language' | 'x86-v8',
  quick: boolean,
): Promise<Record<string, { ns: number; note: string }>> {
  const env = { ...process.env };
  if (ordering === 'x86-v8') env.DORSAL_MEMORY_ORDER = 'x86-v8';
  else delete env.DORSAL_MEMORY_ORDER;
  const worker = new Worker(new URL('./micro-worker.js', import.meta.url), { workerData: { quick }, env });
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`micro bench worker exited with code ${code}`)));
  });
}

export async function microRows(quick: boolean): Promise<BenchRow[]> {
  const sound = await measureIn('language', quick);
  const rows: BenchRow[] = [];
  const x86 =
    process.arch === 'x64' || process.arch === 'ia32' ? await measureIn('x86-v8', quick) : undefined;
  const get = (results: typeof sound, name: string, suffix = '') => {
    const r = results[name];
    if (r === undefined) throw new Error(`no micro result '${name}'`);
    return row(`${name}${suffix}`, r.ns, 'ns/msg', r.note);
  };
  const publish = get(sound, TASK.publish);
  const poll = get(sound, TASK.poll);
  const write = get(sound, TASK.write);
  const read = get(sound, TASK.read);
  rows.push(
    target(against(publish, write), '≤ 30 ns', publish.value <= 30),
    target(against(poll, read), '≤ 40 ns', poll.value <= 40),
    against(
      {
        ...get(sound, TASK.pollClass),
        note: `${sound[TASK.pollClass]!.note}; out = a class instance instead of Bench64.create(), whose hidden class is shared with same-shape literals`,
      },
      poll,
    ),
  );
  if (x86 !== undefined) {
    const suffix = ', x86-v8 opt-in';
    const fastPublish = get(x86, TASK.publish, suffix);
    const fastPoll = get(x86, TASK.poll, suffix);
    const fastWrite = get(x86, TASK.write, suffix);
    const fastRead = get(x86, TASK.read, suffix);
    rows.push(
      against(fastPublish, fastWrite),
      against(fastPoll, fastRead),
      row(
        'dorsal publish: default ÷ x86-v8 opt-in',
        publish.value / fastPublish.value,
        '×',
        'what the orderings sound by the language cost a publish (two workers, one after the other)',
      ),
      row(
        'dorsal poll: default ÷ x86-v8 opt-in',
        poll.value / fastPoll.value,
        '×',
        'what the orderings sound by the language cost a poll (two workers, one after the other)',
      ),
      // Against the rows shown (the default worker's copies): a ratio names the row it divides by.
      against(fastWrite, get(sound, TASK.copyIn)),
      against(fastRead, get(sound, TASK.copyOut)),
    );
  }
  rows.push(
    against(write, get(sound, TASK.copyIn)),
    against(read, get(sound, TASK.copyOut)),
    get(sound, TASK.copyIn),
    get(sound, TASK.copyOut),
    get(sound, TASK.store),
    get(sound, TASK.load),
  );
  return rows;
}
