import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Analytics } from '../../src/analytics.js';
import { IngestionService } from '../../src/ingestion.js';
import { collectErrors, openBrowser, pixelVariance } from './browser.js';
import { runDorsal, startDorsalServe } from './cli-helpers.js';
import { makeProcess, tempDir } from './fixtures.js';

const SYSTEM = 'examples/market/system.ts';
const LOSSY_SYSTEM = 'test/fixtures/lossy-system.ts';

interface ActorSummary {
  readonly actor: string;
  readonly stream: string;
  readonly lost: number;
}

describe('dorsal report, opened in Chromium', () => {
  const { dir, cleanup } = tempDir('dorsal-report-');
  const file = join(dir, 'report.html');
  let processId: string;
  let browser: Awaited<ReturnType<typeof openBrowser>>;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  /** Requests the page made, and those that would have left the file. */
  const requests: string[] = [];
  const outside: string[] = [];
  /** The report files the tests wrote: the only URLs a page may load. */
  const reports = new Set<string>();
  /** The servers the tests started: their pages may load what they serve (the live view's events). */
  const served: string[] = [];
  let analytics: Analytics;
  /** What the run said each actor did, lost included (counted by the queues' consumers). */
  let actors: ActorSummary[];
  /** Rows of a query of the recorded lake, as the report's numbers must match them. */
  const sql = async (text: string) => (await analytics.query(text)).rows;

  beforeAll(async () => {
    const run = await runDorsal(['run', SYSTEM, '--seconds', '1', '--data', dir, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { process: string; actors: ActorSummary[] };
    processId = summary.process;
    actors = summary.actors;
    const report = await runDorsal(['report', '--data', dir, '-o', file, '--json']);
    expect(report.code, report.stderr).toBe(0);
    expect(JSON.parse(report.stdout)).toMatchObject({ process: processId, output: file });
    analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    browser = await openBrowser();
    context = browser.context;
    const own = pathToFileURL(file).href;
    reports.add(own);
    await context.route('**/*', (route) => {
      const url = route.request().url();
      requests.push(url);
      if (reports.has(url) || served.some((origin) => url.startsWith(`${origin}/`))) return route.continue();
      outside.push(url);
      return route.abort();
    });
    page = await context.newPage();
    errors = collectErrors(page);
    await page.goto(own);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await analytics?.close();
    cleanup();
  });

  it('opens with no request leaving the file and no console error', async () => {
    await page.waitForSelector('svg[data-chart="topology"]');
    expect(outside).toEqual([]);
    expect(requests).toEqual([pathToFileURL(file).href]);
    expect(errors).toEqual([]);
    expect(await page.title()).toBe(`dorsal report ${processId}`);
  });

  it('draws the topology with the message counts of the lake on its edges', async () => {
    const produced = await sql('SELECT actor, stream, count(*) FROM messages GROUP BY ALL');
    const consumed = await sql('SELECT actor, stream, count(*) FROM timings GROUP BY ALL');
    expect(produced.length).toBeGreaterThan(0);
    for (const [actor, stream, n] of produced) {
      const edge = page.locator(`g.edge[data-from="actor:${actor}"][data-to="stream:${stream}"]`);
      expect(await edge.getAttribute('data-count')).toBe(String(n));
    }
    const persisterLost = new Map(
      (await sql("SELECT stream, lost + dropped FROM losses WHERE counted_by = 'persister'")).map(
        ([stream, n]) => [stream, Number(n)],
      ),
    );
    for (const [actor, stream, n] of consumed) {
      const edge = page.locator(`g.edge[data-from="stream:${stream}"][data-to="actor:${actor}"]`);
      expect(await edge.getAttribute('data-count')).toBe(String(n));
      // What the actor's consumer counted as lost (lapped) is what its timing records skip,
      // unless the persister lost some of those records too.
      const lapped = actors.find((a) => a.actor === actor && a.stream === stream)?.lost;
      const skipped = Number(await edge.getAttribute('data-lost'));
      if ((persisterLost.get(`timings:${actor}`) ?? 0) === 0) expect(skipped).toBe(lapped);
      else expect(skipped).toBeGreaterThanOrEqual(lapped ?? 0);
    }
    expect(await page.locator('g.edge').count()).toBe(produced.length + consumed.length);
  });

  it('draws a log-scale latency histogram per actor × stream whose bars hold the records the SQL counts', async () => {
    const buckets = await sql(
      'SELECT actor, stream, count(*), count(DISTINCT floor(log10(greatest(latency_ns, 1)) * 10)) FROM timings GROUP BY ALL ORDER BY ALL',
    );
    expect(buckets.length).toBe(3);
    for (const [actor, stream, n, distinct] of buckets) {
      const chart = page.locator(`svg[data-chart="latency"][data-actor="${actor}"][data-stream="${stream}"]`);
      expect(await chart.getAttribute('data-total')).toBe(String(n));
      const counts = await chart
        .locator('rect[data-count]')
        .evaluateAll((bars) => bars.map((b) => Number(b.getAttribute('data-count'))));
      expect(counts.length).toBe(Number(distinct));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(Number(n));
      const row = page.locator(
        `table[data-table="percentiles"] tr[data-actor="${actor}"][data-stream="${stream}"]`,
      );
      expect(await row.getAttribute('data-count')).toBe(String(n));
      expect(await chart.locator('[data-mark="p50"]').count()).toBe(1);
    }
  });

  it('draws throughput over time per stream, and the sequences skipped per actor × stream that lost any', async () => {
    const streams = (await sql('SELECT DISTINCT stream FROM messages ORDER BY 1')).map((r) => r[0]);
    const series = await page
      .locator('svg[data-chart="throughput"] path[data-series]')
      .evaluateAll((paths) =>
        paths.map((p) => [p.getAttribute('data-series'), Number(p.getAttribute('data-points'))] as const),
      );
    expect(series.map(([name]) => name)).toEqual(streams);
    for (const [, points] of series) expect(points).toBeGreaterThan(1);
    const lossy = (await sql('SELECT DISTINCT actor, stream FROM timings')).filter(([actor, stream]) =>
      actors.some((a) => a.actor === actor && a.stream === stream && a.lost > 0),
    );
    expect(await page.locator('[data-chart="gaps"]').getAttribute('data-series-count')).toBe(
      String(lossy.length),
    );
    expect(await page.locator('svg[data-chart^="metric:"]').count()).toBeGreaterThan(0);
    expect(await page.locator('svg[data-chart="log-levels"] g[data-label="info"]').count()).toBe(1);
  });

  it('lists the slowest trees, and a click shows that tree as a timeline of waits and handlers', async () => {
    const items = page.locator('.tree-list button[data-tree]');
    expect(await items.count()).toBeGreaterThan(1);
    await expect.poll(() => page.locator('[data-tree-view="1"]').isVisible()).toBe(false);
    await items.nth(1).click();
    const view = page.locator('[data-tree-view="1"]');
    await view.waitFor({ state: 'visible' });
    expect(await page.locator('[data-tree-view="0"]').isVisible()).toBe(false);
    expect(await view.locator('rect[data-kind="handler"]').count()).toBeGreaterThan(0);
    expect(await view.locator('rect[data-kind="wait"]').count()).toBeGreaterThan(0);
    expect(await items.nth(1).getAttribute('aria-pressed')).toBe('true');
    expect(errors).toEqual([]);
  });

  it('looks like something: a screenshot of the page is not blank', async () => {
    const png = await page.screenshot({ fullPage: true });
    const scratch = await context.newPage();
    try {
      expect(await pixelVariance(scratch, png)).toBeGreaterThan(100);
    } finally {
      await scratch.close();
    }
  });

  it('marks the edge of an actor that was lapped with the sequences it skipped, and plots them over time', async () => {
    const lossy = tempDir('dorsal-report-lossy-');
    try {
      const run = await runDorsal(['run', LOSSY_SYSTEM, '--seconds', '1', '--data', lossy.dir, '--json']);
      expect(run.code, run.stderr).toBe(0);
      const lapped = (JSON.parse(run.stdout) as { actors: ActorSummary[] }).actors.find(
        (a) => a.actor === 'laggard',
      )?.lost;
      expect(lapped).toBeGreaterThan(0);
      // `dorsal stats` says it too, beside the table.
      const stats = await runDorsal(['stats', '--data', lossy.dir, '--json']);
      expect(stats.code, stats.stderr).toBe(0);
      expect((JSON.parse(stats.stdout) as { losses: unknown[] }).losses).toContainEqual({
        stream: 'ticks',
        consumer: 'laggard',
        countedBy: 'actor',
        lost: lapped,
        poisoned: 0,
        dropped: 0,
        unrecorded: 0,
      });
      const text = await runDorsal(['stats', '--data', lossy.dir]);
      expect(text.stdout).toContain(`ticks: ${lapped!.toLocaleString('en-US')} lost by laggard`);
      // `dorsal trace` tells the actor's losses from the recording's.
      const trace = await runDorsal(['trace', '--data', lossy.dir, '-o', join(lossy.dir, 'trace.json')]);
      expect(trace.code, trace.stderr).toBe(0);
      expect(trace.stdout).toContain(
        `laggard lost ${lapped!.toLocaleString('en-US')} messages of ticks (lapped): it handled none of them`,
      );
      const persisterLost = (
        JSON.parse(stats.stdout) as { losses: { countedBy: string; lost: number }[] }
      ).losses
        .filter((l) => l.countedBy === 'persister')
        .reduce((n, l) => n + l.lost, 0);
      if (persisterLost === 0) expect(trace.stdout).not.toContain('the recording lost');
      else expect(trace.stdout).toContain(`the recording lost ${persisterLost.toLocaleString('en-US')} `);
      const out = join(lossy.dir, 'report.html');
      const report = await runDorsal(['report', '--data', lossy.dir, '-o', out]);
      expect(report.code, report.stderr).toBe(0);
      const lossyPage = await context.newPage();
      try {
        reports.add(pathToFileURL(out).href);
        await lossyPage.goto(pathToFileURL(out).href);
        const edge = lossyPage.locator('g.edge[data-from="stream:ticks"][data-to="actor:laggard"]');
        expect(await edge.getAttribute('class')).toContain('lossy');
        // What it skipped between the first and the last tick it handled: what it lost, less
        // what it lost before its first (at most that first tick's sequence).
        const skipped = Number(await edge.getAttribute('data-lost'));
        const first = Number(await edge.getAttribute('data-first-seq'));
        expect(skipped).toBeLessThanOrEqual(lapped!);
        expect(skipped).toBeGreaterThanOrEqual(lapped! - first);
        // And what its consumer counted, exactly, from the run's counts in the lake.
        expect(Number(await edge.getAttribute('data-lapped'))).toBe(lapped);
        expect(await edge.locator('title').textContent()).toContain(`lost by laggard's consumer`);
        const gaps = lossyPage.locator('svg[data-chart="gaps"] path[data-series="laggard ← ticks"]');
        expect(Number(await gaps.getAttribute('data-points'))).toBeGreaterThan(1);
      } finally {
        await lossyPage.close();
      }
    } finally {
      lossy.cleanup();
    }
  });

  it('a replay links to its original, and says it was replayed without --diff', async () => {
    const service = new IngestionService({ data: dir });
    const replay = makeProcess({ properties: { 'dorsal.replay_of': processId } });
    try {
      await service.ingestProcess(replay);
    } finally {
      await service.close();
    }
    const out = join(dir, 'replay.html');
    const report = await runDorsal(['report', '--data', dir, '--process', replay.processId, '-o', out]);
    expect(report.code, report.stderr).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain(`data-replay-of="${processId}"`);
    expect(html).toContain('data-divergences="absent"');
    expect(html).toContain('it was replayed without <code>--diff</code>');
    expect(html).toContain('No message recorded.');
  });

  it('the report of a --diff replay draws its divergences, in a file and served at /', async () => {
    const replayed = await runDorsal([
      'replay',
      '--process',
      processId,
      '--system',
      'test/fixtures/replay/market-qty-20.system.ts',
      '--speed',
      'max',
      '--diff',
      '--divergences',
      '3',
      '--data',
      dir,
      '--json',
    ]);
    expect(replayed.code, replayed.stderr).toBe(1);
    const { replay, diff } = JSON.parse(replayed.stdout) as {
      replay: string;
      diff: {
        diverged: number;
        streams: {
          stream: string;
          matched: number;
          differing: number;
          onlyRecorded: number;
          onlyReplayed: number;
        }[];
        divergences: { kind: string; stream: string; place: string; fields: { field: string }[] }[];
      };
    };
    expect(diff.diverged).toBeGreaterThan(3);
    const out = join(dir, 'diff.html');
    const report = await runDorsal(['report', '--data', dir, '--process', replay, '-o', out]);
    expect(report.code, report.stderr).toBe(0);
    const own = pathToFileURL(out).href;
    reports.add(own);
    const serve = await startDorsalServe(['--port', '0', '--data', dir]);
    served.push(serve.url);
    try {
      for (const url of [own, `${serve.url}/?process=${replay}`]) {
        const diffPage = await context.newPage();
        const pageErrors = collectErrors(diffPage);
        try {
          await diffPage.goto(url);
          const section = diffPage.locator('h2#divergences');
          expect(await section.textContent(), url).toBe('Divergences from the recording');
          expect(await diffPage.locator('p[data-divergences]').getAttribute('data-divergences')).toBe(
            String(diff.diverged),
          );
          const rows = diffPage.locator('table[data-table="diff-streams"] tbody tr');
          const drawn = await rows.evaluateAll((trs) =>
            trs.map((tr) => ({
              stream: tr.getAttribute('data-stream'),
              matched: Number(tr.getAttribute('data-matched')),
              differing: Number(tr.getAttribute('data-differing')),
              onlyRecorded: Number(tr.getAttribute('data-only-recorded')),
              onlyReplayed: Number(tr.getAttribute('data-only-replayed')),
            })),
          );
          expect(drawn, url).toEqual(diff.streams);
          const items = diffPage.locator('ol.divergences > li');
          expect(await items.count(), url).toBe(3);
          const first = items.first();
          expect(await first.getAttribute('data-kind')).toBe('differs');
          expect(await first.getAttribute('data-stream')).toBe('orders');
          expect(await first.locator('code').textContent()).toBe(diff.divergences[0]!.place);
          const field = first.locator('tr[data-field="qty"] td');
          expect(await field.allTextContents()).toEqual(['qty', '10', '20']);
          expect(pageErrors, url).toEqual([]);
        } finally {
          await diffPage.close();
        }
      }
    } finally {
      await serve.stop();
    }
  }, 180_000);
});
