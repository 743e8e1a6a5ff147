import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Lake } from '../../src/lake.js';
import { encodeBlock, encodeProcessInfo, encodeStreamInfo } from '../../src/wire.js';
import { compiled } from '../helpers/compiled.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { get, post } from './http-helpers.js';

/** The `dorsal` command, compiled by the tests' global setup. */
const BIN = compiled(fileURLToPath(new URL('../../src/cli/dorsal.ts', import.meta.url)));

/** Spawns `dorsal serve …` and resolves with its URL once it says it listens. */
async function serve(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /dorsal (?:ingestion and analytics|ingestion|analytics) listening on (http:\/\/\S+)/.exec(
        out,
      );
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`dorsal serve exited with ${code}: ${out}`)));
  });
  return { child, url };
}

/** Runs `dorsal serve …` to its exit: its code and what it wrote to stderr. */
async function refused(args: string[]): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, err };
}

describe('dorsal serve', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('serves ingestion on loopback and stops on SIGTERM', async () => {
    const { child, url } = await serve(['--port', '0', '--data', dir]);
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await get(url, '/health')).body).toEqual({ status: 'ok' });
      const process = makeProcess();
      const stream = makeStream(process.processId);
      const { block, objects } = makeBlock(stream, 64);
      expect((await post(url, 'process', encodeProcessInfo(process))).status).toBe(200);
      expect((await post(url, 'stream', encodeStreamInfo(stream))).status).toBe(200);
      expect((await post(url, 'block', encodeBlock(block))).body).toEqual({ inserted: true });
      const lake = Lake.open({ data: dir });
      const read = await lake.readBlock(block.blockId);
      expect(Buffer.from(read.payload.objects)).toEqual(Buffer.from(objects));
      await lake.close();
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = await exited;
      expect(code).toBe(0);
    }
  });

  it('stops gracefully on a SIGTERM sent the moment it says it listens (its handler is there by then)', async () => {
    // Before, one such SIGTERM in three killed it outright (exit by signal, its lake not closed).
    for (let run = 0; run < 8; run++) {
      const { child } = await serve(['--port', '0', '--data', dir]);
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      expect(await exited, `run ${run}`).toEqual([0, null]);
    }
  });

  it('refuses a bad option with a message and a non-zero exit', async () => {
    const { code, err } = await refused(['--port', 'eighty']);
    expect(code).not.toBe(0);
    expect(err).toContain("option '--port <port>' argument 'eighty' is invalid");
  });

  it('bounds the pages of its views by --page-timeout, and refuses one no timer can wait by', async () => {
    const { code, err } = await refused(['--port', '0', '--data', dir, '--page-timeout', '0']);
    expect(code).not.toBe(0);
    expect(err).toContain("option '--page-timeout <ms>' argument '0' is invalid");
    // 1 ms: less than opening the analytics for the first page takes (DuckDB loads then).
    const served = await serve(['--port', '0', '--data', dir, '--page-timeout', '1']);
    try {
      const page = await fetch(`${served.url}/views/data`);
      expect(page.status).toBe(503);
      expect(((await page.json()) as { error: { message: string } }).error.message).toContain(
        'its time limit of 1 ms passed',
      );
    } finally {
      const exited = once(served.child, 'exit');
      served.child.kill('SIGTERM');
      await exited;
    }
  });

  it('refuses an unknown lake URL scheme', async () => {
    const { code, err } = await refused(['--port', '0', '--db', 'mysql://db/lake']);
    expect(code).toBe(1);
    expect(err).toContain('unsupported metadata database URL "mysql://db/lake"');
  });
});
