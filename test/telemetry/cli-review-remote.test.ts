import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDorsal } from './cli-helpers.js';
import { tempDir } from './fixtures.js';

/** An HTTP server on a free port that answers every request with `handler`. */
async function fakeServer(handler: RequestListener): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** A server that answers every query with `body`, 200. */
const answering = (body: unknown) =>
  fakeServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  });

/**
 * "cannot reach … is dorsal serve running there?" is said when the connection was never made, and
 * only then: a key fetch refuses to send, or an answer that does not read, is said as what it is,
 * in one line (no stack).
 */
describe('a command through --url says what went wrong', () => {
  const { dir, cleanup } = tempDir('dorsal-cli-review-remote-');
  const servers: Server[] = [];
  afterAll(() => {
    for (const server of servers) server.close();
    cleanup();
  });

  it('a server that is not there: cannot reach it', async () => {
    const { url, server } = await fakeServer(() => {});
    server.close();
    await once(server, 'close');
    const { code, stderr } = await runDorsal(['processes', '--url', url]);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^dorsal: cannot reach http:\/\/127\.0\.0\.1:\d+: is `dorsal serve` running there\? \(.*ECONNREFUSED.*\) \(DORSAL_CLI\)\n$/,
    );
  }, 30_000);

  it('a server that takes the request and never answers: --timeout ends the command, and says so (it waited 5 min, then said unreachable)', async () => {
    const silent = await fakeServer((request) => request.resume());
    servers.push(silent.server);
    const { code, stderr } = await runDorsal(['processes', '--url', silent.url, '--timeout', '500']);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^dorsal: no whole answer from http:\/\/127\.0\.0\.1:\d+ within \d+ ms: a server that does not answer .*the CLI's --timeout\) \(DORSAL_REMOTE_TIMEOUT\)\n$/,
    );
    silent.server.closeAllConnections();
    const zero = await runDorsal(['processes', '--url', silent.url, '--timeout', '0']);
    expect(zero.code).not.toBe(0);
    expect(zero.stderr).toMatch(/--timeout <ms>' argument '0' is invalid/);
  }, 30_000);

  it('a connection cut before the answer: the server was reached, and the request failed', async () => {
    const server = createNetServer((socket) => socket.on('data', () => socket.destroy()));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { code, stderr } = await runDorsal(['processes', '--url', url]);
      expect(code).toBe(1);
      // "other side closed" (undici's UND_ERR_SOCKET), or ECONNRESET should the cut come as a reset.
      expect(stderr).toMatch(
        /^dorsal: the request to http:\/\/127\.0\.0\.1:\d+ failed before its answer \(.+\) \(DORSAL_CLI\)\n$/,
      );
    } finally {
      server.close();
    }
  }, 30_000);

  it('a key with a line break is refused up front, in one line', async () => {
    const { url, server } = await answering({ columns: [], rows: [] });
    servers.push(server);
    const { code, stderr } = await runDorsal(['processes', '--url', url], { DORSAL_KEY: 'abc\ndef' });
    expect(code).toBe(1);
    expect(stderr).toBe(
      'dorsal: --key (or DORSAL_KEY): the API key holds a line break (a key read from a file keeps its newline: trim it), which an HTTP header cannot carry (DORSAL_CONFIG)\n',
    );
  }, 30_000);

  it('an answer whose unreadable blocks hold null is not "cannot reach"', async () => {
    const { url, server } = await answering({ columns: [{ name: 'x' }], rows: [], unreadableBlocks: [null] });
    servers.push(server);
    const { code, stderr } = await runDorsal(['processes', '--url', url]);
    expect(code).toBe(1);
    expect(stderr).not.toMatch(/cannot reach/);
    expect(stderr.trim().split('\n'), stderr).toHaveLength(1);
    expect(stderr).toMatch(/^dorsal: .*\(DORSAL_\w+\)\n$/);
  }, 30_000);

  it('trace: a start that is no number is said in one line, and no file is left', async () => {
    const { url, server } = await answering({ columns: [{ name: 'x' }], rows: [['x', 'x', 'x', '{}']] });
    servers.push(server);
    const output = join(dir, 't.json');
    const { code, stderr } = await runDorsal(['trace', '--url', url, '-o', output]);
    expect(code).toBe(1);
    expect(stderr).not.toMatch(/SyntaxError|\n\s+at /);
    // What comes before is the run's counts said not to read (the server answered 'x' there too).
    expect(stderr.trim().split('\n').at(-1)).toBe(
      `dorsal: the process's start (start_ns) was answered as "x", not a whole number of ns: that is not what a dorsal serve answers (DORSAL_REMOTE)`,
    );
    expect(existsSync(output)).toBe(false);
  }, 30_000);
});
