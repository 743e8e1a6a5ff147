import { setMaxListeners } from 'node:events';
import { QueryCancelledError, QueryNotReadyError } from './guard.js';

/**
 * Runs `work` with a signal that aborts when `outer` does (the client went away, the server
 * stops) or once `ms` have passed: the queries of a page, or of a live sample, stop there however
 * far they got (waiting for the lake to be read, or in their SQL), and so does a wait for the
 * analytics to open (`untilAborted`). Past the time limit, the refusal is a `QueryNotReadyError`
 * (503, `Retry-After`): what reading of the lake they began goes on for the next request.
 */
export async function withinDeadline<T>(
  ms: number,
  outer: AbortSignal,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const deadline = AbortSignal.timeout(ms);
  const signal = AbortSignal.any([outer, deadline]);
  // Every query of the work listens to it: a page asks about fifteen at once.
  setMaxListeners(0, signal);
  try {
    return await work(signal);
  } catch (error) {
    if (deadline.aborted && !outer.aborted) {
      throw new QueryNotReadyError(
        `its time limit of ${ms} ms passed before it was answered (reading the lake for it, if begun, goes on): ask again in a moment`,
      );
    }
    throw error;
  }
}

/**
 * `promise`, or a `QueryCancelledError` as soon as `signal` aborts (within `withinDeadline`: its
 * time limit passed, or its client left), whichever comes first: for what takes no signal, such
 * as opening the shared analytics on first use (DuckDB loading, the lake's metadata connecting).
 * What `promise` stands for goes on (an opening, for the next request).
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      // Its own failure, later, is nobody's to hear now.
      promise.catch(() => {});
      reject(
        new QueryCancelledError(
          'stopped before it was answered: its time limit passed, its client went away, or its server is stopping',
        ),
      );
    };
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error);
      },
    );
  });
}
