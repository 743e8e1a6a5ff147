/**
 * Worker side of latency.ts. Senders stamp the shared clock into the message and space their
 * sends (so the figures are latency, not queueing); receivers busy-spin (dorsal, raw Atomics) or
 * wait in their event loop (MessagePort) and keep receive − send per message. Ping-pong sides
 * bounce a message back and forth; the pinger keeps each round trip.
 */
import type { MessagePort } from 'node:worker_threads';
import { BusySpinWaitStrategy, SeqlockQueue } from '../../src/queues/index.js';
import {
  Bench64,
  Bench64Class,
  type Bench64Message,
  readFields,
  sampleMessage,
  writeFields,
} from './message.js';
import { type LatencyJob, RawSlot } from './protocol.js';
import { type WorkerContext, workerContext } from './worker-side.js';

type Ctx = WorkerContext<LatencyJob>;
type JobOf<K extends LatencyJob['kind']> = Extract<LatencyJob, { kind: K }>;

/** Runs `send(i)` `count` times, one every `spacingNs` on the clock. */
function spaced(ctx: Ctx, count: number, spacingNs: number, send: (i: number) => void): void {
  const { now } = ctx;
  ctx.ready();
  ctx.waitForGate();
  const startNs = now();
  for (let i = 0; i < count; i++) {
    const due = startNs + i * spacingNs;
    while (now() < due) {}
    send(i);
  }
  ctx.done({ count, lost: 0, disorder: 0, startNs, endNs: now() });
}

function dorsalSend(ctx: Ctx, job: JobOf<'dorsal-send'>): void {
  const queue = SeqlockQueue.attach(Bench64, job.buffer);
  const producer = queue.producer();
  const msg = sampleMessage();
  const { now } = ctx;
  spaced(ctx, job.count, job.spacingNs, (i) => {
    msg.seq = i;
    msg.sentNs = now();
    producer.publish(msg);
  });
  producer.close();
  // Ends the receiver's `take` loop even if it counted a message as lost.
  queue.close();
}

function dorsalReceive(ctx: Ctx, job: JobOf<'dorsal-receive'>): void {
  const queue = SeqlockQueue.attach(Bench64, job.buffer);
  const consumer = queue.consumer({ wait: new BusySpinWaitStrategy() });
  const out = job.into === 'class' ? new Bench64Class() : Bench64.create();
  const samples = new Float64Array(job.count);
  const { now } = ctx;
  ctx.ready();
  let n = 0;
  while (n < job.count && consumer.take(out)) samples[n++] = now() - out.sentNs;
  ctx.done({ count: n, lost: consumer.lost, disorder: 0, startNs: 0, endNs: now(), samples });
  consumer.close();
}

function atomicsSend(ctx: Ctx, job: JobOf<'atomics-send'>): void {
  const i32 = new Int32Array(job.buffer);
  const f64 = new Float64Array(job.buffer);
  const msg = sampleMessage();
  const at = RawSlot.STAMP_F64;
  const { now } = ctx;
  const whole = job.payload === 'message';
  spaced(ctx, job.count, job.spacingNs, (i) => {
    if (whole) {
      msg.seq = i;
      msg.sentNs = now();
      writeFields(f64, at, msg);
    } else f64[at] = now();
    // SC store (a release): the stamp or message above is visible to a reader that sees i + 1.
    Atomics.store(i32, RawSlot.FLAG, i + 1);
  });
}

function atomicsReceive(ctx: Ctx, job: JobOf<'atomics-receive'>): void {
  const i32 = new Int32Array(job.buffer);
  const f64 = new Float64Array(job.buffer);
  const samples = new Float64Array(job.count);
  const out = new Bench64Class();
  const at = RawSlot.STAMP_F64;
  const whole = job.payload === 'message';
  const { now } = ctx;
  ctx.ready();
  let seen = 0;
  let n = 0;
  let missed = 0;
  while (seen < job.count) {
    // SC load (an acquire) in the spin: once it reads a new value, the stamp written before is visible.
    let flag = Atomics.load(i32, RawSlot.FLAG);
    while (flag === seen) flag = Atomics.load(i32, RawSlot.FLAG);
    let sent: number;
    if (whole) {
      readFields(f64, at, out);
      sent = out.sentNs;
    } else sent = f64[at]!;
    const t = now();
    // SC load: unchanged means what was read belongs to `flag`, not to a later send.
    if (Atomics.load(i32, RawSlot.FLAG) === flag) samples[n++] = t - sent;
    missed += flag - seen - 1;
    seen = flag;
  }
  ctx.done({
    count: n,
    lost: missed,
    disorder: 0,
    startNs: 0,
    endNs: now(),
    samples: samples.subarray(0, n).slice(),
  });
}

