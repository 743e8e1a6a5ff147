/**
 * The message every queue benchmark sends: 64 bytes, eight f64 fields. `seq` numbers it (so a
 * consumer can check order), `sentNs` carries the send time for the latency runs.
 *
 * Workers import this file too, so it takes the queue API from `src/queues` rather than the
 * public face: a worker then starts without loading the telemetry modules.
 */
import { defineMessage, type MessageOfLayout } from '../../src/queues/index.js';

export const Bench64 = defineMessage('Bench64', {
  seq: 'f64',
  sentNs: 'f64',
  a: 'f64',
  b: 'f64',
  c: 'f64',
  d: 'f64',
  e: 'f64',
  f: 'f64',
});

export type Bench64Message = MessageOfLayout<typeof Bench64>;

/** Bytes per message; asserted against the layout so the rows never lie about the size. */
export const MESSAGE_BYTES = 64;
if (Bench64.size !== MESSAGE_BYTES) throw new Error(`Bench64 is ${Bench64.size} bytes, expected 64`);

/** Doubles per message, for the peers that carry it as a Float64Array. */
export const MESSAGE_F64 = MESSAGE_BYTES / 8;

/** A message with every field set, so a copy moves real values. */
export function sampleMessage(): Bench64Message {
  return { seq: 0, sentNs: 0, a: 1.5, b: 2.5, c: 3.5, d: 4.5, e: 5.5, f: 6.5 };
}

/**
 * The same fields as `Bench64.create()`, in a class: its instances get a hidden class of their
 * own instead of the one every `{ seq, sentNs, … }` literal shares. Consumers are measured polling
 * into both, because the two differ (see the rows' notes).
 */
export class Bench64Class implements Bench64Message {
  seq = 0;
  sentNs = 0;
  a = 0;
  b = 0;
  c = 0;
  d = 0;
  e = 0;
  f = 0;
}

/**
 * The hand-written copies the baselines use: the message field by field into Float64 slots from
 * `at`, and back. Small enough that the JIT inlines them where they are called.
 */
export function writeFields(f64: Float64Array, at: number, msg: Bench64Message): void {
  f64[at] = msg.seq;
  f64[at + 1] = msg.sentNs;
  f64[at + 2] = msg.a;
  f64[at + 3] = msg.b;
  f64[at + 4] = msg.c;
  f64[at + 5] = msg.d;
  f64[at + 6] = msg.e;
  f64[at + 7] = msg.f;
}

export function readFields(f64: Float64Array, at: number, out: Bench64Message): void {
  out.seq = f64[at]!;
  out.sentNs = f64[at + 1]!;
  out.a = f64[at + 2]!;
  out.b = f64[at + 3]!;
  out.c = f64[at + 4]!;
  out.d = f64[at + 5]!;
  out.e = f64[at + 6]!;
  out.f = f64[at + 7]!;
}
