import type { IncomingMessage, ServerResponse } from 'node:http';
import { positiveOption } from '../../options.js';
import { HostNotAllowedError, ServerBusyError, UnsupportedMediaTypeError } from '../errors.js';
import { KeyGate } from '../keys/key-gate.js';
import { loopbackHostAllowed } from '../keys/loopback.js';
import { DEFAULT_RECORD_BODY_LIMIT } from '../wire/index.js';
import { type BodyRules, readBody } from './body.js';
import { ByteBudget } from './byte-budget.js';
import type { IngestionService, InsertResult } from './service.js';
import { answerFor, type ErrorAnswer } from './status.js';
import { checkAnswerTimeout, checkWriteTimeout, writeChunks } from './write-chunks.js';

/** Options of the HTTP routes. */
/**
 * `answer` with each of `paths` in its message said as `…`, where it stands as a whole path (at
 * its end, or before a `/`, a quote or a space: `/srv/lake` hides in `/srv/lake/x`, not in
 * `/srv/lake2`). A path of fewer than two parts (`/`, `/srv`) is not hidden: it tells little,
 * and its text is in many others.
 */
function hidePaths(answer: ErrorAnswer, paths: readonly string[]): ErrorAnswer {
  let message = answer.body.error.message;
  for (const path of paths) {
    if (path.split(/[/\\]/).filter((part) => part !== '').length < 2) continue;
    const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    message = message.replace(new RegExp(`${escaped}(?=$|[/\\\\'"\\s,;:)])`, 'g'), '…');
  }
  if (message === answer.body.error.message) return answer;
  return { ...answer, body: { error: { ...answer.body.error, message } } };
}

export interface IngestionRoutesOptions {
  /** Largest request body in bytes (default 100 MiB); larger gets 413. */
  readonly bodyLimit?: number;
  /** Largest body of a process or stream record (default 1 MiB, at most `bodyLimit`). */
  readonly recordBodyLimit?: number;
  /**
   * A request's headers must arrive within this many ms, and its body must bring 16 KiB (or its
   * end) in every such window; otherwise 408 (default 10 s).
   */
  readonly stallTimeoutMs?: number;
  /**
   * Bytes of bodies beyond their first MiB held at once, taken as they arrive (default 256 MiB, at
   * least `bodyLimit`); a large body that does not fit gets 503 with `Retry-After`.
   */
  readonly largeBodyBudgetBytes?: number;
  /**
   * Inserts under way at most, from the start of their body to the lake's answer, those whose
   * client has gone included (default 512, `startIngestionServer`'s connections at most); more
   * get 503 with `Retry-After` before their body is read. An insert goes on when its client hangs
   * up (its block may be stored already), holding its body: against a slow lake, clients that
   * post, hang up and post again held a gigabyte past the connection cap.
   */
  readonly maxInserts?: number;
  /**
   * An answer written in chunks (a query's, an event stream) is written as its client takes it:
   * a client that takes none of what was written for this many ms (the socket's buffer does not
   * drain) has its connection cut, and what its answer held is freed (default 10 s).
   */
  readonly writeTimeoutMs?: number;
  /**
   * An answer written in chunks (a query's; not an event stream, which has no end) must be all out
   * within this many ms of its first chunk, however steadily its client reads: past it, its
   * connection is cut (default 5 min).
   */
  readonly answerTimeoutMs?: number;
  /**
   * Answer only requests whose `Host` is a loopback name or address (403 otherwise): for a server
   * listening on loopback, against DNS rebinding (`startIngestionServer` sets it then).
   */
  readonly loopbackHostsOnly?: boolean;
  /**
   * With `loopbackHostsOnly`, names a `Host` may also be (as `hostName` writes them): the name
   * the server listens on when it resolves to loopback (`startIngestionServer` sets it then).
   */
  readonly loopbackNames?: readonly string[];
  /** How long the lake's answers about API keys are trusted (default 1000 ms). */
  readonly keyCacheMs?: number;
  /** Seconds announced in `Retry-After` when the lake is unavailable (default 1). */
  readonly retryAfterSeconds?: number;
  /** Called with errors that are not the client's fault (500s), e.g. to log them. */
  readonly onInternalError?: (error: unknown) => void;
  /**
   * Directories of the server's own (its lake, its analytics cache): an error's message that names
   * one (DuckDB's quote the partition file they read) says `…` for it to a client.
   */
  readonly hiddenPaths?: readonly string[];
  /**
   * Called with what failed when the lake could not give its API keys (its database is down), at
   * most once per 10 s: such a request is refused with 503 and no detail, since its client has
   * not shown a valid key yet.
   */
  readonly onLakeUnavailable?: (error: unknown) => void;
  /** Routes served beside ingestion's (the analytics' query), behind the same Host and key checks. */
  readonly routes?: readonly ExtraRoute[];
  /** Answer the ingestion routes (default true); false serves only `routes` (an analytics server). */
  readonly ingest?: boolean;
  /** Aborted when the server stops: ends the streamed answers still open (event streams). */
  readonly signal?: AbortSignal;
}

