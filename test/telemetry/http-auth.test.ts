import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IngestionServer, InsecureBindError, startIngestionServer } from '../../src/ingestion.js';
import { createApiKey, Lake, revokeApiKey } from '../../src/lake.js';
import { HttpTransport, TelemetrySink } from '../../src/sink.js';
import type { ExtraRoute } from '../../src/telemetry/ingestion/http.js';
import { encodeBlock, encodeProcessInfo, encodeStreamInfo } from '../../src/wire.js';
import { DORSAL_BIN, finished, runDorsal, served, startDorsalServe } from './cli-helpers.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';

/** A request with any headers (fetch will not send a `Host` of our choosing). */
function call(
  url: string,
  path: string,
  headers: Record<string, string>,
  body?: Uint8Array,
): Promise<{
  status: number;
  headers: Record<string, unknown>;
  body: { error?: { code: string; message: string } };
}> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, url),
      { method: body === undefined ? 'GET' : 'POST', headers: { ...headers, connection: 'close' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: JSON.parse(Buffer.concat(chunks).toString() || '{}'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const cbor = { 'content-type': 'application/cbor' };
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

describe('ingestion servers and API keys', () => {
  const { dir, cleanup } = tempDir();
  const data = join(dir, 'lake');
  let lake: Lake;
  let server: IngestionServer;
  const process = makeProcess();
  const stream = makeStream(process.processId);

  beforeAll(async () => {
    lake = Lake.open({ data });
    // keyCacheMs 0: every request asks the lake, so that the test sees a new or revoked key at once.
    server = await startIngestionServer({ port: 0, lake: { data }, keyCacheMs: 0 });
  });

  afterAll(async () => {
    await server.close();
    await lake.close();
    cleanup();
  });

  it('lets anyone in while the lake has no key, then needs a valid key on every route but /health', async () => {
    expect(
      (await call(server.url, '/ingestion/insert_process', cbor, encodeProcessInfo(process))).status,
    ).toBe(200);
    const key = await createApiKey(lake.metadata, 'writer');
    const none = await call(server.url, '/ingestion/insert_stream', cbor, encodeStreamInfo(stream));
    expect(none.status).toBe(401);
    expect(none.body.error?.code).toBe('DORSAL_UNAUTHORIZED');
    expect(none.headers['www-authenticate']).toBe('Bearer realm="dorsal"');
    const wrong = await call(
      server.url,
      '/ingestion/insert_stream',
      { ...cbor, ...bearer('dorsal_not-a-key') },
      encodeStreamInfo(stream),
    );
    expect(wrong.status).toBe(401);
    expect(wrong.body.error?.message).toBe('unknown API key');
    expect((await call(server.url, '/ready', {})).status).toBe(401);
    expect((await call(server.url, '/nowhere', {})).status).toBe(401);
    expect((await call(server.url, '/health', {})).status).toBe(200);

    const good = { ...cbor, ...bearer(key) };
    expect((await call(server.url, '/ingestion/insert_stream', good, encodeStreamInfo(stream))).status).toBe(
      200,
    );
    expect((await call(server.url, '/ready', bearer(key))).status).toBe(200);
    expect((await call(server.url, '/nowhere', bearer(key))).status).toBe(404);
    const { block } = makeBlock(stream, 10);
    expect((await call(server.url, '/ingestion/insert_block', good, encodeBlock(block))).status).toBe(200);

    await revokeApiKey(lake.metadata, 'writer');
    const revoked = await call(
      server.url,
      '/ingestion/insert_block',
      good,
      encodeBlock(makeBlock(stream).block),
    );
    expect(revoked.status).toBe(403);
    expect(revoked.body.error).toEqual({
      code: 'DORSAL_KEY_REVOKED',
      message: 'the API key "writer" was revoked',
    });
    // Revoking the last key does not open the server again.
    expect(
      (await call(server.url, '/ingestion/insert_block', cbor, encodeBlock(makeBlock(stream).block))).status,
    ).toBe(401);
    expect(await lake.blocks({ streamId: stream.streamId })).toHaveLength(1);
  });

  it('has the sink send its key, and keep its blocks while the key is refused', async () => {
    const key = await createApiKey(lake.metadata, 'sink');
    const proc = makeProcess();
    const own = makeStream(proc.processId);
    const sink = new TelemetrySink({ target: server.url, process: proc, key });
    sink.addStream(own);
    for (let seed = 1; seed <= 3; seed++) sink.push(makeBlock(own, 10, seed).block);
    expect(await sink.close({ timeoutMs: 20_000 })).toMatchObject({ pushed: 3, sent: 3, droppedTotal: 0 });

    const keyless = new TelemetrySink({
      target: server.url,
      process: proc,
      maxAttempts: 1,
      backoff: { initialMs: 10, maxMs: 50 },
      spool: { dir: join(dir, 'keyless-spool') },
    });
    keyless.addStream(own);
    keyless.push(makeBlock(own, 10, 9).block);
    const stats = await keyless.close({ timeoutMs: 500 });
    expect(stats).toMatchObject({ pushed: 1, sent: 0, droppedTotal: 0 });
    expect(stats.lastError).toContain('ingestion answered 401');
    expect(stats.spoolBlocks).toBe(1);

    // The environment's DORSAL_KEY when no key is given.
    const before = globalThis.process.env.DORSAL_KEY;
    globalThis.process.env.DORSAL_KEY = key;
    try {
      const transport = new HttpTransport(server.url);
      await transport.send('block', encodeBlock(makeBlock(own, 10, 10).block));
      await transport.close();
    } finally {
      if (before === undefined) delete globalThis.process.env.DORSAL_KEY;
      else globalThis.process.env.DORSAL_KEY = before;
    }
    expect(await lake.blocks({ streamId: own.streamId })).toHaveLength(4);
  });

  it('has `dorsal status` send its key from --key or DORSAL_KEY', async () => {
    const key = await createApiKey(lake.metadata, 'status');
    const keyless = await runDorsal(['status', '--url', server.url]);
    expect(keyless.code).toBe(1);
    expect(keyless.stderr).toContain(`${server.url}: 401 this server needs an API key`);
    const flag = await runDorsal(['status', '--url', server.url, '--key', key]);
    expect(flag).toMatchObject({ code: 0, stdout: `${server.url}: ready\n` });
    const env = await runDorsal(['status', '--url', server.url], { DORSAL_KEY: key });
    expect(env).toMatchObject({ code: 0, stdout: `${server.url}: ready\n` });
    // The server from DORSAL_URL, as the commands that read and run take it.
    const url = await runDorsal(['status'], { DORSAL_KEY: key, DORSAL_URL: server.url });
    expect(url).toMatchObject({ code: 0, stdout: `${server.url}: ready\n` });
  }, 60_000);

  it('answers a loopback server only for loopback hosts (DNS rebinding)', async () => {
    const port = new URL(server.url).port;
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      'LOCALHOST',
      `[::1]:${port}`,
      '127.1.2.3',
      'app.localhost',
      // A fully qualified name may end with a dot.
      'localhost.',
      `localhost.:${port}`,
      '127.0.0.1.',
    ]) {
      expect((await call(server.url, '/health', { host })).status, host).toBe(200);
    }
    for (const host of [
      `attacker.example:${port}`,
      'localhost.attacker.example',
      '10.0.0.1',
      '[::2]',
      // Not a host and a port: what follows the last colon is not a port.
      `127.0.0.1:${port}@attacker.example`,
      `localhost:${port}:1`,
      '[::1]x',
    ]) {
      const answer = await call(server.url, '/health', { host });
      expect(answer.status, JSON.stringify(host)).toBe(403);
      expect(answer.body.error?.code).toBe('DORSAL_HOST_NOT_ALLOWED');
    }
  });
});

describe('binding beyond loopback', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('is refused while the lake has no key, with a clear error and a non-zero exit', async () => {
    const run = await runDorsal(['serve', '--host', '0.0.0.0', '--port', '0', '--data', join(dir, 'open')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('dorsal: refusing to listen on 0.0.0.0: the lake has no API key');
    expect(run.stderr).toContain('dorsal keys create --name NAME');
    await expect(
      startIngestionServer({ host: '0.0.0.0', port: 0, lake: { data: join(dir, 'open') } }),
    ).rejects.toThrow(InsecureBindError);
  }, 60_000);

  it('is judged by the address a name resolves to: a .localhost name the hosts file maps elsewhere is no loopback', async () => {
    // A hosts file of the test's own, in a mount namespace of the child's (root on these machines).
    const hosts = join(dir, 'hosts');
    writeFileSync(
      hosts,
      '127.0.0.1 localhost\n198.51.100.7 lake.localhost\n127.0.0.2 near.localhost\n127.0.0.3 vm\n',
    );
    const serveWithHosts = (host: string) =>
      spawn(
        'unshare',
        [
          '-m',
          'sh',
          '-c',
          'mount --bind "$0" /etc/hosts && exec "$@"',
          hosts,
          process.execPath,
          DORSAL_BIN,
          'serve',
          '--host',
          host,
          '--port',
          '0',
          '--data',
          join(dir, 'named'),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DORSAL_KEY: '' } },
      );
    const far = await finished(serveWithHosts('lake.localhost'));
    expect(far.stderr).toContain('dorsal: refusing to listen on lake.localhost: the lake has no API key');
    expect(far.code).toBe(1);
    // A name that resolves to loopback listens there, with no key.
    const near = await served(serveWithHosts('near.localhost'));
    expect(near.url).toMatch(/^http:\/\/near\.localhost:\d+$/);
    expect(await near.stop()).toBe(0);
    // A name of no loopback look (the machine's own, in its hosts file) that resolves to
    // loopback: no key needed, and requests to the URL it reports (Host: vm) are answered;
    // another name's (a page's, by DNS rebinding) are not.
    const vm = await served(serveWithHosts('vm'));
    try {
      const port = new URL(vm.url).port;
      expect(vm.url).toBe(`http://vm:${port}`);
      const at = `http://127.0.0.3:${port}`;
      expect((await call(at, '/health', { host: `vm:${port}` })).status).toBe(200);
      expect((await call(at, '/health', { host: `VM.:${port}` })).status).toBe(200);
      expect((await call(at, '/health', { host: `rebound.example:${port}` })).status).toBe(403);
    } finally {
      expect(await vm.stop()).toBe(0);
    }
  }, 60_000);

  it('an empty host listens on every interface (a key needed); a bracketed IPv6 one reports a URL that works', async () => {
    await expect(
      startIngestionServer({ host: '', port: 0, lake: { data: join(dir, 'open') } }),
    ).rejects.toThrow(InsecureBindError);
    const every = await startIngestionServer({
      host: '',
      port: 0,
      lake: { data: join(dir, 'open') },
      insecure: true,
    });
    try {
      expect(every.url).toBe(`http://localhost:${every.port}`);
      expect((await fetch(`${every.url}/health`)).status).toBe(200);
    } finally {
      await every.close();
    }
    const server = await startIngestionServer({ host: '[::1]', port: 0, lake: { data: join(dir, 'v6') } });
    try {
      expect(server.url).toBe(`http://[::1]:${server.port}`);
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('a port already taken: the start fails and closes the lake it opened to check its keys', async () => {
    const lakes = ['first', 'second'].map((name) => join(dir, `taken-${name}`));
    for (const data of lakes) {
      const lake = Lake.open({ data });
      await createApiKey(lake.metadata, 'remote');
      await lake.close();
    }
    const first = await startIngestionServer({ host: '0.0.0.0', port: 0, lake: { data: lakes[0]! } });
    try {
      await expect(
        startIngestionServer({ host: '0.0.0.0', port: first.port, lake: { data: lakes[1]! } }),
      ).rejects.toThrow(/EADDRINUSE/);
      // Closed: SQLite removes a lake's write-ahead log when its last connection closes.
      expect(existsSync(join(lakes[1]!, 'lake.sqlite-wal'))).toBe(false);
      expect(existsSync(join(lakes[0]!, 'lake.sqlite-wal'))).toBe(true);
    } finally {
      await first.close();
    }
  }, 60_000);

  it('is allowed with --insecure, and then any Host is answered', async () => {
    const served = await startDorsalServe([
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--data',
      join(dir, 'open'),
      '--insecure',
    ]);
    try {
      const url = served.url.replace('0.0.0.0', '127.0.0.1');
      expect((await call(url, '/health', { host: 'telemetry.example' })).status).toBe(200);
    } finally {
      expect(await served.stop()).toBe(0);
    }
  }, 60_000);

  it('is allowed once the lake has a key, which every request then needs', async () => {
    const data = join(dir, 'keyed');
    const created = await runDorsal(['keys', 'create', '--name', 'remote', '--data', data]);
    const key = created.stdout.trim();
    const served = await startDorsalServe(['--host', '0.0.0.0', '--port', '0', '--data', data]);
    try {
      const url = served.url.replace('0.0.0.0', '127.0.0.1');
      expect((await call(url, '/ready', { host: 'telemetry.example' })).status).toBe(401);
      expect((await call(url, '/ready', { host: 'telemetry.example', ...bearer(key) })).status).toBe(200);
    } finally {
      expect(await served.stop()).toBe(0);
    }
  }, 60_000);
});

it('a streamed answer ends once its key is revoked (it streamed on: the key was checked once, at the request)', async () => {
  const { dir, cleanup } = tempDir('dorsal-stream-key-');
  const lake = Lake.open({ data: join(dir, 'lake') });
  const ticks: ExtraRoute = {
    method: 'GET',
    path: '/ticks',
    mediaType: 'application/json',
    bodyLimit: 0,
    handle: async (_body, request) => ({
      status: 200,
      contentType: 'text/event-stream',
      stream: (async function* () {
        for (let i = 0; !request.signal.aborted; i++) {
          yield `data: ${i}\n\n`;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })(),
    }),
  };
  const server = await startIngestionServer({ port: 0, lake, keyCacheMs: 0, routes: [ticks] });
  try {
    const key = await createApiKey(lake.metadata, 'watcher');
    const response = await fetch(`${server.url}/ticks`, { headers: bearer(key) });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toMatch(/^data: 0/);
    await revokeApiKey(lake.metadata, 'watcher');
    // Read on: the server ends the stream (done); it streamed until the client left, and this
    // loop ran into the test's time limit.
    let next = await reader.read();
    while (!next.done) next = await reader.read();
    expect(next.done).toBe(true);
    // The key itself is refused on a new request.
    expect((await fetch(`${server.url}/ticks`, { headers: bearer(key) })).status).toBe(403);
  } finally {
    await server.close();
    await lake.close();
    cleanup();
  }
});
