import { lookup } from 'node:dns/promises';
import { setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { InsecureBindError } from '../errors.js';
import { hostName, isLoopbackHost } from '../keys/loopback.js';
import { Lake } from '../lake/lake.js';
import { type LakeLocation, localLakeDirectories } from '../lake/open.js';
import { type RetentionReport, scheduleRetention } from '../lake/retention.js';
import {
  checkBodyLimits,
  DEFAULT_STALL_TIMEOUT_MS,
  type IngestionRoutesOptions,
  ingestionRoutes,
} from './http.js';
import { type IngestionOptions, IngestionService } from './service.js';
import { checkAnswerTimeout, checkWriteTimeout } from './write-chunks.js';

/** Options of `startIngestionServer`. */
export interface IngestionServerOptions extends IngestionRoutesOptions, IngestionOptions {
  /** Interface to listen on (default `127.0.0.1`: loopback only). */
  readonly host?: string;
  /** Port (default 8081; 0 picks a free one). */
  readonly port?: number;
  /** Where the lake is (default: the embedded lake in `./dorsal-data`), or an open lake. */
  readonly lake?: Lake | LakeLocation;
  /** Connections open at once (default 512); more are closed as they arrive. */
  readonly maxConnections?: number;
  /**
   * Connections open at once from one client address (default 128); more from it are closed as
   * they arrive, so that one client cannot take every connection. Behind a reverse proxy every
   * connection comes from the proxy: raise it to `maxConnections` there.
   */
  readonly maxConnectionsPerAddress?: number;
  /** A request must be received whole within this many ms, however steadily it comes (default 300 s). */
  readonly requestTimeoutMs?: number;
  /**
   * Listen beyond loopback although the lake has no API key, so that anyone who reaches the port
   * can write (default false: refused with `InsecureBindError`).
   */
  readonly insecure?: boolean;
  /**
   * Deletes what was inserted more than this many days ago, at start and then every
   * `retentionIntervalMs` (default: keep everything). See `applyRetention`.
   */
  readonly retentionDays?: number;
  /** Time between two retention passes (default 1 h). */
  readonly retentionIntervalMs?: number;
  /** Called after each retention pass. */
  readonly onRetention?: (report: RetentionReport) => void;
}

/** Default cap on open connections. */
export const DEFAULT_MAX_CONNECTIONS = 512;
/** Default cap on open connections from one address. */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 128;

/** A running ingestion server. */
export interface IngestionServer {
  /** Base URL, e.g. `http://127.0.0.1:8081`. */
  readonly url: string;
  readonly port: number;
  readonly service: IngestionService;
  readonly server: Server;
  /** Stops accepting requests, waits for those in progress, then closes the lake. */
  close(): Promise<void>;
}

/**
 * Starts the HTTP ingestion service. On loopback (the default) the lake is not contacted at start:
 * a database that is down makes requests answer 503 until it is back, and `/ready` says so. On
 * any other address the lake must hold an API key (see `createApiKey`), or `insecure` be set:
 * otherwise it rejects with `InsecureBindError`.
 *
 * @example
 * const server = await startIngestionServer({ port: 0, lake: { data: './dorsal-data' } });
 * console.log(`listening on ${server.url}`);
 * await server.close();
 */
export async function startIngestionServer(options: IngestionServerOptions = {}): Promise<IngestionServer> {
  const host = options.host ?? '127.0.0.1';
  // Checked before the lake is opened: a bad value leaves nothing open.
  checkWriteTimeout(options.writeTimeoutMs);
  checkAnswerTimeout(options.answerTimeoutMs);
  checkBodyLimits(options);
  // Loopback or not is what the name resolves to, not what it looks like: `lake.localhost` that
  // the hosts file maps to a public address is no loopback. The server listens on that address,
  // as Node's listen would resolve the name itself.
  // No name (''): every interface, as Node's listen takes it.
  const name = host.replace(/^\[|\]$/g, '');
  const address = name === '' ? undefined : (await lookup(name)).address;
  const loopback = address !== undefined && isLoopbackHost(address);
  const service = new IngestionService(options.lake ?? {}, options);
  if (!loopback && options.insecure !== true) {
    try {
      await service.lake.metadata.ready();
      if ((await service.lake.metadata.countApiKeys()) === 0) throw new InsecureBindError(host);
    } catch (error) {
      if (!(options.lake instanceof Lake)) await service.close();
      throw error;
    }
  }
  const stallMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  // Ends the streamed answers (event streams) when the server stops: they would hold it open.
  const stopping = new AbortController();
  // Every request in progress listens to it (until its answer closes): past 10 at once, Node would
  // warn of a listener leak that is none, on every start of a busy server.
  setMaxListeners(0, stopping.signal);
  const server = createServer(
    {
      // Headers that do not arrive whole within the stall timeout get 408 (see clientError).
      headersTimeout: stallMs,
      requestTimeout: Math.max(options.requestTimeoutMs ?? 300_000, stallMs),
      // How often Node checks those two timeouts (30 s by default, which would stretch them).
      connectionsCheckingInterval: Math.min(Math.max(stallMs / 4, 50), 5000),
    },
    ingestionRoutes(service, {
      ...options,
      // Those whose client has gone included: no more than the connections it takes.
      maxInserts: options.maxInserts ?? options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      loopbackHostsOnly: options.loopbackHostsOnly ?? loopback,
      // Requests to the URL it reports carry that name: answered (it resolves to loopback here).
      loopbackNames: options.loopbackNames ?? (loopback ? [hostName(name)] : []),
      signal: stopping.signal,
      // The lake's own directories are not shown to clients (a blob store's error names them).
      hiddenPaths:
        options.hiddenPaths ??
        (options.lake instanceof Lake ? [] : localLakeDirectories(options.lake)).sort(
          (a, b) => b.length - a.length,
        ),
    }),
  );
  server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  capPerAddress(server, options.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS);
  const unused = trackUnusedSockets(server);
  server.on('clientError', answerClientError);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 8081, address, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    // The port taken, say: the lake it opened is closed again (one it was given stays open).
    if (!(options.lake instanceof Lake)) await service.close();
    throw error;
  }
  const retention =
    options.retentionDays === undefined
      ? undefined
      : scheduleRetention(service.lake, {
          days: options.retentionDays,
          ...(options.retentionIntervalMs === undefined ? {} : { intervalMs: options.retentionIntervalMs }),
          onPass: (report) => options.onRetention?.(report),
          onError: (error) => options.onInternalError?.(error),
        });
  const { port } = server.address() as AddressInfo;
  // Every interface (no name): reached here as localhost.
  const urlHost = name === '' ? 'localhost' : name.includes(':') ? `[${name}]` : name;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    service,
    server,
    close: async () => {
      await retention?.stop();
      stopping.abort();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        unused.destroy();
      });
      for (const route of options.routes ?? []) await route.close?.();
      await service.close();
    },
  };
}

