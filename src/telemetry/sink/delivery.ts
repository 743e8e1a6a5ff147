import { MAX_TIMER_MS } from '../../timer-ms.js';
import type { Spool } from './spool.js';
import type { SinkCounters } from './stats.js';
import { SinkSendError, type SinkTransport } from './transport.js';

/** How one block's delivery ended. */
export type Outcome = 'sent' | 'rejected' | 'unavailable';

/** A process or stream record, encoded. */
export interface EncodedRecord {
  readonly kind: 'process' | 'stream';
  readonly bytes: Uint8Array;
}

/** What delivery needs to know of a block. */
export interface Deliverable {
  readonly processId: string;
  readonly streamId: string;
  readonly bytes: Uint8Array;
}

/** Backoff between attempts: doubling from `initialMs` to `maxMs`. */
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

const UNKNOWN_REFERENCE = new Set(['DORSAL_UNKNOWN_STREAM', 'DORSAL_UNKNOWN_PROCESS']);

/** A timer that does not keep the process alive: a sink's background retries hold no process up. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * Waits for `work` at most `ms`, with a timer that keeps the process alive meanwhile (and is
 * cleared as soon as `work` settles): for what a caller awaits (`flush`, `close`). With only
 * unref'd timers pending (a server down, retries waiting), the process would exit in the middle
 * of the await, silently and with code 0.
 */
export async function within(work: Promise<unknown>, ms: number): Promise<void> {
  // Node fires a timer of more than 2^31 - 1 ms (Infinity: no deadline) after 1 ms: a longer
  // wait is made of several.
  const end = performance.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    const wait = () => {
      const left = end - performance.now();
      if (!(left > 0)) resolve();
      else timer = setTimeout(wait, Math.min(left, MAX_TIMER_MS));
    };
    wait();
  });
  try {
    await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sends one block after its process and stream records, retrying what may succeed later. The
 * records are sent once per id (single flight); a 4xx saying the lake does not know them makes
 * them be sent again, once, before the block is given up.
 */
export class Deliverer {
  private readonly stored = new Set<string>();
  private readonly storing = new Map<string, Promise<void>>();

  constructor(
    private readonly transport: SinkTransport,
    private readonly records: ReadonlyMap<string, EncodedRecord>,
    private readonly counters: SinkCounters,
    private readonly options: {
      readonly maxAttempts: number;
      readonly backoff: Backoff;
      readonly spool: () => Spool | undefined;
      readonly closed: () => boolean;
    },
  ) {}

  /** Delivers a block: `sent`, `rejected` (4xx, with the server's message) or `unavailable`. */
  async deliver(block: Deliverable): Promise<{ outcome: Outcome; error?: string }> {
    let resentRecords = false;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.ensureStored(block.processId);
        await this.ensureStored(block.streamId);
        await this.transport.send('block', block.bytes);
        return { outcome: 'sent' };
      } catch (thrown) {
        const error = thrown instanceof SinkSendError ? thrown : new SinkSendError(String(thrown), true);
        this.counters.lastError = error.message;
        if (!error.retryable) {
          // The lake lost the process or stream (say, a fresh data directory): send them again.
          if (!resentRecords && error.serverCode !== undefined && UNKNOWN_REFERENCE.has(error.serverCode)) {
            resentRecords = true;
            this.stored.delete(block.processId);
            this.stored.delete(block.streamId);
            continue;
          }
          // Why a block finally failed (an attempt retried fine is no reason: not kept).
          this.counters.blockFailed(error.message);
          return { outcome: 'rejected', error: error.message };
        }
        if (attempt + 1 >= this.options.maxAttempts || this.options.closed()) {
          this.counters.blockFailed(error.message);
          return { outcome: 'unavailable', error: error.message };
        }
        this.counters.retries += 1;
        await sleep(this.backoff(attempt));
      }
    }
  }

  /** The delay before attempt `attempt + 1`, with jitter (half fixed, half random). */
  backoff(attempt: number): number {
    const { initialMs, maxMs } = this.options.backoff;
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
    return delay / 2 + (Math.random() * delay) / 2;
  }

  /**
   * Sends a drop report after its process record. Rejects with a `SinkSendError`; a lake that
   * does not know the process gets it again, once.
   */
  async deliverReport(processId: string, bytes: Uint8Array): Promise<void> {
    for (let resent = false; ; resent = true) {
      try {
        await this.ensureStored(processId);
        await this.transport.send('drops', bytes);
        return;
      } catch (error) {
        const unknown = error instanceof SinkSendError && error.serverCode === 'DORSAL_UNKNOWN_PROCESS';
        if (resent || !unknown) throw error;
        this.stored.delete(processId);
      }
    }
  }

  /** Sends a process or stream record once (single flight per id). */
  private ensureStored(id: string): Promise<void> {
    if (this.stored.has(id)) return Promise.resolve();
    let pending = this.storing.get(id);
    if (pending === undefined) {
      pending = (async () => {
        const record = this.records.get(id) ?? (await this.options.spool()?.getMeta(id));
        if (record === undefined) throw new SinkSendError(`no process or stream record for ${id}`, false);
        await this.transport.send(record.kind, record.bytes);
        this.stored.add(id);
      })().finally(() => this.storing.delete(id));
      this.storing.set(id, pending);
    }
    return pending;
  }
}
