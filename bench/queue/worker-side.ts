/** The worker half of protocol.ts: read the job, say ready, wait for the gate, report. */
import { parentPort, workerData } from 'node:worker_threads';
import { Clock } from '../../src/spine/clock.js';
import type { Envelope, FromWorker, WorkerResult } from './protocol.js';

export interface WorkerContext<J> {
  readonly job: J;
  /** The shared clock, ns. */
  readonly now: () => number;
  ready(): void;
  /** Blocks this thread until the main thread opens the gate. */
  waitForGate(): void;
  done(result: WorkerResult): void;
}

export function workerContext<J>(): WorkerContext<J> {
  const port = parentPort;
  if (port === null) throw new Error('bench workers run only as worker threads');
  const envelope = workerData as Envelope<J>;
  const gate = new Int32Array(envelope.gate);
  const post = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  return {
    job: envelope.job,
    now: clockNow(new Clock(envelope.base)),
    ready: () => post({ type: 'ready' }),
    waitForGate: () => {
      // SC load in the loop: returns once the main thread's SC store of 1 is visible.
      while (Atomics.load(gate, 0) === 0) Atomics.wait(gate, 0, 0, 100);
    },
    done: (result) => {
      const samples = result.samples?.buffer;
      post({ type: 'done', result }, samples instanceof ArrayBuffer ? [samples] : []);
    },
  };
}

/** The library's spine clock as a plain function (ns since the base handed over in workerData). */
function clockNow(clock: Clock): () => number {
  return () => clock.now();
}
