import { Agent, type ClientRequest, type IncomingMessage, type RequestOptions, request } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { ConfigError, DorsalError } from '../../errors.js';
import type { IngestionService } from '../ingestion/service.js';
import { answerFor, bounded } from '../ingestion/status.js';
import { checkApiKey } from './api-key.js';

/** The kinds of records a sink sends. */
export type RecordKind = 'process' | 'stream' | 'block' | 'drops';

/**
 * A failed send. `retryable` is true for network errors, timeouts, 5xx, 408, 429, 401 and 403
 * (the same request may succeed later, once the server is back or its key fixed), and for any
 * answer that is not ingestion's (a web server or a proxy at the URL: the URL is fixed, not the
 * record) but a refusal of the request's body for its size (413); false for that and for
 * ingestion's other 4xx (it never will). `code` is the server's error code when it gave one.
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
  /**
   * Per-request timeout (default 10 s): no byte sent or received for that long ends a request,
   * and its answer must be whole within that long of the request's end (an answer that trickles
   * in holds no request past it).
   */
  readonly timeoutMs?: number;
  /** Sockets kept open (default 4). */
  readonly maxSockets?: number;
  /**
   * The API key sent as `Authorization: Bearer KEY` (default: the `DORSAL_KEY` environment
   * variable; none if that is unset or empty).
   */
  readonly key?: string;
  /**
   * For an `https:` URL, certificates (PEM) to trust besides Node's bundled roots: a private
   * CA's. Node's `NODE_EXTRA_CA_CERTS` does the same for the whole process; its certificates are
   * not added to these (given `ca`, Node trusts the `ca` alone: the bundled roots are added here).
   */
  readonly ca?: string | readonly string[];
}

/** Largest error answer read from a server: an answer is a short JSON error, not a stream. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Statuses that refuse a request for its body's size, whoever answers them: the body is what
 * differs from one request to the next (a URL's or the headers' size, 414 or 431, is every
 * request's, and refuses the URL, not a record).
 */
const TOO_LARGE = new Set([413]);

/**
 * Statuses worth retrying: 5xx, 429, 408 (the server gave up waiting for this request's bytes: a
 * stall on the way, not a fault of the block), and 401/403 — a key that is missing, wrong or
 * revoked is fixed by an operator, not by the blocks, which wait (spooled) instead of being
 * dropped.
 */
const retryable = (status: number): boolean =>
  status >= 500 || status === 408 || status === 429 || status === 401 || status === 403;

/**
 * Sends records to an ingestion server over HTTP or HTTPS (keep-alive connections). A request
 * counts as stored only when the server answers with ingestion's acknowledgement (a 2xx whose
 * JSON body says `inserted`): any other 2xx (a web server or a proxy at the URL, not ingestion)
 * is a retryable failure, so that blocks wait (spooled) instead of being counted stored.
 *
 * @example
 * const transport = new HttpTransport('http://127.0.0.1:8081');
 */
export class HttpTransport implements SinkTransport {
  readonly url: URL;
  private readonly agent: Agent;
  private readonly request: (
    target: URL,
    options: RequestOptions,
    answer: (res: IncomingMessage) => void,
  ) => ClientRequest;
  private readonly timeoutMs: number;
  private readonly authorization: string | undefined;

  constructor(url: string, options: HttpTransportOptions = {}) {
    try {
      this.url = new URL(url);
    } catch {
      throw new ConfigError(`the ingestion URL ${JSON.stringify(url)} does not parse`);
    }
    const maxSockets = options.maxSockets ?? 4;
    if (this.url.protocol === 'https:') {
      const ca = options.ca === undefined ? undefined : [...rootCertificates, ...[options.ca].flat()];
      this.agent = new HttpsAgent({ keepAlive: true, maxSockets, ...(ca === undefined ? {} : { ca }) });
      this.request = httpsRequest;
    } else if (this.url.protocol === 'http:') {
      this.agent = new Agent({ keepAlive: true, maxSockets });
      this.request = request;
    } else {
      throw new ConfigError(
        `the ingestion URL must be http: or https:, got ${JSON.stringify(this.url.protocol)} (${url})`,
      );
    }
    this.timeoutMs = options.timeoutMs ?? 10_000;
    if (!(Number.isFinite(this.timeoutMs) && this.timeoutMs >= 1 && this.timeoutMs <= 2 ** 31 - 1)) {
      throw new ConfigError(
        `the transport's timeoutMs must be a number of ms from 1 to ${2 ** 31 - 1}, got ${String(options.timeoutMs)}`,
      );
    }
    const key = options.key ?? process.env.DORSAL_KEY;
    if (key !== undefined) checkApiKey(key, options.key === undefined ? 'DORSAL_KEY' : 'the sink');
    this.authorization = key === undefined || key === '' ? undefined : `Bearer ${key}`;
  }

