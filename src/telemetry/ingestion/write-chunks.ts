import type { ServerResponse } from 'node:http';
import { ConfigError } from '../../errors.js';
import { isTimerMs, TIMER_MS_RANGE } from '../../timer-ms.js';

/** Default write timeout: 10 s. */
export const DEFAULT_WRITE_TIMEOUT_MS = 10_000;

/** The write timeout of the options (default `DEFAULT_WRITE_TIMEOUT_MS`), or a `ConfigError` naming it. */
export function checkWriteTimeout(value: number | undefined): number {
  return timeoutOption('writeTimeoutMs', value, DEFAULT_WRITE_TIMEOUT_MS);
}

/** Default answer timeout: 5 min. */
export const DEFAULT_ANSWER_TIMEOUT_MS = 300_000;

/** The answer timeout of the options (default `DEFAULT_ANSWER_TIMEOUT_MS`), or a `ConfigError` naming it. */
export function checkAnswerTimeout(value: number | undefined): number {
  return timeoutOption('answerTimeoutMs', value, DEFAULT_ANSWER_TIMEOUT_MS);
}

/** Option `name`'s time in ms (`fallback` when not given): a whole number a timer can wait. */
function timeoutOption(name: string, value: number | undefined, fallback: number): number {
  const ms = value ?? fallback;
  if (!isTimerMs(ms)) throw new ConfigError(`${name} must be ${TIMER_MS_RANGE}, got ${String(value)}`);
  return ms;
}

/** How an answer's chunks are written. */
export interface WriteRules {
  /**
   * A client must take what was written within this many ms: the socket's buffer drained after
   * a chunk (`ANSWER_CHUNK_CHARS` at most of a query's answer), or the whole answer out after its
   * end. Otherwise its connection is cut. The system takes more of an answer only once a good part
   * of its own send buffer is free (a third of it, on Linux: up to about a megabyte or more), so
   * that a client must read that much within the timeout.
   */
  readonly timeoutMs: number;
  /** The answer must be all out by then (a `performance.now()`), or its connection is cut; default: no deadline. */
  readonly deadline?: number;
  /** Aborted: no more chunks are written, and the answer ends with those written (an endless stream, when the server stops). */
  readonly stop?: AbortSignal;
}

/**
 * Writes an answer's chunks as its client takes them, then ends it. The next chunk is asked for
 * only once the socket took the last (`write` said its buffer is below its high-water mark, or
 * 'drain' came), so that the server holds about a chunk of the answer however slowly it is read.
 * A client that takes nothing for `timeoutMs`, or that has not taken all by `deadline`, has its
 * connection cut (reset: it sees an error, not an end); a client that goes away ends the writing:
 * either way the source's `return` runs (a generator's `finally`). A source that throws cuts the
 * connection too (the client sees a cut answer, never a whole one that lacks its end), and the
 * error is thrown again.
 */
export async function writeChunks(
  res: ServerResponse,
  chunks: Iterable<string> | AsyncIterable<string>,
  rules: WriteRules,
): Promise<void> {
  try {
    for await (const chunk of chunks) {
      if (res.destroyed || rules.stop?.aborted === true) break;
      if (rules.deadline !== undefined && performance.now() >= rules.deadline) {
        cut(res);
        break;
      }
      if (!res.write(chunk)) await taken(res, 'drain', rules);
    }
  } catch (error) {
    cut(res);
    throw error;
  }
  if (res.destroyed) return;
  res.end();
  // Not ended by a stop: a whole answer is out, or cut.
  const deadline = rules.deadline === undefined ? {} : { deadline: rules.deadline };
  if (!res.writableFinished) await taken(res, 'finish', { timeoutMs: rules.timeoutMs, ...deadline });
}

/**
 * Cuts an answer: resets its connection (TCP; the system drops what it still held of the answer),
 * or destroys it (another socket). A client may still see a plain end of the connection (whether
 * the reset reaches it first is the systems'): an answer is framed so that it can tell a cut one
 * all the same (chunked without its last chunk, or shorter than its `content-length`).
 */
export function cut(res: ServerResponse): void {
  const socket = res.socket;
  if (socket !== null && !socket.destroyed && typeof socket.resetAndDestroy === 'function') {
    try {
      socket.resetAndDestroy();
    } catch {
      // Not a TCP socket (a pipe): destroyed below.
    }
  }
  res.destroy();
}

/**
 * Waits for `event` ('drain': the buffer is below its mark again; 'finish': all of the answer is
 * out), the answer to close, or `stop`; cuts the answer when `timeoutMs` pass first, or `deadline` comes.
 */
function taken(res: ServerResponse, event: 'drain' | 'finish', rules: WriteRules): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      res.off(event, done);
      res.off('close', done);
      rules.stop?.removeEventListener('abort', done);
      resolve();
    };
    const left = rules.deadline === undefined ? rules.timeoutMs : rules.deadline - performance.now();
    const timer = setTimeout(
      () => {
        cut(res);
        done();
      },
      Math.max(0, Math.min(rules.timeoutMs, left)),
    );
    res.once(event, done);
    res.once('close', done);
    if (rules.stop?.aborted === true) done();
    else rules.stop?.addEventListener('abort', done, { once: true });
  });
}
