/** A consumer of the queue demo: 'fast' reads as it comes, 'slow' naps now and then and is lapped. */
import { parentPort, workerData } from 'node:worker_threads';
import { SeqlockQueue } from 'dorsal';
import { Tick } from './queue-demo.js';

const { buffer, mode } = workerData as { buffer: SharedArrayBuffer; mode: 'fast' | 'slow' };
const consumer = SeqlockQueue.attach(Tick, buffer).consumer();
const out = Tick.create();
const nap = new Int32Array(new SharedArrayBuffer(4));
let inOrder = true;
let last = -1;
while (consumer.take(out)) {
  if (out.size <= last) inOrder = false;
  last = out.size;
  if (mode === 'slow' && consumer.received % 10_000 === 0) Atomics.wait(nap, 0, 0, 5);
}
parentPort!.postMessage(
  `${mode} consumer: received ${consumer.received}, lost ${consumer.lost} (lapped by the producer), in order: ${inOrder}`,
);
