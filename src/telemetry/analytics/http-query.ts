import { csvAnswer, jsonAnswer } from './answer-chunks.js';
import { QueryRefusedError } from './guard.js';
import {
  checkScopeLimits,
  type QueryFunction,
  type QueryResult,
  type QueryScope,
  scopeProcesses,
} from './query.js';

/** The body of `POST /analytics/query`. */
export interface QueryRequest extends Omit<QueryScope, 'begin' | 'end'> {
  readonly sql: string;
  readonly begin?: string;
  readonly end?: string;
  /**
   * `json` (default): `{ columns, rows, truncated, decodedBlocks, unreadable, unreadableBlocks }`;
   * `csv`: a header line, then the rows, with `X-Dorsal-Truncated` and, when blocks did not read,
   * `X-Dorsal-Unreadable-Blocks` and `X-Dorsal-Unreadable-Records` as headers.
   */
  readonly format?: 'json' | 'csv';
}

/** Limits a server puts on every query, whatever the request asks. */
export interface QueryLimits {
  /** Rows a query returns at most (a request may ask for fewer). */
  readonly maxRows: number;
  /** How long a query may run, in ms (a request may ask for less). */
  readonly timeoutMs: number;
}

/** An HTTP answer: a status, a content type and the body's text. */
export interface QueryAnswer {
  readonly status: number;
  readonly contentType: string;
  /**
   * The body's text, chunk by chunk (`ANSWER_CHUNK_CHARS` or so each), each made when it is asked
   * for: a server writes one once its client took the last, and holds the rows, not their text.
   * Joined, it is the whole body (`[...answer.body].join('')`).
   */
  readonly body: Iterable<string>;
  readonly headers?: Readonly<Record<string, string>>;
}

const FIELDS = new Set(['sql', 'process', 'processes', 'begin', 'end', 'maxRows', 'timeoutMs', 'format']);

/** Longest SQL text accepted. */
export const MAX_SQL_LENGTH = 64 * 1024;

/**
 * Parses and checks a `POST /analytics/query` body: JSON, an object with `sql` and optional
 * `process`, `begin`, `end` (RFC 3339), `maxRows`, `timeoutMs`, `format`. Anything else is a
 * `QueryRefusedError` naming what is wrong.
 */
export function parseQueryRequest(body: Uint8Array): QueryRequest {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    throw new QueryRefusedError('the body is not JSON: send { "sql": "SELECT …" }');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new QueryRefusedError('the body must be a JSON object: { "sql": "SELECT …" }');
  }
  const request = value as Record<string, unknown>;
  const unknown = Object.keys(request).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0)
    throw new QueryRefusedError(`unknown field ${JSON.stringify(unknown[0]).slice(0, 100)}`);
  if (typeof request.sql !== 'string') throw new QueryRefusedError('sql must be a string');
  if (request.sql.length > MAX_SQL_LENGTH)
    throw new QueryRefusedError(`sql is longer than ${MAX_SQL_LENGTH} characters`);
  for (const name of ['process', 'begin', 'end'] as const) {
    if (request[name] !== undefined && typeof request[name] !== 'string') {
      throw new QueryRefusedError(`${name} must be a string`);
    }
  }
  // Its shape is checked here, before anything else is done for the request.
  scopeProcesses(request as Pick<QueryRequest, 'process' | 'processes'>);
  checkScopeLimits(request as Pick<QueryRequest, 'maxRows' | 'timeoutMs'>);
  if (request.format !== undefined && request.format !== 'json' && request.format !== 'csv') {
    throw new QueryRefusedError("format must be 'json' or 'csv'");
  }
  return request as unknown as QueryRequest;
}

/** The time limit of a request's query: what it asks, within the server's. */
export function requestTimeoutMs(request: QueryRequest, limits: QueryLimits): number {
  return Math.min(request.timeoutMs ?? limits.timeoutMs, limits.timeoutMs);
}

/**
 * Answers a parsed request with `query`, within `limits`; `signal` (the request's: its client went
 * away, or the server stops) stops the query. Errors are thrown, for the server's error answers.
 */
export async function answerQuery(
  query: QueryFunction,
  request: QueryRequest,
  limits: QueryLimits,
  signal?: AbortSignal,
): Promise<QueryAnswer> {
  const scope: QueryScope = {
    ...(request.process === undefined ? {} : { process: request.process }),
    ...(request.processes === undefined ? {} : { processes: request.processes }),
    ...(request.begin === undefined ? {} : { begin: request.begin }),
    ...(request.end === undefined ? {} : { end: request.end }),
    maxRows: Math.min(request.maxRows ?? limits.maxRows, limits.maxRows),
    timeoutMs: requestTimeoutMs(request, limits),
    // Decoding included: the query holds a slot of the server meanwhile.
    timeLimit: 'whole',
    ...(signal === undefined ? {} : { signal }),
  };
  const result = await query(request.sql, scope);
  if (request.format === 'csv') {
    // The rows alone in the body: what they lack is said in headers.
    const { blocks, records } = result.unreadable;
    return {
      status: 200,
      contentType: 'text/csv; charset=utf-8',
      body: csvAnswer(result),
      headers: {
        'x-dorsal-truncated': String(result.truncated),
        ...(blocks === 0
          ? {}
          : { 'x-dorsal-unreadable-blocks': String(blocks), 'x-dorsal-unreadable-records': String(records) }),
      },
    };
  }
  return { status: 200, contentType: 'application/json', body: jsonAnswer(result) };
}

/** RFC 4180 CSV: a header line, then one line per row; a value with a comma, quote or line break quoted. */
export function toCsv(result: QueryResult): string {
  return [...csvAnswer(result)].join('');
}
