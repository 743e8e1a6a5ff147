import { DorsalError } from '../../errors.js';
import { LakeNotFoundError } from '../errors.js';
import { QueryCancelledError, QueryRefusedError, QueryTimeoutError } from './guard.js';
import type { QueryFunction, QueryResult } from './query.js';
import { AnalyticsQuestions } from './questions.js';

/** Options of `RemoteAnalytics`. */
export interface RemoteAnalyticsOptions {
  /** The server, e.g. `http://127.0.0.1:8081` (`dorsal serve`). */
  readonly url: string;
  /** Its API key (default: the `DORSAL_KEY` environment variable). */
  readonly key?: string;
}

/**
 * The analytics of a `dorsal serve` over HTTP (`POST /analytics/query`): the same `query`,
 * `percentiles`, `tree` and `slowestTrees` as the embedded `Analytics`, the SQL run where the
 * data is. A refusal comes back as the error the server raised (`QueryRefusedError`,
 * `QueryTimeoutError`, `LakeNotFoundError`), others as a `DorsalError` with the server's code.
 *
 * @example
 * const analytics = new RemoteAnalytics({ url: 'http://127.0.0.1:8081' });
 * const rows = await analytics.percentiles({ process });
 */
export class RemoteAnalytics extends AnalyticsQuestions {
  private readonly endpoint: string;
  private readonly key: string | undefined;

  constructor(options: RemoteAnalyticsOptions) {
    super();
    // Under the URL's path, as a server behind a proxy at /dorsal/ is reached: a path given keeps.
    const base = options.url.endsWith('/') ? options.url : `${options.url}/`;
    this.endpoint = new URL('analytics/query', base).toString();
    this.key = options.key ?? process.env.DORSAL_KEY;
  }

  readonly query: QueryFunction = async (sql, scope = {}) => {
    const time = (t: string | Date | undefined) => (t instanceof Date ? t.toISOString() : t);
    // The signal is this side's: it aborts the request (the server then stops the query).
    const { signal, ...sent } = scope;
    const stopped = () => new QueryCancelledError('the query was stopped before its end: its signal aborted');
    let response: Response;
    try {
      response = await fetch(this.endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.key === undefined ? {} : { authorization: `Bearer ${this.key}` }),
        },
        body: JSON.stringify({ sql, ...sent, begin: time(scope.begin), end: time(scope.end) }),
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (error) {
      if (signal?.aborted === true) throw stopped();
      throw error;
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      if (signal?.aborted === true) throw stopped();
      // The answer began and did not end: the server cut it (see `writeChunks`). Not a server
      // that cannot be reached, which is what fetch's own TypeError would otherwise be read as.
      throw new DorsalError(
        'DORSAL_REMOTE',
        `the server cut its answer (${response.status}) before its end: it was read too slowly for the server's --write-timeout or --answer-timeout, or the server failed while writing it (${error instanceof Error ? error.message : String(error)}); retry, or ask for fewer rows`,
        { cause: error },
      );
    }
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
  };
}

/** A `POST /analytics/query` answer, as far as its readers rely on it. */
function isQueryResult(body: unknown): body is QueryResult {
  if (typeof body !== 'object' || body === null) return false;
  const { columns, rows } = body as Partial<QueryResult>;
  return (
    Array.isArray(columns) &&
    columns.every((c) => typeof c === 'object' && c !== null && typeof c.name === 'string') &&
    Array.isArray(rows) &&
    rows.every((r) => Array.isArray(r))
  );
}