  send(kind: RecordKind, bytes: Uint8Array): Promise<void> {
    const target = new URL(
      `ingestion/insert_${kind}`,
      this.url.href.endsWith('/') ? this.url : `${this.url.href}/`,
    );
    return new Promise((resolve, reject) => {
      let req: ClientRequest;
      try {
        req = this.request(
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
            res.on('error', (error) =>
              reject(new SinkSendError(`reading the answer: ${error.message}`, true)),
            );
            res.on('end', () => {
              const status = res.statusCode ?? 0;
              const text = Buffer.concat(chunks).toString('utf8');
              if (status >= 200 && status < 300) {
                if (acknowledges(text)) return resolve();
                return reject(
                  new SinkSendError(
                    `${target.origin} answered ${status} without ingestion's acknowledgement (is it a dorsal ingestion server?): ${JSON.stringify(text.slice(0, 80))}`,
                    true,
                    status,
                  ),
                );
              }
              const { code, message } = parseError(text);
              // Ingestion says each refusal in JSON with its DORSAL_ code. Anything else (a page's
              // 404, a proxy's 400 or 502, a redirect to https) is not ingestion's word on the
              // record: refused for good, it dropped every block and then their drop report. But
              // a proxy's refusal of this request's size is this record's: retried, the block
              // was every probe of a server taken for down, and held every block behind it.
              if (code?.startsWith('DORSAL_') !== true && !TOO_LARGE.has(status)) {
                return reject(
                  new SinkSendError(
                    `${target.origin} answered ${status} without an ingestion error (is it a dorsal ingestion server?): ${JSON.stringify(text.slice(0, 80))}`,
                    true,
                    status,
                  ),
                );
              }
              reject(
                new SinkSendError(
                  `ingestion answered ${status}: ${message}`,
                  retryable(status),
                  status,
                  code,
                ),
              );
            });
          },
        );
      } catch (error) {
        // Thrown before anything was sent (a header or an option Node refuses): no retry mends it.
        reject(
          new SinkSendError(
            `sending ${kind} to ${target.origin}: ${error instanceof Error ? error.message : String(error)}`,
            false,
          ),
        );
        return;
      }
      // `timeout` is the socket's idle time, the upload's bound (a large block on a slow link
      // takes what it takes, while it moves); from the body's end, this bounds the answer whole
      // (a byte now and then held a request, its slot and its socket for good, and a flush never
      // ended).
      let whole: NodeJS.Timeout | undefined;
      req.on('finish', () => {
        whole = setTimeout(
          () => req.destroy(new Error(`no whole answer within ${this.timeoutMs} ms of the request's end`)),
          this.timeoutMs,
        );
      });
      req.on('close', () => clearTimeout(whole));
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

/** Whether an answer's body is ingestion's acknowledgement: JSON with a boolean `inserted`. */
function acknowledges(text: string): boolean {
  try {
    const body = JSON.parse(text) as { inserted?: unknown };
    return typeof body === 'object' && body !== null && typeof body.inserted === 'boolean';
  } catch {
    return false;
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
      // In-process there is no client to keep the lake's details from: an error HTTP would answer
      // as an internal one (a lake's configuration) keeps its own message and code.
      const own = answer.status === 500 && error instanceof DorsalError;
      throw new SinkSendError(
        own ? bounded(error.message) : answer.body.error.message,
        retryable(answer.status),
        answer.status,
        own ? error.code : answer.body.error.code,
      );
    }
  }

  async close(): Promise<void> {}
}
