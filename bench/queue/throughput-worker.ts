/**
 * Worker side of throughput.ts: one end of a stream of 64-byte messages, published flat out or
 * paced against the clock (dorsal), or pushed through a peer (ringbuf.js, MessagePort,
 * BroadcastChannel). Consumers check that sequence numbers only go up.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { RingBuffer } from 'ringbuf.js';
import { BusySpinWaitStrategy, SeqlockQueue } from '../../src/queues/index.js';
import { Bench64, type Bench64Message, MESSAGE_F64, sampleMessage } from './message.js';
import type { ThroughputJob } from './protocol.js';
import { type WorkerContext, workerContext } from './worker-side.js';

type Ctx = WorkerContext<ThroughputJob>;
type JobOf<K extends ThroughputJob['kind']> = Extract<ThroughputJob, { kind: K }>;

function dorsalProduce(ctx: Ctx, job: JobOf<'dorsal-produce'>): void {
  const queue = SeqlockQueue.attach(Bench64, job.buffer);
  const producer = queue.producer();
  const msg = sampleMessage();
  const { now } = ctx;
  const { count } = job;
  ctx.ready();
  ctx.waitForGate();
  const startNs = now();
  if (job.rate === 0) {
    for (let i = 0; i < count; i++) {
      msg.seq = i;
      producer.publish(msg);
    }
  } else {
    // Bursts of `burst` messages, each burst due at start + sent / rate: the clock is read once
    // per burst, and a producer that was descheduled catches up at full speed.
    const nsPerMessage = 1e9 / job.rate;
    for (let sent = 0; sent < count; ) {
      const due = startNs + sent * nsPerMessage;
      while (now() < due) {}
      const end = Math.min(count, sent + job.burst);
      for (; sent < end; sent++) {
        msg.seq = sent;
        producer.publish(msg);
      }
    }
  }
  const endNs = now();
  queue.close();
  producer.close();
  ctx.done({ count, lost: 0, disorder: 0, startNs, endNs });
}

function dorsalConsume(ctx: Ctx, job: JobOf<'dorsal-consume'>): void {
  const queue = SeqlockQueue.attach(Bench64, job.buffer);
  const consumer = queue.consumer({ wait: new BusySpinWaitStrategy() });
  const out = Bench64.create();
  const { now } = ctx;
  ctx.ready();
  let last = -1;
  let disorder = 0;
  let startNs = 0;
  if (consumer.take(out)) {
    startNs = now();
    last = out.seq;
    while (consumer.take(out)) {
      if (out.seq <= last) disorder++;
      last = out.seq;
    }
  }
  const endNs = now();
  ctx.done({ count: consumer.received, lost: consumer.lost, disorder, startNs, endNs });
  consumer.close();
}

function ringbufProduce(ctx: Ctx, job: JobOf<'ringbuf-produce'>): void {
  const ring = new RingBuffer(job.buffer, Float64Array);
  const msg = new Float64Array(MESSAGE_F64).fill(1.5);
  const { now } = ctx;
  const { count } = job;
  ctx.ready();
  ctx.waitForGate();
  const startNs = now();
  for (let i = 0; i < count; i++) {
    msg[0] = i;
    // The ring's capacity is a multiple of a message, so a push moves a whole message or none.
    while (ring.push(msg, MESSAGE_F64) === 0) {}
  }
  ctx.done({ count, lost: 0, disorder: 0, startNs, endNs: now() });
}

function ringbufConsume(ctx: Ctx, job: JobOf<'ringbuf-consume'>): void {
  const ring = new RingBuffer(job.buffer, Float64Array);
  const out = new Float64Array(MESSAGE_F64);
  const { now } = ctx;
  const { count } = job;
  ctx.ready();
  let disorder = 0;
  let startNs = 0;
  for (let i = 0; i < count; i++) {
    while (ring.pop(out, MESSAGE_F64) === 0) {}
    if (i === 0) startNs = now();
    if (out[0] !== i) disorder++;
  }
  ctx.done({ count, lost: 0, disorder, startNs, endNs: now() });
}

/** A MessagePort or BroadcastChannel: flat-out posts of the same message object. */
function postProduce(ctx: Ctx, count: number, target: { postMessage(m: unknown): void }): void {
  const msg = sampleMessage();
  const { now } = ctx;
  ctx.ready();
  ctx.waitForGate();
  const startNs = now();
  for (let i = 0; i < count; i++) {
    msg.seq = i;
    target.postMessage(msg);
  }
  const endNs = now();
  // The port stays open: closing it could drop messages still in flight; terminate ends it.
  ctx.done({ count, lost: 0, disorder: 0, startNs, endNs });
}

interface Receiver {
  on?(event: 'message', listener: (m: Bench64Message) => void): void;
  onmessage?: ((event: { data: Bench64Message }) => void) | null;
}

function postConsume(ctx: Ctx, count: number, source: Receiver, close: () => void): void {
  const { now } = ctx;
  let received = 0;
  let last = -1;
  let disorder = 0;
  let startNs = 0;
  const onMessage = (m: Bench64Message) => {
    if (received === 0) startNs = now();
    if (m.seq <= last) disorder++;
    last = m.seq;
    if (++received === count) {
      ctx.done({ count: received, lost: 0, disorder, startNs, endNs: now() });
      close();
    }
  };
  if (source.on !== undefined) source.on('message', onMessage);
  else source.onmessage = (event) => onMessage(event.data);
  ctx.ready();
}

const ctx = workerContext<ThroughputJob>();
const job = ctx.job;
switch (job.kind) {
  case 'dorsal-produce':
    dorsalProduce(ctx, job);
    break;
  case 'dorsal-consume':
    dorsalConsume(ctx, job);
    break;
  case 'ringbuf-produce':
    ringbufProduce(ctx, job);
    break;
  case 'ringbuf-consume':
    ringbufConsume(ctx, job);
    break;
  case 'port-produce':
    postProduce(ctx, job.count, job.port);
    break;
  case 'port-consume':
    postConsume(ctx, job.count, job.port, () => job.port.close());
    break;
  case 'broadcast-produce':
    postProduce(ctx, job.count, new BroadcastChannel(job.channel));
    break;
  case 'broadcast-consume': {
    const channel = new BroadcastChannel(job.channel);
    postConsume(ctx, job.count, channel as unknown as Receiver, () => channel.close());
    break;
  }
}
