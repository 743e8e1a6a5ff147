import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, DorsalError } from '../../errors.js';
import { isTimerMs, TIMER_MS_RANGE } from '../../timer-ms.js';
import { LakeNotFoundError } from '../errors.js';
import { QueryCancelledError, QueryNotReadyError, QueryRefusedError, QueryTimeoutError } from './guard.js';
import type { QueryFunction, QueryResult, QueryScope, UnreadableBlock } from './query.js';
import { AnalyticsQuestions } from './questions.js';

/** Options of `RemoteAnalytics`. */
export interface RemoteAnalyticsOptions {
  /** The server, e.g. `http://127.0.0.1:8081` (`dorsal serve`). */
  readonly url: string;
  /** Its API key (default: the `DORSAL_KEY` environment variable). */
  readonly key?: string;
  /**
   * How long a query keeps asking while the server says to ask again later (503 with
   * `Retry-After`: it is busy, `DORSAL_BUSY`, or it was still reading the lake for the query,
   * decoding its blocks, when the query's time limit passed, `DORSAL_QUERY_NOT_READY`), in ms
   * (default 600 000; 0: never). Each wait is what the server says, from 1 to 30 s; the scope's
   * `signal` ends it.
   */
  readonly retryForMs?: number;
  /** Told before each such wait: the server's refusal, and how long the wait is (ms). */
  readonly onRetry?: (refusal: DorsalError, waitMs: number) => void;
  /**
   * Each try's whole time, from the request to its answer's last byte, in ms (default 300 000: a
   * server's default limits, its query's turn and run and its answer's writing, fit well within;
   * Node's HTTP client waits 300 s at most for an answer's head, whatever this says).
   * Past it the try ends with a `DorsalError` `DORSAL_REMOTE_TIMEOUT`: a server that accepts and
   * never answers, or answers a byte now and then, held a query for good.
   */
  readonly timeoutMs?: number;
}

/** The refusals a server asks to retry later that a query asks again (see `retryForMs`). */
const RETRIED = new Set(['DORSAL_BUSY', 'DORSAL_QUERY_NOT_READY']);
/** Each try's whole time by default, in ms (see `timeoutMs`). */
const DEFAULT_TIMEOUT_MS = 300_000;
/** Bounds of a wait between tries, in ms, whatever `Retry-After` says. */
const MIN_RETRY_WAIT_MS = 1000;
const MAX_RETRY_WAIT_MS = 30_000;

/**
 * The analytics of a `dorsal serve` over HTTP (`POST /analytics/query`): the same `query`,
 * `percentiles`, `tree` and `slowestTrees` as the embedded `Analytics`, the SQL run where the
 * data is. A refusal comes back as the error the server raised (`QueryRefusedError`,
 * `QueryTimeoutError`, `QueryNotReadyError`, `LakeNotFoundError`), others as a `DorsalError` with
 * the server's code; one that says to ask again later is asked again for a while (`retryForMs`).
 *
 * @example
 * const analytics = new RemoteAnalytics({ url: 'http://127.0.0.1:8081' });
 * const rows = await analytics.percentiles({ process });
 */
export class RemoteAnalytics extends AnalyticsQuestions {
  private readonly endpoint: string;
  private readonly key: string | undefined;
  private readonly retryForMs: number;
  private readonly onRetry: ((refusal: DorsalError, waitMs: number) => void) | undefined;
  private readonly timeoutMs: number;

