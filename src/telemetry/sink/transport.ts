import { Agent, request } from 'node:http';
import { DorsalError } from '../../errors.js';
import type { IngestionService } from '../ingestion/service.js';
import { answerFor } from '../ingestion/status.js';

/** The kinds of records a sink sends. */
export type RecordKind = 'process' | 'stream' | 'block' | 'drops';

/**
 * A failed send. `retryable` is true for network errors, timeouts, 5xx, 408, 429, 401 and 403
 * (the same request may succeed later, once the server is back or its key fixed), false for other
 * 4xx (it never will). `code` is the server's error code when it gave one.
 */
export class SinkSendError extends DorsalError {
  readonly retryable: boolean;
  readonly status: number | undefined;
  readonly serverCode: string | undefined;

  constructor(message: string, retryable: boolean, status?: number, serverCode?: string) {
    super('DORSAL_SINK_SEND', message);
    this.retryable = retryable;
    this.status = status;
    this.serverCode = serverCode;
  }
}

/** How a sink reaches ingestion: sends one encoded record, resolves once it is stored. */
export interface SinkTransport {
  send(kind: RecordKind, bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Options of the HTTP transport. */
export interface HttpTransportOptions {
  /** Per-request timeout (default 10 s). */
  readonly timeoutMs?: number;
  /** Sockets kept open (default 4). */
  readonly maxSockets?: number;
  /**
   * The API key sent as `Authorization: Bearer KEY` (default: the `DORSAL_KEY` environment
   * variable; none if that is unset or empty).
   */
  readonly key?: string;
}

/** Largest error answer read from a server: an answer is a short JSON error, not a stream. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Statuses worth retrying: 5xx, 429, 408 (the server gave up waiting for this request's bytes: a
 * stall on the way, not a fault of the block), and 401/403 — a key that is missing, wrong or
 * revoked is fixed by an operator, not by the blocks, which wait (spooled) instead of being
 * dropped.
 */
const retryable = (status: number): boolean =>
  status >= 500 || status === 408 || status === 429 || status === 401 || status === 403;

/**
 * Sends records to an ingestion server over HTTP (keep-alive connections).
 *
 * @example
 * const transport = new HttpTransport('http://127.0.0.1:8081');
 */
export class HttpTransport implements SinkTransport {
  readonly url: URL;
  private readonly agent: Agent;
  private readonly timeoutMs: number;
  private readonly authorization: string | undefined;

  constructor(url: string, options: HttpTransportOptions = {}) {
    this.url = new URL(url);
    this.agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 4 });
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const key = options.key ?? process.env.DORSAL_KEY;
    this.authorization = key === undefined || key === '' ? undefined : `Bearer ${key}`;
  }

  send(kind: RecordKind, bytes: Uint8Array): Promise<void> {
    const target = new URL(
      `ingestion/insert_${kind}`,
      this.url.href.endsWith('/') ? this.url : `${this.url.href}/`,
    );
    return new Promise((resolve, reject) => {
      const req = request(
        target,
        {
          method: 'POST',
          agent: this.agent,
          headers: {
            'content-type': 'application/cbor',
            'content-length': bytes.length,
            ...(this.authorization === undefined ? {} : { authorization: this.authorization }),
          },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
          });
          res.on('error', (error) => reject(new SinkSendError(`reading the answer: ${error.message}`, true)));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve();
            const { code, message } = parseError(Buffer.concat(chunks).toString('utf8'));
            reject(
              new SinkSendError(`ingestion answered ${status}: ${message}`, retryable(status), status, code),
            );
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (error) =>
        reject(new SinkSendError(`sending ${kind} to ${target.origin}: ${error.message}`, true)),
      );
      req.end(bytes);
    });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}

function parseError(text: string): { code: string | undefined; message: string } {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const code = typeof body.error?.code === 'string' ? body.error.code : undefined;
    const message = typeof body.error?.message === 'string' ? body.error.message : text;
    return { code, message: message.slice(0, 1024) };
  } catch {
    return { code: undefined, message: text.slice(0, 200) };
  }
}

/**
 * Hands records to an ingestion service in the same process: no HTTP hop, the same decoding,
 * validation and statuses (an error that would be a 5xx is retryable, a 4xx is not).
 *
 * @example
 * const transport = new InProcessTransport(new IngestionService(Lake.open()));
 */
export class InProcessTransport implements SinkTransport {
  readonly service: IngestionService;

  constructor(service: IngestionService) {
    this.service = service;
  }

  /** Stores one block record (the persister's own transport skips the walk of its lz4 parts). */
  protected insertBlock(bytes: Uint8Array): Promise<unknown> {
    return this.service.insertBlock(bytes);
  }

  async send(kind: RecordKind, bytes: Uint8Array): Promise<void> {
    try {
      if (kind === 'process') await this.service.insertProcess(bytes);
      else if (kind === 'stream') await this.service.insertStream(bytes);
      else if (kind === 'drops') await this.service.insertDrops(bytes);
      else await this.insertBlock(bytes);
    } catch (error) {
      const answer = answerFor(error);
      throw new SinkSendError(
        answer.body.error.message,
        retryable(answer.status),
        answer.status,
        answer.body.error.code,
      );
    }
  }

  async close(): Promise<void> {}
}
