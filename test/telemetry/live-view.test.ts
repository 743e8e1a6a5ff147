import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectErrors, openBrowser } from './browser.js';
import { runDorsal, spawnDorsal, startDorsalServe } from './cli-helpers.js';
import { tempDir } from './fixtures.js';

const SYSTEM = 'examples/market/system.ts';

describe('dorsal serve: the views at /, and the live view of a run in progress', () => {
  const { dir, cleanup } = tempDir('dorsal-live-');
  let key: string;
  let served: Awaited<ReturnType<typeof startDorsalServe>>;
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;
  let run: ReturnType<typeof spawnDorsal> | undefined;

  beforeAll(async () => {
    // A lake with a key: the page must get in as a browser does, with Basic credentials.
    const created = await runDorsal(['keys', 'create', '--name', 'viewer', '--data', dir]);
    expect(created.code, created.stderr).toBe(0);
    key = created.stdout.trim();
    served = await startDorsalServe(['--port', '0', '--data', dir]);
  }, 60_000);

  afterAll(async () => {
    if (run !== undefined && run.exitCode === null && run.signalCode === null) {
      // Its recording is not needed: no flush towards a server that is gone.
      const exited = once(run, 'exit');
      run.kill('SIGKILL');
      await exited;
    }
    await browser?.close();
    await served?.stop();
    cleanup();
  });

  it('asks a browser for the key: 401 with a Basic challenge, then the page with it', async () => {
    const refused = await fetch(`${served.url}/`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Basic realm="dorsal"/);
    const basic = `Basic ${Buffer.from(`anyone:${key}`).toString('base64')}`;
    const page = await fetch(`${served.url}/`, { headers: { authorization: basic } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('holds no recorded process yet');
    // Basic credentials open pages only: a browser would send them with another site's POST too.
    const post = await fetch(`${served.url}/analytics/query`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ sql: 'SELECT 1' }),
    });
    expect(post.status).toBe(401);
  });

  it('shows the running process at / and its live numbers change, pushed by server-sent events', async () => {
    // Longer than the test needs: it is killed once the test is done.
    run = spawnDorsal(['run', SYSTEM, '--seconds', '120', '--url', served.url, '--key', key]);
    let runErr = '';
    run.stderr?.on('data', (chunk: Buffer) => {
      runErr += chunk.toString();
    });
    const auth = { authorization: `Bearer ${key}` };
    // The process is in the lake once the run's persister has announced it.
    await expect
      .poll(
        async () => {
          const answer = await fetch(`${served.url}/analytics/query`, {
            method: 'POST',
            headers: { ...auth, 'content-type': 'application/json' },
            body: JSON.stringify({ sql: 'SELECT count(*)::INTEGER FROM timings' }),
          });
          return answer.ok ? ((await answer.json()) as { rows: number[][] }).rows[0]?.[0] : 0;
        },
        { timeout: 30_000, interval: 250 },
      )
      .toBeGreaterThan(0);

    browser = await openBrowser({ httpCredentials: { username: 'viewer', password: key } });
    const page = await browser.context.newPage();
    const errors = collectErrors(page);
    await page.goto(`${served.url}/`);
    await page.waitForSelector('svg[data-chart="topology"]');
    expect(await page.locator('.picker li[data-process]').count()).toBe(1);

    // Two different seconds, each with its rates and percentiles, pushed to the page.
    const seconds = new Set<string>();
    await expect
      .poll(
        async () => {
          const second = await page.locator('[data-live-status]').getAttribute('data-second');
          if (second !== null && second !== 'null') seconds.add(second);
          return seconds.size;
        },
        { timeout: 30_000, interval: 200 },
      )
      .toBeGreaterThanOrEqual(2);
    expect(Number(await page.getAttribute('body', 'data-live-updates'))).toBeGreaterThanOrEqual(2);
    // A second's blocks of some streams may not be in the lake yet: some rows, not all four.
    expect(await page.locator('[data-live-rates] tr').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-live-latency] tr').count()).toBeGreaterThan(0);
    expect(Number(await page.locator('[data-live-total]').getAttribute('data-value'))).toBeGreaterThan(0);
    expect(
      Number(await page.locator('[data-live-chart]').getAttribute('data-samples')),
    ).toBeGreaterThanOrEqual(2);
    expect(errors).toEqual([]);

    // What the page draws, as JSON, for scripts.
    const processId = await page.locator('.picker li[data-process]').getAttribute('data-process');
    const data = await fetch(`${served.url}/views/data?process=${processId}`, { headers: auth });
    expect(data.status).toBe(200);
    const report = (await data.json()) as {
      process: { processId: string };
      topology: { produced: unknown[] };
    };
    expect(report.process.processId).toBe(processId);
    expect(report.topology.produced.length).toBeGreaterThan(0);
    expect(run.exitCode, runErr).toBeNull();
  }, 120_000);

  it('serves no view where it serves ingestion only', async () => {
    const ingestion = await startDorsalServe(['--port', '0', '--data', dir, '--role', 'ingestion']);
    try {
      const auth = { authorization: `Bearer ${key}` };
      for (const path of ['/', '/views/data', '/live']) {
        expect((await fetch(`${ingestion.url}${path}`, { headers: auth })).status, path).toBe(404);
      }
    } finally {
      expect(await ingestion.stop()).toBe(0);
    }
  });

  it('stops with a page still listening to /live', async () => {
    expect(await served.stop()).toBe(0);
  });
});