/**
 * The connections that never sent a request: a browser opens spare ones ahead of need, and
 * `closeIdleConnections` leaves them open, so that a stopping server would wait for the browser
 * to drop them. `destroy` ends them (nothing is in flight on them).
 */
function trackUnusedSockets(server: Server): { destroy(): void } {
  const unused = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  server.on('request', (req: IncomingMessage) => unused.delete(req.socket));
  return {
    destroy: () => {
      for (const socket of unused) socket.destroy();
      unused.clear();
    },
  };
}

/**
 * Closes a connection at once when its address has `max` open already: a client that holds
 * connections open (idle keep-alives, headers that trickle) holds its own share, not all of them.
 */
function capPerAddress(server: Server, max: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = open.get(address) ?? 0;
    if (count >= max) {
      socket.destroy();
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}

/**
 * A request that never reached the routes: a malformed request line or header (400), headers too
 * large (431), or headers or a body that did not arrive in time (408). Answered in the routes'
 * JSON, and the socket is closed.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  const response = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (!socket.writable || response?.headersSent === true) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'DORSAL_REQUEST_TIMEOUT', 'request headers or body did not arrive in time']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'DORSAL_BAD_REQUEST', 'request headers too large']
        : [400, 'Bad Request', 'DORSAL_BAD_REQUEST', 'malformed HTTP request'];
  const body = JSON.stringify({ error: { code, message } });
  // Closed both ways once the answer is written (or at the latest a second later): an end alone
  // waits for the client's, and a client that never sends it held its connection for good.
  const drop = setTimeout(() => socket.destroy(), 1000);
  drop.unref();
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => {
      clearTimeout(drop);
      socket.destroy();
    },
  );
}
