import { once } from 'node:events';
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { startIngestionServer } from '../../src/ingestion.js';
import { tempDir } from './fixtures.js';

describe('a stopping server', () => {
  const { dir, cleanup } = tempDir('dorsal-http-stop-');
  afterAll(cleanup);

  it('closes a keep-alive connection that was busy when it began to stop, once its answer is out', async () => {
    let release = (): void => {};
    const answered = new Promise<void>((resolve) => {
      release = resolve;
    });
    let routed = (): void => {};
    const inRoute = new Promise<void>((resolve) => {
      routed = resolve;
    });
    const server = await startIngestionServer({
      port: 0,
      lake: { data: dir },
      routes: [
        {
          method: 'GET',
          path: '/slow',
          mediaType: 'application/octet-stream',
          bodyLimit: 0,
          handle: async () => {
            routed();
            await answered;
            return { status: 200, contentType: 'text/plain', body: 'ok' };
          },
        },
      ],
    });
    const agent = new http.Agent({ keepAlive: true });
    try {
      const request = http.get(`${server.url}/slow`, { agent });
      const [socket] = (await once(request, 'socket')) as [Socket];
      const response = once(request, 'response') as Promise<[http.IncomingMessage]>;
      // The request is in its route when the server begins to stop.
      await inRoute;
      const closing = server.close();
      release();
      const [res] = await response;
      res.resume();
      expect(res.headers.connection).toBe('close');
      await once(socket, 'close');
      // The server stops without waiting for the client to drop its connection.
      await closing;
    } finally {
      agent.destroy();
    }
  });

  it('closes a connection that never sent a request (a browser opens spare ones)', async () => {
    const server = await startIngestionServer({ port: 0, lake: { data: dir } });
    const spare = connect(server.port, '127.0.0.1');
    await once(spare, 'connect');
    const closed = once(spare, 'close');
    await server.close();
    await closed;
  });
});