  constructor(options: RemoteAnalyticsOptions) {
    super();
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!isTimerMs(timeoutMs)) {
      throw new ConfigError(
        `RemoteAnalytics option 'timeoutMs' must be ${TIMER_MS_RANGE}, got ${String(options.timeoutMs)}`,
      );
    }
    this.timeoutMs = timeoutMs;
    const retryForMs = options.retryForMs ?? 600_000;
    if (!(typeof retryForMs === 'number' && retryForMs >= 0 && retryForMs <= 2 ** 31 - 1)) {
      throw new ConfigError(
        `RemoteAnalytics option 'retryForMs' must be a number of ms from 0 to ${2 ** 31 - 1}, got ${String(retryForMs)}`,
      );
    }
    this.retryForMs = retryForMs;
    this.onRetry = options.onRetry;
    // Under the URL's path, as a server behind a proxy at /dorsal/ is reached: a path given keeps.
    const base = options.url.endsWith('/') ? options.url : `${options.url}/`;
    this.endpoint = new URL('analytics/query', base).toString();
    this.key = options.key ?? process.env.DORSAL_KEY;
  }

  readonly query: QueryFunction = async (sql, scope = {}) => {
    const until = performance.now() + this.retryForMs;
    for (;;) {
      const answer = await this.ask(sql, scope);
      if (!(answer instanceof LaterRefusal)) return answer;
      const left = until - performance.now();
      if (left <= 0) throw answer.error;
      const wait = Math.min(answer.waitMs, left);
      this.onRetry?.(answer.error, wait);
      try {
        await sleep(wait, undefined, scope.signal === undefined ? {} : { signal: scope.signal });
      } catch {
        throw stopped();
      }
    }
  };

  /** One try: the answer, a refusal to retry later, or the error it is. */
  private async ask(sql: string, scope: QueryScope): Promise<QueryResult | LaterRefusal> {
    const time = (t: string | Date | undefined) => (t instanceof Date ? t.toISOString() : t);
    // The signal is this side's: it aborts the request (the server then stops the query). The
    // time limit's reach is the server's to say: its queries are bounded whole.
    const { signal, timeLimit: _timeLimit, ...sent } = scope;
    // The try's own deadline, and the caller's signal: either ends the request and its answer.
    const began = performance.now();
    const ended = new AbortController();
    const timer = setTimeout(() => ended.abort(), this.timeoutMs);
    const stop = () => ended.abort();
    if (signal?.aborted === true) stop();
    signal?.addEventListener('abort', stop, { once: true });
    /** The error a request or its answer failed with, as this side tells it. */
    const failure = (error: unknown): unknown => {
      if (signal?.aborted === true) return stopped();
      if (ended.signal.aborted || isFetchTimeout(error)) return this.timedOut(performance.now() - began);
      return error;
    };
    try {
      let response: Response;
      try {
        response = await fetch(this.endpoint, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(this.key === undefined ? {} : { authorization: `Bearer ${this.key}` }),
          },
          body: JSON.stringify({ sql, ...sent, begin: time(scope.begin), end: time(scope.end) }),
          signal: ended.signal,
        });
      } catch (error) {
        throw failure(error);
      }
      let text: string;
      try {
        text = await response.text();
      } catch (error) {
        const told = failure(error);
        if (told !== error) throw told;
        // The answer began and did not end: the server cut it (see `writeChunks`). Not a server
        // that cannot be reached, which is what fetch's own TypeError would otherwise be read as.
        throw new DorsalError(
          'DORSAL_REMOTE',
          `the server cut its answer (${response.status}) before its end: it was read too slowly for the server's --write-timeout or --answer-timeout, or the server failed while writing it (${error instanceof Error ? error.message : String(error)}); retry, or ask for fewer rows`,
          { cause: error },
        );
      }
      return this.answer(response, text);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
    }
  }

  /**
   * The try that outlived `timeoutMs`, or Node's HTTP client's own limits (300 s for the answer's
   * head, and between two pieces of it): said with the time it took, not a limit it did not reach.
   */
  private timedOut(tookMs: number): DorsalError {
    const own =
      tookMs < this.timeoutMs - 1
        ? ` (Node's HTTP client's own limit: a longer timeoutMs does not help past it)`
        : '';
    return new DorsalError(
      'DORSAL_REMOTE_TIMEOUT',
      `no whole answer from ${new URL(this.endpoint).origin} within ${Math.round(tookMs)} ms${own}: a server that does not answer (is it a dorsal serve?), or a query or an answer slower than that (a longer timeout: RemoteAnalytics' timeoutMs, the CLI's --timeout)`,
    );
  }

  /** A whole answer: the query's result, a refusal to retry later, or the error it is. */
  private answer(response: Response, text: string): QueryResult | LaterRefusal {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new DorsalError('DORSAL_REMOTE', `the server answered ${response.status} without JSON`);
    }
    if (response.ok) {
      if (!isQueryResult(body)) {
        throw new DorsalError(
          'DORSAL_REMOTE',
          `the server answered ${response.status} with JSON that is no query answer ({ columns, rows, … }): is it a dorsal serve?`,
        );
      }
      // A server of an older dorsal does not list unreadable blocks.
      const listed = Array.isArray(body.unreadableBlocks) ? body.unreadableBlocks : [];
      const unreadable =
        typeof body.unreadable === 'object' && body.unreadable !== null
          ? body.unreadable
          : { blocks: listed.length, records: listed.reduce((n, b) => n + b.objectCount, 0) };
      return { ...body, unreadable, unreadableBlocks: listed };
    }
    const error =
      typeof body === 'object' && body !== null
        ? ((body as { error?: { code?: string; message?: string } }).error ?? {})
        : {};
    const message = error.message ?? `the server answered ${response.status}`;
    if (response.status === 503 && error.code !== undefined && RETRIED.has(error.code)) {
      const refusal =
        error.code === 'DORSAL_QUERY_NOT_READY'
          ? new QueryNotReadyError(message)
          : new DorsalError(error.code, message);
      return new LaterRefusal(refusal, retryAfterMs(response.headers.get('retry-after')));
    }
    switch (error.code) {
      case 'DORSAL_QUERY_REFUSED':
        throw new QueryRefusedError(message);
      case 'DORSAL_QUERY_TIMEOUT':
        throw new QueryTimeoutError(message);
      case 'DORSAL_QUERY_CANCELLED':
        throw new QueryCancelledError(message);
      case 'DORSAL_LAKE_NOT_FOUND':
        throw new LakeNotFoundError(message);
      default:
        throw new DorsalError(error.code ?? 'DORSAL_REMOTE', message);
    }
  }
}

