import { ConfigError } from '../../errors.js';
import { isTimerMs, TIMER_MS_RANGE } from '../../timer-ms.js';
import { ServerBusyError } from '../errors.js';

/** Gives back a slot (once; later calls do nothing). */
export type ReleaseSlot = () => void;

/** Default queries run or answered at once by a server. */
export const DEFAULT_MAX_CONCURRENT_QUERIES = 4;
/** Default queries that wait for their turn at most. */
export const DEFAULT_MAX_WAITING_QUERIES = 32;

/** Default longest wait of a query for its turn: 30 s. */
export const DEFAULT_MAX_QUEUE_WAIT_MS = 30_000;

/**
 * The queries a server runs or answers at once: `acquire` takes a slot now, or waits its turn
 * (first come, first served) in a queue of `maxWaiting` at most, for `maxWaitMs` at most; beyond
 * either, a `ServerBusyError` (503, retry later). A slot is held from before the query runs until its answer is out, so that
 * what the server holds for queries — DuckDB's work, the rows of the answers its clients are
 * still taking — is that of `max` queries at most, however many clients ask or how slowly they read.
 *
 * @example
 * const slots = new QuerySlots(4, 32, 30_000);
 * const release = await slots.acquire(request.signal);
 * try { await answer(); } finally { release(); }
 */
export class QuerySlots {
  readonly max: number;
  readonly maxWaiting: number;
  readonly maxWaitMs: number;
  private taken = 0;
  private readonly queue: { readonly grant: () => void }[] = [];

  constructor(max: number, maxWaiting: number, maxWaitMs: number = DEFAULT_MAX_QUEUE_WAIT_MS) {
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new ConfigError(`maxConcurrentQueries must be an integer from 1, got ${max}`);
    }
    if (!Number.isSafeInteger(maxWaiting) || maxWaiting < 0) {
      throw new ConfigError(`maxWaitingQueries must be an integer from 0, got ${maxWaiting}`);
    }
    if (!isTimerMs(maxWaitMs)) {
      throw new ConfigError(`maxQueueWaitMs must be ${TIMER_MS_RANGE}, got ${maxWaitMs}`);
    }
    this.max = max;
    this.maxWaiting = maxWaiting;
    this.maxWaitMs = maxWaitMs;
  }

  /** Slots taken now: queries running or being answered. */
  get inFlight(): number {
    return this.taken;
  }

  /** Queries waiting for a slot now. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * A slot, now or once those before have had theirs. Refused with a `ServerBusyError` when the
   * queue is full, once `maxWaitMs` passed before the turn came, or once `signal` aborts before
   * it came (the client went away, or the server stops): its place is freed.
   */
  acquire(signal: AbortSignal): Promise<ReleaseSlot> {
    if (signal.aborted) return Promise.reject(notStarted());
    if (this.queue.length === 0 && this.taken < this.max) return Promise.resolve(this.take());
    if (this.queue.length >= this.maxWaiting) {
      return Promise.reject(
        new ServerBusyError(
          `the server is running or answering ${this.max} queries at once, and ${this.maxWaiting} more waiting: retry later`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', aborted);
          resolve(this.take());
        },
      };
      const leave = (error: ServerBusyError): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', aborted);
        const at = this.queue.indexOf(entry);
        if (at >= 0) this.queue.splice(at, 1);
        reject(error);
      };
      const aborted = (): void => leave(notStarted());
      const timer = setTimeout(
        () =>
          leave(
            new ServerBusyError(
              `the query waited ${this.maxWaitMs} ms for its turn (${this.max} queries running or being answered): retry later`,
            ),
          ),
        this.maxWaitMs,
      );
      this.queue.push(entry);
      signal.addEventListener('abort', aborted, { once: true });
    });
  }

  private take(): ReleaseSlot {
    this.taken++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.taken--;
      for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
        next.grant();
        if (this.taken >= this.max) return;
      }
    };
  }
}

/**
 * Runs `answer` for a request in a slot of `slots`, taken for `signal` (the request's: it aborts
 * once the client went away, the answer is out, or the server stops) and held until that signal
 * aborts, so that an answer still being written keeps its slot; given back at once when `answer`
 * fails. A turn that comes once the signal aborted is refused, as a query still waiting is.
 */
export async function answerInSlot<T>(
  slots: QuerySlots,
  signal: AbortSignal,
  answer: () => Promise<T>,
): Promise<T> {
  const release = await slots.acquire(signal);
  // The turn came as the server began to stop (a stopping query gave its slot back before this
  // one's abort came).
  if (signal.aborted) {
    release();
    throw notStarted();
  }
  try {
    const answered = await answer();
    if (signal.aborted) release();
    else signal.addEventListener('abort', release, { once: true });
    return answered;
  } catch (error) {
    release();
    throw error;
  }
}

/**
 * Runs `work` in a slot of `slots` taken for `signal`, given back once `work` is done: for work
 * whose result is not an answer still to be written (a live sample shared by its watchers).
 */
export async function inSlot<T>(slots: QuerySlots, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  const release = await slots.acquire(signal);
  try {
    if (signal.aborted) throw notStarted();
    return await work();
  } finally {
    release();
  }
}

/** The refusal of a query whose turn came once the server began to stop. */
export function notStarted(): ServerBusyError {
  return new ServerBusyError('the query did not start: the server is stopping');
}
