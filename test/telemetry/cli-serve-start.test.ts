import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { spawnDorsal, startDorsalServe } from './cli-helpers.js';
import { tempDir } from './fixtures.js';
import { get } from './http-helpers.js';
import { POSTGRES_URL, S3RVER_CREDENTIALS, startS3, uniqueSchema } from './services.js';

/** A spawned `dorsal serve`: what it printed so far, and its end. */
interface Serve {
  readonly child: ChildProcess;
  readonly out: { stdout: string; stderr: string };
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
}

function spawnServe(args: readonly string[], env: Record<string, string> = {}): Serve {
  const child = spawnDorsal(['serve', '--port', '0', ...args], env);
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (chunk: Buffer) => {
    out.stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    out.stderr += chunk.toString();
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, out, exited };
}

/** Runs `dorsal serve ARGS…` until it exits, or 20 s (a serve that took its lake runs on: killed). */
async function refusedServe(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}> {
  const serve = spawnServe(args, env);
  const timer = setTimeout(() => serve.child.kill('SIGKILL'), 20_000);
  const [code, signal] = await serve.exited;
  clearTimeout(timer);
  return { code, signal, ...serve.out };
}

/** A loopback port nothing listens on (one that was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

describe('dorsal serve, given a lake or an analytics cache it cannot use', () => {
  const { dir, cleanup } = tempDir('dorsal-serve-start-');
  afterAll(cleanup);

  /** Exit 1, before listening, with one line that names the option and the reason. */
  function expectRefused(run: Awaited<ReturnType<typeof refusedServe>>, line: RegExp, what: string): void {
    expect(run.signal, `${what}: still serving after 20 s; stdout: ${run.stdout}`).toBeNull();
    expect(run.code, what).toBe(1);
    expect(run.stdout, what).toBe('');
    expect(run.stderr.trim().split('\n'), `${what}: ${run.stderr}`).toHaveLength(1);
    expect(run.stderr, what).toMatch(line);
    expect(run.stderr, what).not.toMatch(/^\s+at /m);
  }

  it('refuses a --data that is a file, or whose lake.sqlite is damaged', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a lake');
    expectRefused(
      await refusedServe(['--data', file]),
      /^dorsal: --data names a lake this server cannot use: opening the SQLite lake at .*a-file.*: EEXIST: a file, not a directory, is at .*a-file \(DORSAL_CLI\)\n$/,
      '--data a file',
    );

    const damaged = join(dir, 'damaged');
    mkdirSync(damaged);
    writeFileSync(join(damaged, 'lake.sqlite'), Buffer.alloc(8192, 0x5a));
    expectRefused(
      await refusedServe(['--data', damaged]),
      /^dorsal: --data names a lake this server cannot use: opening the SQLite lake at .*damaged\/lake\.sqlite: file is not a database \(DORSAL_CLI\)\n$/,
      'a damaged lake.sqlite',
    );
    // The same file named by --db, with a blob directory of its own.
    expectRefused(
      await refusedServe([
        '--db',
        join(damaged, 'lake.sqlite'),
        '--blobs',
        join(dir, 'blobs'),
        '--role',
        'ingestion',
      ]),
      /^dorsal: --db names a lake this server cannot use: .*file is not a database \(DORSAL_CLI\)\n$/,
      '--db a damaged file',
    );
  }, 60_000);

  it('refuses an S3 --blobs whose bucket does not exist, or with no credentials to sign with (they are no outage)', async () => {
    const s3 = await startS3();
    try {
      const blobs = `s3://no-such-bucket/lake?endpoint=${s3.endpoint}&region=us-east-1&forcePathStyle=true`;
      // NODE_NO_WARNINGS: the AWS SDK warns of Node 20 on stderr.
      const credentials = {
        NODE_NO_WARNINGS: '1',
        AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      };
      expectRefused(
        await refusedServe(['--data', join(dir, 's3-lake'), '--blobs', blobs], credentials),
        /^dorsal: --blobs names a lake this server cannot use: S3 bucket no-such-bucket: checking bucket no-such-bucket \(HTTP 404\)/,
        'no such bucket',
      );
      const none = {
        NODE_NO_WARNINGS: '1',
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_PROFILE: 'dorsal-no-such-profile',
        AWS_EC2_METADATA_DISABLED: 'true',
      };
      expectRefused(
        await refusedServe(
          ['--data', join(dir, 's3-lake'), '--blobs', blobs.replace('no-such-bucket', 'lake')],
          none,
        ),
        /^dorsal: --blobs names a lake this server cannot use: /,
        'no credentials',
      );
    } finally {
      await s3.stop();
    }
  }, 60_000);

  it('refuses a --blobs directory that is a file', async () => {
    const file = join(dir, 'blobs-file');
    writeFileSync(file, 'not a directory');
    expectRefused(
      await refusedServe(['--data', join(dir, 'blobs-lake'), '--blobs', file]),
      /^dorsal: --blobs names a lake this server cannot use: blob directory .*blobs-file is not writable: ENOTDIR/,
      '--blobs a file',
    );
  }, 30_000);

  it('refuses an --analytics-cache that cannot be made, and an ingestion-only server needs none', async () => {
    const file = join(dir, 'cache-file');
    writeFileSync(file, 'not a directory');
    const lake = join(dir, 'lake');
    expectRefused(
      await refusedServe(['--data', lake, '--analytics-cache', file]),
      /^dorsal: --analytics-cache .*cache-file cannot hold the analytics' partitions: EEXIST: a file, not a directory, is at .*cache-file \(DORSAL_CLI\)\n$/,
      '--analytics-cache a file',
    );
    // procfs answers ENOENT to a mkdir there.
    if (existsSync('/proc/self')) {
      expectRefused(
        await refusedServe(['--data', lake, '--analytics-cache', '/proc/nope']),
        /^dorsal: --analytics-cache \/proc\/nope cannot hold the analytics' partitions: ENOENT.* \(DORSAL_CLI\)\n$/,
        '--analytics-cache /proc/nope',
      );
    }
    const ingestion = await startDorsalServe([
      '--port',
      '0',
      '--data',
      lake,
      '--role',
      'ingestion',
      '--analytics-cache',
      file,
    ]);
    try {
      expect((await get(ingestion.url, '/ready')).status).toBe(200);
    } finally {
      expect(await ingestion.stop()).toBe(0);
    }
  }, 60_000);

  it('refuses a PostgreSQL lake that answers it cannot be used (no such database)', async () => {
    const url = new URL(POSTGRES_URL);
    url.pathname = '/dorsal_test_no_such_database';
    url.searchParams.set('schema', 'dorsal_test_never');
    expectRefused(
      await refusedServe(['--db', url.toString(), '--blobs', join(dir, 'pg-blobs')]),
      /^dorsal: --db names a lake this server cannot use: PostgreSQL lake: .*"dorsal_test_no_such_database" does not exist \(DORSAL_CLI\)\n$/,
      'no such database',
    );
  }, 30_000);

  it('serves a PostgreSQL lake that is down at start, says so, and answers 503 until it is up', async () => {
    const { url: lakeUrl, drop } = uniqueSchema();
    const postgres = new URL(POSTGRES_URL);
    const port = await closedPort();
    const url = new URL(lakeUrl);
    url.host = `127.0.0.1:${port}`;
    const serve = spawnServe(['--db', url.toString(), '--blobs', join(dir, 'down-blobs')]);
    // PostgreSQL, as reached through `port` once it is "up".
    const sockets = new Set<Socket>();
    const proxy = createServer((socket) => {
      const upstream = connect(Number(postgres.port || 5432), postgres.hostname);
      for (const s of [socket, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
      }
      socket.pipe(upstream).pipe(socket);
    });
    try {
      await until(
        () => serve.child.exitCode !== null || /listening on http:/.test(serve.out.stdout),
        'serve listening',
      );
      expect(serve.out.stdout, serve.out.stderr).toMatch(/listening on http:/);
      const base = /listening on (http:\/\/\S+)/.exec(serve.out.stdout)?.[1] as string;
      expect(serve.out.stderr).toMatch(
        /^dorsal: the lake is unavailable \(served all the same: 503 until it is back\): PostgreSQL lake: .*ECONNREFUSED/,
      );
      expect((await get(base, '/health')).status).toBe(200);
      expect((await get(base, '/ready')).status).toBe(503);
      proxy.listen(port, '127.0.0.1');
      await once(proxy, 'listening');
      await until(async () => (await get(base, '/ready')).status === 200, 'ready once PostgreSQL is up');
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
      for (const s of sockets) s.destroy();
      proxy.close();
      await drop();
    }
    expect(serve.child.exitCode).toBe(0);
    expect(serve.out.stderr).not.toMatch(/cannot use/);
  }, 60_000);
});
