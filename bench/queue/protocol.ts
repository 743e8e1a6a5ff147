/**
 * What the main thread and the bench workers say to each other. A worker gets one job in
 * workerData, posts `ready` once it is set up, waits for the gate when it is the side that starts
 * the traffic, and posts `done` with its result; then the main thread terminates it.
 */
import type { MessagePort } from 'node:worker_threads';

/** Jobs of `throughput-worker.js`: one side of a flat-out or paced stream. */
export type ThroughputJob =
  /** `rate` messages/s in bursts of `burst` against the clock; 0 = flat out. */
  | {
      readonly kind: 'dorsal-produce';
      readonly buffer: SharedArrayBuffer;
      readonly count: number;
      readonly rate: number;
      readonly burst: number;
    }
  | { readonly kind: 'dorsal-consume'; readonly buffer: SharedArrayBuffer }
  | { readonly kind: 'ringbuf-produce'; readonly buffer: SharedArrayBuffer; readonly count: number }
  | { readonly kind: 'ringbuf-consume'; readonly buffer: SharedArrayBuffer; readonly count: number }
  | { readonly kind: 'port-produce'; readonly port: MessagePort; readonly count: number }
  | { readonly kind: 'port-consume'; readonly port: MessagePort; readonly count: number }
  | { readonly kind: 'broadcast-produce'; readonly channel: string; readonly count: number }
  | { readonly kind: 'broadcast-consume'; readonly channel: string; readonly count: number };

/** Jobs of `latency-worker.js`: spaced one-way sends, or one side of a ping-pong. */
export type LatencyJob =
  | {
      readonly kind: 'dorsal-send';
      readonly buffer: SharedArrayBuffer;
      readonly count: number;
      readonly spacingNs: number;
    }
  /** `into`: poll into `Bench64.create()` ('layout') or into a `Bench64Class` instance ('class'). */
  | {
      readonly kind: 'dorsal-receive';
      readonly buffer: SharedArrayBuffer;
      readonly count: number;
      readonly into: 'layout' | 'class';
    }
  | {
      readonly kind: 'atomics-send';
      readonly buffer: SharedArrayBuffer;
      readonly count: number;
      readonly spacingNs: number;
      /** 'stamp': an 8-byte stamp; 'message': the 64-byte message, field by field. */
      readonly payload: RawPayload;
    }
  | {
      readonly kind: 'atomics-receive';
      readonly buffer: SharedArrayBuffer;
      readonly count: number;
      readonly payload: RawPayload;
    }
  | {
      readonly kind: 'port-send';
      readonly port: MessagePort;
      readonly count: number;
      readonly spacingNs: number;
    }
  | { readonly kind: 'port-receive'; readonly port: MessagePort; readonly count: number }
  | { readonly kind: 'atomics-ping'; readonly buffer: SharedArrayBuffer; readonly count: number }
  | { readonly kind: 'atomics-pong'; readonly buffer: SharedArrayBuffer; readonly count: number }
  | { readonly kind: 'port-ping'; readonly port: MessagePort; readonly count: number }
  | { readonly kind: 'port-pong'; readonly port: MessagePort; readonly count: number };

/** What every worker finds in workerData. */
export interface Envelope<J> {
  readonly job: J;
  /** Int32[0]: 0 until the main thread opens the gate (Atomics.store + notify). */
  readonly gate: SharedArrayBuffer;
  /** Base of the shared clock (the spine's `Clock`: hrtime ns when the run started). */
  readonly base: number;
}

/** What a worker reports when its job is done. Times are on the shared clock, in ns. */
export interface WorkerResult {
  /** Messages published (a producer) or received (a consumer). */
  readonly count: number;
  /** Messages a consumer counted as lost (lapped), or that never arrived. */
  readonly lost: number;
  /** Messages received out of order (must be 0). */
  readonly disorder: number;
  /** Producer: first send. Consumer: first receipt. */
  readonly startNs: number;
  /** Producer: after the last send. Consumer: when it saw the end of the stream. */
  readonly endNs: number;
  /** Latency runs: one-way latencies or round trips, ns. */
  readonly samples?: Float64Array;
}

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly result: WorkerResult };

/** What a raw Atomics one-way send moves besides its flag. */
export type RawPayload = 'stamp' | 'message';

/**
 * The raw Atomics peers' buffer: a flag word, then the stamp or the 64-byte message — 72 bytes
 * over two cache lines, as a dorsal slot of a 64-byte message.
 */
export const RawSlot = {
  /** Int32 index of the flag word (sequence of the last send, or of the ping-pong step). */
  FLAG: 0,
  /** Float64 index of the timestamp (bytes 8..15), or of the message's first field. */
  STAMP_F64: 1,
  BYTES: 128,
} as const;
