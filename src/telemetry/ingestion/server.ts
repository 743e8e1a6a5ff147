import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Lake } from '../lake/lake.js';
import type { LakeLocation } from '../lake/open.js';
import { type IngestionRoutesOptions, ingestionRoutes } from './http.js';
import { type IngestionOptions, IngestionService } from './service.js';

/** Options of `startIngestionServer`. */
export interface IngestionServerOptions extends IngestionRoutesOptions, IngestionOptions {
  /** Interface to listen on (default `127.0.0.1`: loopback only). */
  readonly host?: string;
  /** Port (default 8081; 0 picks a free one). */
  readonly port?: number;
  /** Where the lake is (default: the embedded lake in `./dorsal-data`), or an open lake. */
  readonly lake?: Lake | LakeLocation;
}

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
 * Starts the HTTP ingestion service. The lake is not contacted at start: a database that is down
 * makes inserts answer 503 until it is back, and `/ready` says so.
 *
 * @example
 * const server = await startIngestionServer({ port: 0, lake: { data: './dorsal-data' } });
 * console.log(`listening on ${server.url}`);
 * await server.close();
 */
export async function startIngestionServer(options: IngestionServerOptions = {}): Promise<IngestionServer> {
  const service = new IngestionService(options.lake ?? {}, options);
  const server = createServer(ingestionRoutes(service, options));
  // A malformed request line or header never reaches the routes: answer 400 and drop the socket.
  server.on('clientError', (_error, socket) => {
    if (socket.writable)
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8081, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    service,
    server,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await service.close();
    },
  };
}