/** What an extra route knows of its request besides its body. */
export interface RouteRequest {
  /** The parameters of the URL's query string. */
  readonly query: URLSearchParams;
  /** Aborted once the client went away or the server stops: a streamed answer ends then. */
  readonly signal: AbortSignal;
}

/** An extra route's whole answer. */
export interface RouteAnswer {
  readonly status: number;
  readonly contentType: string;
  /**
   * The body: its text, or its text chunk by chunk (sent chunked, each chunk asked for once the
   * client took the last, within the server's write timeout; a large answer should come so).
   */
  readonly body: string | Iterable<string>;
  /** More headers, by lowercase name (a route's own, `x-…`). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** An extra route's answer sent as it comes (e.g. `text/event-stream`), chunk by chunk, until it ends or the request's signal aborts. */
export interface RouteStream {
  readonly status: number;
  readonly contentType: string;
  readonly stream: AsyncIterable<string>;
}

/**
 * A route another service adds to the server, e.g. `POST /analytics/query`. Its body is read
 * under the same stall rules as ingestion's; what `handle` throws is answered as ingestion's
 * errors are (a `DorsalError` by its code, anything else 500).
 */
export interface ExtraRoute {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** The media type a body must have (e.g. `application/json`); other types get 415. */
  readonly mediaType: string;
  /** Largest body in bytes; larger gets 413. */
  readonly bodyLimit: number;
  handle(body: Uint8Array, request: RouteRequest): Promise<RouteAnswer | RouteStream>;
  /**
   * A page for people (default false): a request without a valid key is challenged for HTTP Basic
   * credentials (any user name, the API key as password), which a browser asks for and then sends.
   */
  readonly browser?: boolean;
  /** Called once the server stopped answering, before its lake closes. */
  close?(): Promise<void>;
}

/** Default body limit: 100 MiB. */
export const DEFAULT_BODY_LIMIT = 100 * 1024 * 1024;
export { DEFAULT_RECORD_BODY_LIMIT };
/** Default stall timeout: 10 s. */
export const DEFAULT_STALL_TIMEOUT_MS = 10_000;
/** Default bytes of large bodies held at once: 256 MiB. */
export const DEFAULT_LARGE_BODY_BUDGET_BYTES = 256 * 1024 * 1024;
/** Default inserts under way at most (see `maxInserts`): a server's default connections. */
export const DEFAULT_MAX_INSERTS = 512;

type Insert = (service: IngestionService, body: Uint8Array) => Promise<InsertResult>;

/** An insert route: what it calls, and whether its body is a block (larger limit) or a record. */
interface InsertRoute {
  readonly insert: Insert;
  readonly block: boolean;
}

const INSERTS: Readonly<Record<string, InsertRoute>> = {
  '/ingestion/insert_process': { insert: (s, body) => s.insertProcess(body), block: false },
  '/ingestion/insert_stream': { insert: (s, body) => s.insertStream(body), block: false },
  '/ingestion/insert_block': { insert: (s, body) => s.insertBlock(body), block: true },
  '/ingestion/insert_drops': { insert: (s, body) => s.insertDrops(body), block: false },
};

/** What a route resolved to: a status and a JSON body (or, from an extra route, a body as it is). */
interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly retry?: boolean;
  readonly raw?: {
    readonly contentType: string;
    readonly text: string | Iterable<string>;
    readonly headers?: Readonly<Record<string, string>>;
  };
  readonly stream?: { readonly contentType: string; readonly chunks: AsyncIterable<string> };
}

