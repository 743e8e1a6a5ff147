/**
 * The queue section: a 64-byte message through `SeqlockQueue`, against peers measured in the
 * same run.
 *
 * - micro (one thread, tinybench): publish and consume ns/message, against hand-written seqlock
 *   code, a plain 64-byte copy and bare Atomics operations.
 * - throughput (two workers): flat out and paced at 10 M msg/s, loss; ringbuf.js SPSC,
 *   MessagePort and BroadcastChannel as peers.
 * - latency (two workers): one-way p50/p99/p99.9 (HDR histogram) against raw Atomics and
 *   MessagePort one-way; raw Atomics and MessagePort ping-pong round trips.
 *
 * Run alone: `npm run build && node dist/bench/queue.js [--quick]`; in the suite: `npm run bench`.
 */
import { pathToFileURL } from 'node:url';
import { latencyRows } from './queue/latency.js';
import { microRows } from './queue/micro.js';
import { GROUP } from './queue/rows.js';
import { throughputRows } from './queue/throughput.js';
import type { BenchSection } from './types.js';

/** The queue section of the bench suite. */
export const queueBench: BenchSection = {
  group: GROUP,
  async run({ quick }) {
    return [...(await microRows(quick)), ...(await throughputRows(quick)), ...(await latencyRows(quick))];
  },
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  for (const r of await queueBench.run({ quick })) console.log(JSON.stringify(r));
}
