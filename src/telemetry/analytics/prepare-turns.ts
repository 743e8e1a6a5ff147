import { QueryCancelledError } from './guard.js';

/**
 * Turns to prepare (bind, plan and optimize) a statement on the query database: `max` at once. A
 * prepare is one task of libuv's thread pool (4 threads unless `UV_THREADPOOL_SIZE` says
 * otherwise) from its start to its end, which the server's file I/O (the lake's blob writes, the
 * ingestion) and every other DuckDB call (connecting, parsing, each step of a query's execution)
 * share; and DuckDB checks its interrupt seldom in some bindings (a query stopped at its time limit
 * may bind on for seconds). So a few hostile queries, each binding as long as it can, hold `max`
 * threads at most, and the rest stay free.
 *
 * A turn is held until its prepare really ends, not until its query stops waiting for it; a query
 * waiting for a turn stops when its `signal` aborts (its time limit, its client gone).
 */
export class PrepareTurns {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly max: number) {}

  /** A turn, now or once one ends: resolves with the call that ends it (once; later calls do nothing). */
  acquire(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(stopped());
    if (this.running < this.max) {
      this.running++;
      return Promise.resolve(this.ender());
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal.removeEventListener('abort', abort);
        resolve(this.ender());
      };
      const abort = () => {
        const at = this.waiting.indexOf(grant);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(stopped());
      };
      signal.addEventListener('abort', abort, { once: true });
      this.waiting.push(grant);
    });
  }

  /** Prepares under way now. */
  get inUse(): number {
    return this.running;
  }

  private ender(): () => void {
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      // Handed to the next waiting, which counts in the turn this one held.
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.running--;
    };
  }
}

function stopped(): QueryCancelledError {
  return new QueryCancelledError('stopped while it waited for its turn to be prepared');
}

/**
 * Prepares at once on the query database: half of libuv's pool (2 of the default 4), so that
 * the server's file I/O and the other DuckDB calls keep the other half however long the prepares
 * take.
 */
export function preparesAtOnce(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE);
  const threads = Number.isSafeInteger(pool) && pool > 0 ? Math.min(pool, 1024) : 4;
  return Math.max(1, Math.floor(threads / 2));
}