/** The body limits of the options, defaults filled in; a `ConfigError` for one that is no positive whole number. */
export function checkBodyLimits(options: IngestionRoutesOptions): {
  bodyLimit: number;
  recordBodyLimit: number;
  largeBodyBudgetBytes: number;
} {
  const bodyLimit = positiveOption('bodyLimit', options.bodyLimit, DEFAULT_BODY_LIMIT);
  return {
    bodyLimit,
    recordBodyLimit: Math.min(
      bodyLimit,
      positiveOption('recordBodyLimit', options.recordBodyLimit, DEFAULT_RECORD_BODY_LIMIT),
    ),
    largeBodyBudgetBytes: Math.max(
      positiveOption('largeBodyBudgetBytes', options.largeBodyBudgetBytes, DEFAULT_LARGE_BODY_BUDGET_BYTES),
      bodyLimit,
    ),
  };
}

/**
 * The HTTP routes of the ingestion service as a request listener for `http.createServer`:
 * `POST /ingestion/insert_process|insert_stream|insert_block|insert_drops` (CBOR bodies), `GET /health`,
 * `GET /ready`. Every answer is JSON; errors are `{ error: { code, message } }`. Once the lake
 * has an API key, every route but `/health` needs `Authorization: Bearer KEY`.
 */
export function ingestionRoutes(
  service: IngestionService,
  options: IngestionRoutesOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const { bodyLimit, recordBodyLimit, largeBodyBudgetBytes } = checkBodyLimits(options);
  const stallMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  const largeBodies = new ByteBudget(largeBodyBudgetBytes);
  const rules = {
    block: { limit: bodyLimit, stallMs, largeBodies },
    record: {
      limit: recordBodyLimit,
      stallMs,
      largeBodies,
    },
  };
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const writeMs = checkWriteTimeout(options.writeTimeoutMs);
  const answerMs = checkAnswerTimeout(options.answerTimeoutMs);
  const guard: Guard = {
    keys: new KeyGate(service.lake.metadata, options.keyCacheMs, (error) =>
      options.onLakeUnavailable?.(error),
    ),
    loopbackHostsOnly: options.loopbackHostsOnly === true,
    loopbackNames: options.loopbackNames ?? [],
    ingest: options.ingest !== false,
  };
  const extra = new Map((options.routes ?? []).map((r) => [r.path, r]));
  const inserts: InsertCount = {
    max: positiveOption('maxInserts', options.maxInserts, DEFAULT_MAX_INSERTS),
    underWay: 0,
  };
  return (req, res) => {
    const gone = new AbortController();
    const stop = () => gone.abort();
    res.once('close', stop);
    options.signal?.addEventListener('abort', stop, { once: true });
    res.once('close', () => options.signal?.removeEventListener('abort', stop));
    if (options.signal?.aborted === true) stop();
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const challenge = extra.get(path)?.browser === true ? 'Basic realm="dorsal", charset="UTF-8"' : undefined;
    route(service, req, rules, guard, extra, gone.signal, inserts)
      .catch((error: unknown): Answer => {
        const answer = answerFor(error);
        if (answer.status === 500) options.onInternalError?.(error);
        return hidePaths(answer, options.hiddenPaths ?? []);
      })
      .then((answer) =>
        send(req, res, answer, {
          retryAfter,
          writeMs,
          answerMs,
          signal: gone.signal,
          challenge,
          stopping: options.signal?.aborted === true,
        }),
      )
      .catch((error: unknown) => {
        options.onInternalError?.(error);
        res.destroy();
      });
  };
}

/** Inserts under way (see `IngestionRoutesOptions.maxInserts`). */
interface InsertCount {
  readonly max: number;
  underWay: number;
}

/** What every request passes before its route: its `Host`, then (except `/health`) its key. */
interface Guard {
  readonly keys: KeyGate;
  readonly loopbackHostsOnly: boolean;
  readonly loopbackNames: readonly string[];
  readonly ingest: boolean;
}

