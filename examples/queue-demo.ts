/**
 * The queue on its own, across threads: one producer here, two consumers on worker threads —
 * one reads as fast as it can, one is deliberately slow and gets lapped. Prints throughput and
 * what each consumer received and lost (the producer never waits for them).
 *
 *   npm run build && node dist/examples/queue-demo.js
 */
import { isMainThread, Worker } from 'node:worker_threads';
import { defineMessage, SeqlockQueue } from 'dorsal';

export const Tick = defineMessage('Tick', {
  symbol: { type: 'string', bytes: 8 },
  price: 'f64',
  size: 'u32',
  ts: 'i64',
});

const COUNT = 2_000_000;

if (isMainThread) {
  const queue = SeqlockQueue.create(Tick, { capacity: 1 << 16 });
  const consumer = (mode: 'fast' | 'slow') =>
    new Worker(new URL('./queue-demo-consumer.js', import.meta.url), {
      workerData: { buffer: queue.buffer, mode },
    });
  const workers = [consumer('fast'), consumer('slow')];
  const results = workers.map((w) => new Promise((resolve) => w.once('message', resolve)));
  // Wait until both consumers are attached: a consumer starts at the head.
  while (queue.stats().consumers.length < 2) await new Promise((r) => setTimeout(r, 1));

  const producer = queue.producer();
  const tick = { symbol: 'ACME', price: 101.5, size: 10, ts: 0n };
  const started = performance.now();
  for (let i = 0; i < COUNT; i++) {
    tick.size = i;
    producer.publish(tick);
  }
  const seconds = (performance.now() - started) / 1000;
  queue.close();
  console.log(
    `published ${COUNT} ticks in ${(seconds * 1000).toFixed(0)} ms: ${(COUNT / seconds / 1e6).toFixed(1)} M msg/s`,
  );
  for (const result of await Promise.all(results)) console.log(result);
}
