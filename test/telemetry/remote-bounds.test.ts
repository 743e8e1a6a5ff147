/**
 * `RemoteAnalytics` against servers that misbehave: one that accepts and never answers, one that
 * answers a byte now and then, one whose answer lists a block that is not one. The servers are
 * stand-in protocol peers (what a stalled proxy or a broken server sends), on loopback.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, DorsalError } from '../../src/errors.js';
import { RemoteAnalytics } from '../../src/telemetry/analytics/remote.js';

/** A server on loopback; closed with every connection at the end. */
async function listening(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('RemoteAnalytics against a server that misbehaves', () => {
  const servers: Server[] = [];
  const timers = new Set<ReturnType<typeof setInterval>>();
  afterAll(() => {
    for (const timer of timers) clearInterval(timer);
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
  });

  /** What a query against `server` ends with: its error. */
  async function failureOf(server: Server, timeoutMs: number): Promise<unknown> {
    servers.push(server);
    const remote = new RemoteAnalytics({ url: await listening(server), retryForMs: 0, timeoutMs });
    return remote.query('SELECT 1').then(
      () => undefined,
      (error: unknown) => error,
    );
  }

  it('ends a try that gets no answer at its timeout (it waited for undici’s 300 s, then said it could not reach the server)', async () => {
    const silent = createServer((req) => req.resume());
    const error = await failureOf(silent, 300);
    expect(error).toBeInstanceOf(DorsalError);
    expect(error).toMatchObject({ code: 'DORSAL_REMOTE_TIMEOUT' });
    expect(String((error as Error).message)).toMatch(
      /^no whole answer from http:\/\/127\.0\.0\.1:\d+ within \d+ ms: a server that does not answer \(is it a dorsal serve\?\)/,
    );
  });

  it('ends a try whose answer trickles in at its timeout (it waited for good: the socket was never idle)', async () => {
    const trickle = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"columns":[');
      const timer = setInterval(() => res.write(' '), 50);
      timers.add(timer);
      res.on('close', () => clearInterval(timer));
    });
    expect(await failureOf(trickle, 400)).toMatchObject({ code: 'DORSAL_REMOTE_TIMEOUT' });
  });

  it('takes an answer whose unreadable blocks are not blocks for no query answer (a null in the list was a TypeError)', async () => {
    const broken = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ columns: [{ name: 'x', type: 'INTEGER' }], rows: [], unreadableBlocks: [null] }),
      );
    });
    const error = await failureOf(broken, 10_000);
    expect(error).toBeInstanceOf(DorsalError);
    expect(error).not.toBeInstanceOf(TypeError);
    expect(String((error as Error).message)).toMatch(/JSON that is no query answer/);
  });

  it('refuses a timeout a timer cannot wait', () => {
    for (const timeoutMs of [0, Number.NaN, 1.5, 2 ** 31]) {
      expect(() => new RemoteAnalytics({ url: 'http://127.0.0.1:1', timeoutMs })).toThrow(ConfigError);
    }
  });
});