async function route(
  service: IngestionService,
  req: IncomingMessage,
  rules: { readonly block: BodyRules; readonly record: BodyRules },
  guard: Guard,
  extra: ReadonlyMap<string, ExtraRoute>,
  signal: AbortSignal,
  inserts: InsertCount,
): Promise<Answer> {
  if (guard.loopbackHostsOnly && !loopbackHostAllowed(req.headers.host, guard.loopbackNames)) {
    throw new HostNotAllowedError(req.headers.host ?? '');
  }
  const url = req.url ?? '/';
  const at = url.indexOf('?');
  const path = at < 0 ? url : url.slice(0, at);
  const search = at < 0 ? '' : url.slice(at + 1);
  if (path === '/health') {
    return req.method === 'GET' ? { status: 200, body: { status: 'ok' } } : methodNotAllowed('GET');
  }
  // Before anything is read or looked up: a client without a valid key learns nothing else.
  // Basic credentials only for reading a page: a browser would send them with another site's POST too.
  const page = extra.get(path)?.browser === true && (req.method === 'GET' || req.method === 'HEAD');
  await guard.keys.check(req.headers.authorization, page);
  const insert = guard.ingest ? INSERTS[path] : undefined;
  if (insert !== undefined) {
    if (req.method !== 'POST') return methodNotAllowed('POST');
    const type = req.headers['content-type'];
    if (type?.split(';')[0]?.trim().toLowerCase() !== 'application/cbor')
      throw new UnsupportedMediaTypeError(type);
    if (inserts.underWay >= inserts.max) {
      throw new ServerBusyError(
        `the server is storing as many requests as it takes at once (${inserts.max}); retry this one later`,
      );
    }
    inserts.underWay++;
    try {
      const body = await readBody(req, insert.block ? rules.block : rules.record);
      try {
        return { status: 200, body: await insert.insert(service, body.bytes) };
      } finally {
        body.release();
      }
    } finally {
      inserts.underWay--;
    }
  }
  const other = extra.get(path);
  if (other !== undefined) {
    if (req.method !== other.method) return methodNotAllowed(other.method);
    const request: RouteRequest = { query: new URLSearchParams(search), signal };
    // A streamed answer lasts as long as its key: checked again while it streams.
    const keyStill = () => guard.keys.check(req.headers.authorization, page);
    if (other.method === 'GET') return rawAnswer(await other.handle(new Uint8Array(0), request), keyStill);
    const type = req.headers['content-type'];
    if (type?.split(';')[0]?.trim().toLowerCase() !== other.mediaType)
      throw new UnsupportedMediaTypeError(type, other.mediaType);
    const body = await readBody(req, { ...rules.record, limit: other.bodyLimit });
    try {
      return rawAnswer(await other.handle(body.bytes, request), keyStill);
    } finally {
      body.release();
    }
  }
  if (path === '/ready') {
    if (req.method !== 'GET') return methodNotAllowed('GET');
    await service.ready();
    return { status: 200, body: { status: 'ready' } };
  }
  return {
    status: 404,
    body: { error: { code: 'DORSAL_NOT_FOUND', message: `no route ${req.method} ${path.slice(0, 100)}` } },
  };
}

function rawAnswer(answer: RouteAnswer | RouteStream, keyStill: () => Promise<void>): Answer {
  if ('stream' in answer) {
    return {
      status: answer.status,
      body: undefined,
      stream: { contentType: answer.contentType, chunks: whileKeyValid(answer.stream, keyStill) },
    };
  }
  return {
    status: answer.status,
    body: undefined,
    raw: {
      contentType: answer.contentType,
      text: answer.body,
      ...(answer.headers === undefined ? {} : { headers: answer.headers }),
    },
  };
}

function methodNotAllowed(allowed: string): Answer {
  return { status: 405, body: { error: { code: 'DORSAL_METHOD_NOT_ALLOWED', message: `use ${allowed}` } } };
}