/** A server's refusal that says to ask again after `waitMs`. */
class LaterRefusal {
  constructor(
    readonly error: DorsalError,
    readonly waitMs: number,
  ) {}
}

/** `Retry-After` in seconds as ms, within the bounds of a wait (an HTTP date or nothing: the least). */
function retryAfterMs(header: string | null): number {
  const seconds = header === null || !/^\d+$/.test(header.trim()) ? 0 : Number(header.trim());
  return Math.min(MAX_RETRY_WAIT_MS, Math.max(MIN_RETRY_WAIT_MS, seconds * 1000));
}

function stopped(): QueryCancelledError {
  return new QueryCancelledError('the query was stopped before its end: its signal aborted');
}

/** A `POST /analytics/query` answer, as far as its readers rely on it. */
function isQueryResult(body: unknown): body is QueryResult {
  if (typeof body !== 'object' || body === null) return false;
  const { columns, rows, unreadableBlocks } = body as Partial<QueryResult>;
  return (
    Array.isArray(columns) &&
    columns.every((c) => typeof c === 'object' && c !== null && typeof c.name === 'string') &&
    Array.isArray(rows) &&
    rows.every((r) => Array.isArray(r)) &&
    // A server of an older dorsal lists none; one that lists them lists blocks (a null in the
    // list failed as a TypeError, told as a server that cannot be reached).
    (unreadableBlocks === undefined ||
      (Array.isArray(unreadableBlocks) && unreadableBlocks.every(isUnreadableBlock)))
  );
}

function isUnreadableBlock(block: unknown): boolean {
  if (typeof block !== 'object' || block === null) return false;
  const { processId, streamId, blockId, objectCount, error } = block as Partial<UnreadableBlock>;
  return (
    [processId, streamId, blockId, error].every((text) => typeof text === 'string') &&
    typeof objectCount === 'number' &&
    Number.isSafeInteger(objectCount) &&
    objectCount >= 0
  );
}

/** Whether fetch failed on undici's own timeouts (a longer `timeoutMs` than its 300 s). */
function isFetchTimeout(error: unknown): boolean {
  const code = (error as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}
