/**
 * The main-thread half of protocol.ts: starts the workers of one measurement in order (each
 * ready before the next starts, so consumers are listening before producers exist), opens the
 * gate, collects every result and terminates every worker, even on failure or timeout.
 */
import { type MessagePort, type Transferable, Worker } from 'node:worker_threads';
import { Clock } from '../../src/spine/clock.js';
import type { Envelope, FromWorker, WorkerResult } from './protocol.js';

export interface Side<J> {
  readonly job: J;
  /** MessagePorts named in `job`, moved to the worker. */
  readonly transfer?: readonly MessagePort[];
}

interface Started {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  readonly done: Promise<WorkerResult>;
}

function start<J>(file: URL, envelope: Envelope<J>, transfer: readonly Transferable[]): Started {
  const worker = new Worker(file, { workerData: envelope, transferList: [...transfer] });
  let onReady: () => void = () => {};
  let onDone: (result: WorkerResult) => void = () => {};
  let onError: (error: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    worker.once('error', reject);
  });
  const done = new Promise<WorkerResult>((resolve, reject) => {
    onDone = resolve;
    onError = reject;
  });
  worker.on('message', (message: FromWorker) => {
    if (message.type === 'ready') onReady();
    else onDone(message.result);
  });
  worker.on('error', (error) => onError(error));
  worker.on('exit', (code) => onError(new Error(`bench worker exited with code ${code} before reporting`)));
  // A failure before `ready` is reported through `ready`; keep `done` from going unhandled meanwhile.
  done.catch(() => {});
  return { worker, ready, done };
}

function deadline(ms: number, what: string): { promise: Promise<never>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * Runs one measurement: `sides` start in order, then the gate opens. Returns each side's
 * result in the same order. Rejects (and still terminates everything) after `timeoutMs`.
 */
export async function runSides<J>(
  file: URL,
  sides: readonly Side<J>[],
  timeoutMs: number,
): Promise<WorkerResult[]> {
  const gate = new SharedArrayBuffer(4);
  const base = Clock.newBase();
  const started: Started[] = [];
  const limit = deadline(
    timeoutMs,
    `bench workers ${sides.map((s) => (s.job as { kind: string }).kind).join(' + ')}`,
  );
  try {
    for (const side of sides) {
      const s = start(file, { job: side.job, gate, base }, side.transfer ?? []);
      started.push(s);
      await Promise.race([s.ready, limit.promise]);
    }
    const words = new Int32Array(gate);
    // SC store, then wake the workers parked on the gate.
    Atomics.store(words, 0, 1);
    Atomics.notify(words, 0);
    return await Promise.race([Promise.all(started.map((s) => s.done)), limit.promise]);
  } finally {
    limit.cancel();
    await Promise.all(started.map((s) => s.worker.terminate()));
  }
}