/** How an answer is sent, besides the answer. */
interface Sending {
  /** Seconds announced in `Retry-After` (503). */
  readonly retryAfter: string;
  /** The write timeout of answers written in chunks, in ms. */
  readonly writeMs: number;
  /** The time an answer written in chunks (not a stream) has to be all out, in ms. */
  readonly answerMs: number;
  /** Aborted once the client went away or the server stops: a streamed answer ends then. */
  readonly signal: AbortSignal;
  /** The `WWW-Authenticate` of a 401 to a browser's page (default: Bearer). */
  readonly challenge: string | undefined;
  /** The server began to stop before the answer was sent. */
  readonly stopping: boolean;
}

async function send(req: IncomingMessage, res: ServerResponse, answer: Answer, how: Sending): Promise<void> {
  if (res.headersSent || res.destroyed) return;
  if (answer.stream !== undefined) return sendStream(res, answer.status, answer.stream, how);
  const text = answer.raw?.text ?? JSON.stringify(answer.body);
  // A body in chunks goes chunked (its length is known once it is all written), but HTTP/1.0 has
  // no chunks: there the end of the connection would end the body, and a cut answer would read as
  // a whole one. It gets its chunks all at once then, and their length (a query's answer is bounded).
  let body = text;
  let length = typeof text === 'string' ? Buffer.byteLength(text) : undefined;
  if (typeof text !== 'string' && req.httpVersion === '1.0') {
    const all = [...text];
    body = all;
    length = byteLength(all);
  }
  res.statusCode = answer.status;
  res.setHeader('content-type', answer.raw?.contentType ?? 'application/json');
  if (length !== undefined) res.setHeader('content-length', length);
  for (const [name, value] of Object.entries(answer.raw?.headers ?? {})) res.setHeader(name, value);
  if (answer.retry === true) res.setHeader('retry-after', how.retryAfter);
  if (answer.status === 401) res.setHeader('www-authenticate', how.challenge ?? 'Bearer realm="dorsal"');
  // A server that stops closes each connection once its answer is out: a connection busy when
  // the server began to stop is not idle then, and would otherwise stay open, and the server with it.
  if (how.stopping) res.setHeader('connection', 'close');
  // A body not read to its end (refused, timed out) leaves the connection unusable: close it.
  if (!req.complete) {
    res.setHeader('connection', 'close');
    res.once('finish', () => req.socket.destroySoon());
  }
  if (typeof body === 'string') res.end(body);
  // Not ended when the server stops (the answer is whole or nothing), but within the write
  // timeout, and the answer timeout from now.
  else await writeChunks(res, body, { timeoutMs: how.writeMs, deadline: performance.now() + how.answerMs });
}

function byteLength(chunks: readonly string[]): number {
  let bytes = 0;
  for (const chunk of chunks) bytes += Buffer.byteLength(chunk);
  return bytes;
}

/** How often a streamed answer's key is checked again (the key cache keeps its own second). */
const STREAM_KEY_CHECK_MS = 1000;

/**
 * The chunks of a streamed answer while its key is valid: checked again before a chunk once a
 * second has passed, so that a revoked key (or a lake that cannot say) ends the stream, as it
 * refuses the key's next request. Ending it ends the source (its `return`).
 */
async function* whileKeyValid(
  chunks: AsyncIterable<string>,
  keyStill: () => Promise<void>,
): AsyncIterable<string> {
  let checked = performance.now();
  for await (const chunk of chunks) {
    if (performance.now() - checked >= STREAM_KEY_CHECK_MS) {
      try {
        await keyStill();
      } catch {
        return;
      }
      checked = performance.now();
    }
    yield chunk;
  }
}

/**
 * Writes a streamed answer chunk by chunk as its client takes them (within the write timeout)
 * until it ends or `signal` aborts: the client went away, or the server stops.
 */
async function sendStream(
  res: ServerResponse,
  status: number,
  stream: { readonly contentType: string; readonly chunks: AsyncIterable<string> },
  how: Sending,
): Promise<void> {
  res.statusCode = status;
  res.setHeader('content-type', stream.contentType);
  res.setHeader('cache-control', 'no-cache');
  // Not kept alive once it ends: a client that reconnects (an EventSource does) opens a new
  // connection, which a stopping server no longer accepts.
  res.setHeader('connection', 'close');
  res.flushHeaders();
  // A client that stopped reading holds no stop open: the stop ends the wait for it to drain.
  await writeChunks(res, stream.chunks, { timeoutMs: how.writeMs, stop: how.signal });
}
