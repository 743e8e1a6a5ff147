/**
 * The same 3-hop pipeline on bare SeqlockQueues, without tracking: the source stamps the send
 * time in the message itself, relays copy, the sink records now − sent. Each thread waits with
 * the same adaptive strategy the actors use. The first `warmup` messages are not reported.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AdaptiveWaitStrategy, Clock, CoreBudget, SeqlockQueue } from '../../src/index.js';
import { Hop, LatencyRecorder } from './spine.js';

const { role, input, output, count, warmup, intervalNs, clockBase, budget, member } = workerData as {
  role: 'source' | 'relay' | 'sink';
  budget: SharedArrayBuffer;
  member: number;
  input?: SharedArrayBuffer;
  output?: SharedArrayBuffer;
  count: number;
  warmup: number;
  intervalNs: number;
  clockBase: number;
};
const clock = new Clock(clockBase);
const msg = Hop.create();
const wait = new AdaptiveWaitStrategy();
// Counted against the cores as an actor thread is: the long spin only with a core per thread.
const cores = CoreBudget.attach(budget);
cores.join(member);

if (role === 'source') {
  const producer = SeqlockQueue.attach(Hop, output!).producer();
  parentPort!.postMessage({ type: 'ready' });
  let next = clock.now();
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let n = 0; n < count; n++) {
    // Sleep until due, as the tracked source actor does (it parks with a 50 µs timeout).
    while (clock.now() < next) Atomics.wait(nap, 0, 0, 0.05);
    msg.n = n;
    msg.a = clock.now();
    producer.publish(msg);
    next = clock.now() + intervalNs;
  }
  parentPort!.postMessage({ type: 'done' });
} else {
  const queue = SeqlockQueue.attach(Hop, input!);
  const consumer = queue.consumer({ wait, signal: cores.parker(queue.signal) });
  const producer = output ? SeqlockQueue.attach(Hop, output).producer() : undefined;
  const latencies = new LatencyRecorder(warmup);
  parentPort!.postMessage({ type: 'ready' });
  for (let seen = 0; seen < count && consumer.take(msg); seen++) {
    if (producer) producer.publish(msg);
    else latencies.record(msg.n, clock.now() - msg.a);
  }
  if (producer) parentPort!.postMessage({ type: 'done' });
  else {
    parentPort!.postMessage(latencies.report());
  }
}
