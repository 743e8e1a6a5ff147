import type { IncomingMessage, ServerResponse } from 'node:http';
import { PayloadTooLargeError, UnsupportedMediaTypeError, WireFormatError } from '../errors.js';
import type { IngestionService, InsertResult } from './service.js';
import { answerFor } from './status.js';

/** Options of the HTTP routes. */
export interface IngestionRoutesOptions {
  /** Largest request body in bytes (default 100 MiB); larger gets 413. */
  readonly bodyLimit?: number;
  /** Seconds announced in `Retry-After` when the lake is unavailable (default 1). */
  readonly retryAfterSeconds?: number;
  /** Called with errors that are not the client's fault (500s), e.g. to log them. */
  readonly onInternalError?: (error: unknown) => void;
}

/** Default body limit: 100 MiB. */
export const DEFAULT_BODY_LIMIT = 100 * 1024 * 1024;

type Insert = (service: IngestionService, body: Uint8Array) => Promise<InsertResult>;

const INSERTS: Readonly<Record<string, Insert>> = {
  '/ingestion/insert_process': (s, body) => s.insertProcess(body),
  '/ingestion/insert_stream': (s, body) => s.insertStream(body),
  '/ingestion/insert_block': (s, body) => s.insertBlock(body),
};

/** What a route resolved to: a status and a JSON body. */
interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly retry?: boolean;
  readonly close?: boolean;
}

/**
 * The HTTP routes of the ingestion service as a request listener for `http.createServer`:
 * `POST /ingestion/insert_process|insert_stream|insert_block` (CBOR bodies), `GET /health`,
 * `GET /ready`. Every answer is JSON; errors are `{ error: { code, message } }`.
 */
export function ingestionRoutes(
  service: IngestionService,
  options: IngestionRoutesOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  return (req, res) => {
    route(service, req, bodyLimit)
      .catch((error: unknown): Answer => {
        const answer = answerFor(error);
        if (answer.status === 500) options.onInternalError?.(error);
        // After a refused body the rest of it is not read: close the connection.
        return { ...answer, close: error instanceof PayloadTooLargeError };
      })
      .then((answer) => send(req, res, answer, retryAfter));
  };
}

async function route(service: IngestionService, req: IncomingMessage, bodyLimit: number): Promise<Answer> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const insert = INSERTS[path];
  if (insert !== undefined) {
    if (req.method !== 'POST') return methodNotAllowed('POST');
    const type = req.headers['content-type'];
    if (type?.split(';')[0]?.trim().toLowerCase() !== 'application/cbor')
      throw new UnsupportedMediaTypeError(type);
    const result = await insert(service, await readBody(req, bodyLimit));
    return { status: 200, body: result };
  }
  if (path === '/health') {
    return req.method === 'GET' ? { status: 200, body: { status: 'ok' } } : methodNotAllowed('GET');
  }
  if (path === '/ready') {
    if (req.method !== 'GET') return methodNotAllowed('GET');
    await service.ready();
    return { status: 200, body: { status: 'ready' } };
  }
  return {
    status: 404,
    body: { error: { code: 'DORSAL_NOT_FOUND', message: `no route ${req.method} ${path}` } },
  };
}

function methodNotAllowed(allowed: string): Answer {
  return { status: 405, body: { error: { code: 'DORSAL_METHOD_NOT_ALLOWED', message: `use ${allowed}` } } };
}

/** Reads a body up to `limit` bytes; a declared or actual size over it is refused before buffering it. */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > limit) {
    return Promise.reject(
      new PayloadTooLargeError(`body of ${declared} bytes is over the limit of ${limit} bytes`),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        reject(new PayloadTooLargeError(`body is over the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)));
    req.once('error', reject);
    // A client that goes away mid-body: nothing to answer, but the promise must settle.
    req.once('close', () => {
      if (!req.complete) reject(new WireFormatError('request body aborted by the client'));
    });
  });
}

function send(req: IncomingMessage, res: ServerResponse, answer: Answer, retryAfter: string): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify(answer.body);
  res.statusCode = answer.status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(body));
  if (answer.retry === true) res.setHeader('retry-after', retryAfter);
  if (answer.close === true) {
    res.setHeader('connection', 'close');
    res.once('finish', () => req.socket.destroySoon());
  }
  res.end(body);
}
