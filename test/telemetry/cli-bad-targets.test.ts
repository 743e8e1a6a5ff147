import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { System } from '../../src/index.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { DORSAL_BIN, runDorsal, spawnDorsal, startDorsalServe } from './cli-helpers.js';
import { makeProcess, tempDir } from './fixtures.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

/** An HTTP server on a free port that answers every request with `handler`. */
async function fakeServer(
  handler: Parameters<typeof createServer>[1],
): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('dorsal given a target that is not what it should be', () => {
  const { dir, cleanup } = tempDir('dorsal-cli-targets-');
  const lake = join(dir, 'lake');
  const servers: Server[] = [];

  beforeAll(async () => {
    const system = new System(spine, { persist: { data: lake } });
    system.spawn(fixture('feed'), { args: { count: 10, perLoop: 10 } });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('gateway'));
    await system.start();
    await until(() => system.spine.queue(2).stats().published === 20, 'every fill');
    await system.stop();
  }, 120_000);
  afterAll(() => {
    for (const server of servers) server.close();
    cleanup();
  });

  for (const [option, value, message] of [
    // One JavaScript string holds 512 Mi characters at most.
    [
      '--query-bytes',
      String(512 * 1024 * 1024),
      /--query-bytes .* expected an integer in \[1024, 268435456\]/,
    ],
    [
      '--query-memory',
      'lots',
      /--query-memory .* expected a size from 64MiB to 1024TiB, such as '2GB' or '512MiB'/,
    ],
  ] as const) {
    it(`serve refuses ${option} ${value}, in one line`, async () => {
      const child = spawnDorsal(['serve', '--data', lake, '--port', '0', option, value]);
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      // A serve that took it would run on: it is ended after a while.
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const [code] = (await once(child, 'exit')) as [number | null];
      clearTimeout(timer);
      expect(code).toBe(1);
      expect(stderr).toMatch(message);
    }, 30_000);
  }

  it('a command over the embedded lake holds the analytics to --query-memory (or DORSAL_QUERY_MEMORY), and refuses a size it cannot take', async () => {
    const sql = "SELECT current_setting('memory_limit') AS m";
    const given = await runDorsal(['query', sql, '--data', lake, '--query-memory', '256MB', '--json']);
    expect(given.code, given.stderr).toBe(0);
    expect(given.stdout).toContain('244.1 MiB');
    const fromEnv = await runDorsal(['query', sql, '--data', lake, '--json'], {
      DORSAL_QUERY_MEMORY: '1GiB',
    });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(fromEnv.stdout).toContain('1.0 GiB');
    const tiny = await runDorsal(['query', 'SELECT 1', '--data', lake, '--query-memory', '1MB']);
    expect(tiny.code).toBe(1);
    expect(tiny.stderr).toMatch(/--query-memory .* expected a size from 64MiB to 1024TiB/);
  }, 60_000);

  it('trace and report refuse an -o inside the lake, and leave the lake as it was', async () => {
    const before = readFileSync(join(lake, 'lake.sqlite'));
    symlinkSync(join(lake, 'lake.sqlite'), join(dir, 'link.html'));
    for (const output of [
      join(lake, 'lake.sqlite'),
      join(lake, 'blobs', 'x.json'),
      lake,
      join(dir, 'link.html'),
    ]) {
      for (const command of ['trace', 'report']) {
        const { code, stderr } = await runDorsal([command, '--data', lake, '-o', output]);
        expect(code, `${command} -o ${output}`).toBe(1);
        expect(stderr.trim().split('\n')).toHaveLength(1);
        expect(stderr).toMatch(
          /^dorsal: -o .* is the lake('s own (lake\.sqlite|blobs))? in .*: write it elsewhere/,
        );
      }
    }
    expect(readFileSync(join(lake, 'lake.sqlite')).equals(before)).toBe(true);
    const listed = await runDorsal(['processes', '--data', lake]);
    expect(listed.code, listed.stderr).toBe(0);
    const beside = await runDorsal(['report', '--data', lake, '-o', join(dir, 'report.html')]);
    expect(beside.code, beside.stderr).toBe(0);
  }, 60_000);

  it('report -o - writes the HTML to stdout (as trace -o - does) and what it says to stderr; an -o it cannot write is one line', async () => {
    const dash = join(process.cwd(), '-');
    try {
      const piped = await runDorsal(['report', '--data', lake, '-o', '-']);
      expect(piped.code, piped.stderr).toBe(0);
      expect(piped.stdout).toMatch(/^<!doctype html>/);
      expect(piped.stdout.trimEnd()).toMatch(/<\/html>$/);
      expect(piped.stderr).toMatch(
        /^report of process \S+ \([\d,]+ messages\) written to stdout \([\d,]+ bytes\)\n$/,
      );
      expect(existsSync(dash)).toBe(false);
    } finally {
      rmSync(dash, { force: true });
    }
    const missing = join(dir, 'no-such-dir', 'report.html');
    const { code, stderr } = await runDorsal(['report', '--data', lake, '-o', missing]);
    expect(code).toBe(1);
    expect(stderr).toBe(
      `dorsal: cannot write ${missing} (ENOENT): give -o a file in a directory you can write (DORSAL_CLI)\n`,
    );
  }, 60_000);

  it('keys list and revoke, and retention, refuse a --data with no lake (none is made); keys create makes one and says so', async () => {
    const typo = join(dir, 'typo');
    for (const args of [
      ['keys', 'list', '--data', typo],
      ['keys', 'revoke', 'k1', '--data', typo],
      ['retention', '--days', '1', '--data', typo],
    ]) {
      const { code, stderr } = await runDorsal(args);
      expect(code, args.join(' ')).toBe(1);
      expect(stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(stderr, args.join(' ')).toMatch(/^dorsal: no lake at .*typo\/lake\.sqlite: give the --data/);
      expect(existsSync(typo), args.join(' ')).toBe(false);
    }
    const fresh = join(dir, 'fresh');
    const created = await runDorsal(['keys', 'create', '--name', 'k1', '--data', fresh]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).toMatch(/^dorsal: no lake was at .*fresh\/lake\.sqlite: a new one holds the key/);
    const listed = await runDorsal(['keys', 'list', '--data', fresh]);
    expect(listed.stdout).toMatch(/^k1\t/);
    // An existing lake is used as it is, quietly; named by --db in any case of its scheme too.
    const again = await runDorsal(['keys', 'create', '--name', 'k2', '--data', fresh]);
    expect(again.stderr).not.toMatch(/no lake was/);
    for (const db of [`SQLITE:${join(fresh, 'lake.sqlite')}`, `File://${join(fresh, 'lake.sqlite')}`]) {
      const named = await runDorsal(['keys', 'list', '--db', db]);
      expect(named.code, `${db}: ${named.stderr}`).toBe(0);
      expect(named.stdout).toMatch(/^k1\t.*\nk2\t/);
    }
    const remote = await runDorsal(['keys', 'list', '--db', 'sqlite://host/lake.sqlite']);
    expect(remote.code).toBe(1);
    expect(remote.stderr).toMatch(
      /^dorsal: "sqlite:\/\/host\/lake\.sqlite" is no local file URL .*\(DORSAL_LAKE_CONFIG\)\n$/,
    );
  }, 60_000);

  it('an empty --process is refused, not taken for the start of every id (with one process, that one)', async () => {
    for (const empty of ['', ' ']) {
      const { code, stdout, stderr } = await runDorsal(['stats', '--data', lake, '--process', empty]);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).toMatch(/--process needs an id, or the start of one/);
    }
  }, 60_000);

  it('status: a server not there, or one that is no dorsal serve, is said in one line, exit 1', async () => {
    const other = await fakeServer((_req, res) => res.end('{"ok":true}'));
    servers.push(other.server);
    const web = await fakeServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end(`<!DOCTYPE html>\n<html>\n<body>\n${'<p>Not Found</p>\n'.repeat(200)}</body>\n</html>\n`);
    });
    servers.push(web.server);
    // JSON errors of other shapes: a null error (was a TypeError and its stack), and a message
    // that breaks lines and carries a terminal escape (was printed as it came).
    const nullError = await fakeServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":null}');
    });
    servers.push(nullError.server);
    const textError = await fakeServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{\n  "error": "Not Found"\n}\n');
    });
    servers.push(textError.server);
    const brokenLines = await fakeServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"X","message":"bad\\ngateway\\u001b[31m red"}}');
    });
    servers.push(brokenLines.server);
    const closed = await fakeServer(() => {});
    closed.server.close();
    for (const [url, message] of [
      [other.url, /answered 200 but not as dorsal serve does/],
      [
        nullError.url,
        /: 500 not as dorsal serve does \(application\/json: "\{\\"error\\":null\}"\): is it a dorsal server\?$/m,
      ],
      [
        textError.url,
        /: 404 not as dorsal serve does \(application\/json: "\{ \\"error\\": \\"Not Found\\" \}"\)/,
      ],
      [brokenLines.url, /: 502 bad gateway \[31m red \(X\)$/m],
      [
        web.url,
        /: 404 not as dorsal serve does \(text\/html: "<!DOCTYPE html> <html> <body> <p>Not Found<\/p>.*"\): is it a dorsal server\?$/m,
      ],
      [
        closed.url,
        /cannot reach http:\/\/127\.0\.0\.1:\d+: is `dorsal serve` running there\? \(connect ECONNREFUSED/,
      ],
      ['not a url', /--url not a url is not a URL/],
    ] as const) {
      const { code, stdout, stderr } = await runDorsal(['status', '--url', url]);
      expect(code, url).toBe(1);
      expect(stdout).toBe('');
      expect(stderr.trim().split('\n'), url).toHaveLength(1);
      expect(stderr).toMatch(message);
    }
  }, 60_000);

  it('a server that answers JSON of another shape is said so, not a TypeError', async () => {
    const other = await fakeServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end('{"columns":[{"name":"x"}],"rows":"nope"}');
    });
    servers.push(other.server);
    const nulls = await fakeServer((_req, res) => {
      res.statusCode = 500;
      res.end('null');
    });
    servers.push(nulls.server);
    for (const [url, message] of [
      [other.url, /^dorsal: the server answered 200 with JSON that is no query answer/],
      [nulls.url, /^dorsal: the server answered 500 \(DORSAL_REMOTE\)/],
    ] as const) {
      const { code, stderr } = await runDorsal(['processes', '--url', url]);
      expect(code, url).toBe(1);
      expect(stderr.trim().split('\n'), url).toHaveLength(1);
      expect(stderr).toMatch(message);
    }
  }, 60_000);

  // /dev/full: every write fails with ENOSPC (Linux, as CI; macOS has no such device).
  it('a stdout that cannot be written (a full disk) is said in one line, exit 1', async () => {
    const full = openSync('/dev/full', 'w');
    try {
      for (const args of [
        ['processes', '--data', lake],
        ['trace', '--data', lake, '-o', '-'],
        // It said 'written to stdout' first.
        ['report', '--data', lake, '-o', '-'],
      ]) {
        const child = spawn(process.execPath, [DORSAL_BIN, ...args], {
          stdio: ['ignore', full, 'pipe'],
        });
        let stderr = '';
        child.stderr?.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        const [code] = (await once(child, 'exit')) as [number | null];
        expect(code, args.join(' ')).toBe(1);
        expect(stderr.trim().split('\n'), args.join(' ')).toEqual([
          'dorsal: cannot write to stdout (ENOSPC)',
        ]);
      }
    } finally {
      closeSync(full);
    }
  }, 60_000);

  it('serve: a query sent without content-type application/json is told to send that', async () => {
    const serve = await startDorsalServe(['--port', '0', '--data', join(dir, 'served')]);
    try {
      const res = await fetch(`${serve.url}/analytics/query`, { method: 'POST', body: '{"sql":"SELECT 1"}' });
      expect(res.status).toBe(415);
      const body = (await res.json()) as { error: { message: string } };
      expect(body.error.message).toMatch(/^expected content-type application\/json, got "text\/plain/);
    } finally {
      await serve.stop();
    }
  }, 60_000);

  it('processes: a recorded exe with control characters prints escaped, not as a terminal escape or a split row', async () => {
    const data = join(dir, 'controls');
    const written = Lake.open({ data });
    try {
      await written.metadata.insertProcess(makeProcess({ exe: 'evil\u001b[2J\nexe' }));
    } finally {
      await written.close();
    }
    const { code, stdout, stderr } = await runDorsal(['processes', '--data', data]);
    expect(code, stderr).toBe(0);
    expect(stdout.split('\n')[1]).toMatch(/^\S+ +evil\\u001b\[2J\\nexe +/);
    expect(stdout).not.toContain('\u001b');
  }, 60_000);
});