function portSend(ctx: Ctx, job: JobOf<'port-send'>): void {
  const msg = sampleMessage();
  const { now } = ctx;
  spaced(ctx, job.count, job.spacingNs, (i) => {
    msg.seq = i;
    msg.sentNs = now();
    job.port.postMessage(msg);
  });
}

function portReceive(ctx: Ctx, job: JobOf<'port-receive'>): void {
  const samples = new Float64Array(job.count);
  const { now } = ctx;
  let n = 0;
  job.port.on('message', (m: Bench64Message) => {
    samples[n++] = now() - m.sentNs;
    if (n === job.count) {
      job.port.close();
      ctx.done({ count: n, lost: 0, disorder: 0, startNs: 0, endNs: now(), samples });
    }
  });
  ctx.ready();
}

function atomicsPing(ctx: Ctx, job: JobOf<'atomics-ping'>): void {
  const i32 = new Int32Array(job.buffer);
  const samples = new Float64Array(job.count);
  const { now } = ctx;
  ctx.ready();
  ctx.waitForGate();
  let last = now();
  for (let i = 0; i < job.count; i++) {
    // SC store then SC loads: the ping is visible to the other side, which answers with + 1.
    Atomics.store(i32, RawSlot.FLAG, 2 * i + 1);
    while (Atomics.load(i32, RawSlot.FLAG) !== 2 * i + 2) {}
    const t = now();
    samples[i] = t - last;
    last = t;
  }
  ctx.done({ count: job.count, lost: 0, disorder: 0, startNs: 0, endNs: last, samples });
}

function atomicsPong(ctx: Ctx, job: JobOf<'atomics-pong'>): void {
  const i32 = new Int32Array(job.buffer);
  ctx.ready();
  for (let i = 0; i < job.count; i++) {
    // SC load in the spin, SC store of the answer.
    while (Atomics.load(i32, RawSlot.FLAG) !== 2 * i + 1) {}
    Atomics.store(i32, RawSlot.FLAG, 2 * i + 2);
  }
  ctx.done({ count: job.count, lost: 0, disorder: 0, startNs: 0, endNs: ctx.now() });
}

function portPing(ctx: Ctx, port: MessagePort, count: number): void {
  const samples = new Float64Array(count);
  const { now } = ctx;
  const msg = sampleMessage();
  let n = 0;
  let last = 0;
  port.on('message', () => {
    const t = now();
    samples[n++] = t - last;
    last = t;
    if (n === count) {
      port.close();
      ctx.done({ count: n, lost: 0, disorder: 0, startNs: 0, endNs: t, samples });
    } else port.postMessage(msg);
  });
  ctx.ready();
  ctx.waitForGate();
  last = now();
  port.postMessage(msg);
}

function portPong(ctx: Ctx, port: MessagePort, count: number): void {
  let n = 0;
  port.on('message', (m: Bench64Message) => {
    port.postMessage(m);
    if (++n === count) ctx.done({ count: n, lost: 0, disorder: 0, startNs: 0, endNs: ctx.now() });
  });
  ctx.ready();
}

const ctx = workerContext<LatencyJob>();
const job = ctx.job;
switch (job.kind) {
  case 'dorsal-send':
    dorsalSend(ctx, job);
    break;
  case 'dorsal-receive':
    dorsalReceive(ctx, job);
    break;
  case 'atomics-send':
    atomicsSend(ctx, job);
    break;
  case 'atomics-receive':
    atomicsReceive(ctx, job);
    break;
  case 'port-send':
    portSend(ctx, job);
    break;
  case 'port-receive':
    portReceive(ctx, job);
    break;
  case 'atomics-ping':
    atomicsPing(ctx, job);
    break;
  case 'atomics-pong':
    atomicsPong(ctx, job);
    break;
  case 'port-ping':
    portPing(ctx, job.port, job.count);
    break;
  case 'port-pong':
    portPong(ctx, job.port, job.count);
    break;
}
