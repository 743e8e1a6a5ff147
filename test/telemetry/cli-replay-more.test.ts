import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compiled } from '../helpers/compiled.js';
import { runDorsal, startDorsalServe } from './cli-helpers.js';
import {
  DAY_NS,
  FIXTURES,
  keptDiff,
  newestProcess,
  publishTimes,
  query,
  type ReplayJson,
  replay,
  rewritePublishTimes,
  runDorsalWithin,
  SYSTEM,
  TWO_FEEDS,
} from './cli-replay-helpers.js';
import { tempDir } from './fixtures.js';

describe('dorsal replay of other recordings, through a server and of odd runs', () => {
  it('through a server (--url), whose row limit is lower than a stream: no divergence', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-url-');
    const serve = await startDorsalServe([
      '--port',
      '0',
      '--data',
      join(dir, 'lake'),
      '--query-rows',
      '5000',
    ]);
    try {
      const run = await runDorsal(['run', SYSTEM, '--seconds', '1', '--url', serve.url]);
      expect(run.code, run.stderr).toBe(0);
      const { code, json, stderr } = await replay(['--speed', 'max', '--diff', '--url', serve.url]);
      expect(code, stderr).toBe(0);
      expect(json.played).toBeGreaterThan(5000);
      expect(json.diff!.diverged).toBe(0);
      const ticks = json.diff!.streams.find((s) => s.stream === 'ticks')!;
      expect(ticks.matched).toBe(json.played);
      // Kept in the server's lake, through its ingestion.
      const kept = await keptDiff(['--url', serve.url], json.replay);
      expect(kept.diffs).toEqual([[json.process, 0, 5, null, 'dorsal.replay-diff.v1+json']]);
      expect(kept.streams).toEqual(json.diff!.streams);
      expect(kept.divergences).toEqual([]);
    } finally {
      await serve.stop();
      cleanup();
    }
  }, 120_000);

  it('orders divergences with no ingress ancestor as the JS placement did: by stream, then publication', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-unprompted-');
    try {
      const run = await runDorsal([
        'run',
        `${FIXTURES}/unprompted-2.system.ts`,
        '--seconds',
        '1',
        '--data',
        dir,
      ]);
      expect(run.code, run.stderr).toBe(0);
      // The recording's two orders and two fills, published unprompted, are not replayed: roots of
      // their own trees, all tied on their ingress (none) and their path (none), and on seq across
      // streams.
      const system = ['--system', `${FIXTURES}/unprompted-0.system.ts`, '--speed', 'max', '--diff'];
      const all = await replay([...system, '--data', dir]);
      expect(all.code, all.stderr).toBe(1);
      expect(all.json.diff!.divergences.map((d) => d.place)).toEqual([
        '~orders:0',
        '~orders:1',
        '~fills:0',
        '~fills:1',
      ]);
      const first = await replay([...system, '--divergences', '2', '--data', dir]);
      expect(first.json.diff!.divergences.map((d) => d.place)).toEqual(['~orders:0', '~orders:1']);
    } finally {
      cleanup();
    }
  }, 90_000);

  it('through a server (--url) whose row limit is lower than the streams: every stream counted', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-rows-');
    const serve = await startDorsalServe(['--port', '0', '--data', join(dir, 'lake'), '--query-rows', '2']);
    try {
      const run = await runDorsal([
        'run',
        `${FIXTURES}/unprompted-2.system.ts`,
        '--seconds',
        '1',
        '--url',
        serve.url,
      ]);
      expect(run.code, run.stderr).toBe(0);
      const { code, json, stderr } = await replay([
        '--system',
        `${FIXTURES}/unprompted-0.system.ts`,
        '--speed',
        'max',
        '--diff',
        '--url',
        serve.url,
      ]);
      expect(code, stderr).toBe(1);
      // Exit 1 for the divergences alone: the diff was kept in the server's lake.
      expect(stderr).not.toContain('cannot be kept');
      expect(json.diff!.diverged).toBe(4);
      expect(json.diff!.streams).toEqual([
        { stream: 'ticks', matched: 3, differing: 0, onlyRecorded: 0, onlyReplayed: 0 },
        { stream: 'orders', matched: 0, differing: 0, onlyRecorded: 2, onlyReplayed: 0 },
        { stream: 'fills', matched: 0, differing: 0, onlyRecorded: 2, onlyReplayed: 0 },
      ]);
      expect(json.diff!.divergences).toHaveLength(4);
    } finally {
      await serve.stop();
      cleanup();
    }
  }, 120_000);

  it('through a server (--url): a thousand divergences, each with its chain', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-url-chains-');
    const serve = await startDorsalServe(['--port', '0', '--data', join(dir, 'lake')]);
    try {
      const run = await runDorsal(['run', SYSTEM, '--seconds', '1', '--url', serve.url]);
      expect(run.code, run.stderr).toBe(0);
      // Their chains are asked for by sequence number: no more at once than a query's SQL may hold.
      const { code, json, stderr } = await replay([
        '--system',
        `${FIXTURES}/market-qty-20.system.ts`,
        '--speed',
        'max',
        '--diff',
        '--divergences',
        '1000',
        '--url',
        serve.url,
      ]);
      expect(code, stderr).toBe(1);
      expect(stderr).not.toContain('cannot be kept');
      const divergences = json.diff!.divergences;
      expect(divergences).toHaveLength(1000);
      for (const d of divergences) {
        expect(d.chain.map((m) => m.stream)).toEqual(['ticks', 'books', 'orders']);
        expect(d.chain[2]).toEqual(d.recorded);
      }
      // Kept in the server's lake, and read back through it at once.
      const kept = await keptDiff(['--url', serve.url], json.replay);
      expect(kept.diffs).toEqual([
        [json.process, json.diff!.diverged, 1000, null, 'dorsal.replay-diff.v1+json'],
      ]);
      expect(kept.divergences).toHaveLength(1000);
    } finally {
      await serve.stop();
      cleanup();
    }
  }, 120_000);

  it('of a chain 3,000 deep: tree --message of a message below the 256 levels kept finds its tree (it said the message vanished)', async () => {
    const { dir, cleanup } = tempDir('dorsal-tree-deep-');
    try {
      const run = await runDorsal(['run', `${FIXTURES}/echo.system.ts`, '--seconds', '1', '--data', dir]);
      expect(run.code, run.stderr).toBe(0);
      // orders #254 is at depth 255 (the tick is the root), the deepest kept; the ones below are cut.
      for (const message of ['orders:254', 'orders:255', 'orders:2999']) {
        const tree = await runDorsal(['tree', '--message', message, '--data', dir, '--json']);
        expect(tree.code, `${message}: ${tree.stderr}`).toBe(0);
        const [whole] = JSON.parse(tree.stdout) as { nodes: number; root: { stream: string; seq: number } }[];
        expect([whole!.root.stream, whole!.root.seq, whole!.nodes]).toEqual(['ticks', 0, 3001]);
      }
    } finally {
      cleanup();
    }
  }, 120_000);

  it('of a chain 3,000 deep, by the CLI: run draws its tree cut at 256 levels, tree --json says what was cut, replay draws a divergence 3,000 deep', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-echo-');
    try {
      // Drawn by recursion, each of these overflowed the stack.
      const run = await runDorsal(['run', `${FIXTURES}/echo.system.ts`, '--seconds', '1', '--data', dir]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('… 2,745 more messages below, not drawn');
      const tree = await runDorsal(['tree', '--message', 'ticks:0', '--data', dir, '--json']);
      expect(tree.code, tree.stderr).toBe(0);
      const [whole] = JSON.parse(tree.stdout) as {
        nodes: number;
        root: { children: unknown[]; cut?: number };
      }[];
      expect(whole!.nodes).toBe(3001);
      let level = whole!.root;
      let depth = 0;
      while (level.children.length > 0) {
        level = level.children[0] as typeof level;
        depth++;
      }
      expect([depth, level.cut]).toEqual([255, 2745]);
      const { code, stdout, stderr } = await runDorsal([
        'replay',
        '--system',
        `${FIXTURES}/echo-changed.system.ts`,
        '--speed',
        'max',
        '--diff',
        '--data',
        dir,
      ]);
      expect(code, stderr).toBe(1);
      expect(stdout).toMatch(/orders #2999 differs from its replayed twin #2999/);
      // The chain from the tick down to it, one line a message.
      expect(stdout.split('\n').filter((l) => /orders #\d+ echo/.test(l)).length).toBeGreaterThanOrEqual(
        3000,
      );
    } finally {
      cleanup();
    }
  }, 180_000);

  it('of a chain 3,000 deep (a feedback loop): placed in memory, not by a recursive query that outruns a 5 s query limit', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-deep-');
    const serve = await startDorsalServe([
      '--port',
      '0',
      '--data',
      join(dir, 'lake'),
      '--query-timeout',
      '5000',
    ]);
    try {
      const child = spawn(process.execPath, [compiled(`${FIXTURES}/record-echo.ts`), serve.url], {
        stdio: 'inherit',
      });
      const [exit] = (await once(child, 'exit')) as [number | null];
      expect(exit).toBe(0);
      // The recursive placing takes a step per level, each over every message: 20 s here, past the
      // limit; a tree deeper than MAX_LAKE_DEPTH is read in pages and placed in memory instead.
      const { json, stderr } = await replay([
        '--system',
        `${FIXTURES}/echo.system.ts`,
        '--speed',
        'max',
        '--diff',
        '--url',
        serve.url,
      ]);
      expect(json.diff, stderr).toBeDefined();
      expect(json.diff!.streams.find((s) => s.stream === 'ticks')!.matched).toBe(1);
      expect(json.diff!.diverged).toBe(0);
    } finally {
      await serve.stop();
      cleanup();
    }
  }, 120_000);

  it('a recording whose publish times are not all numbers (-inf first, a NaN, +inf) or lie days outside its blocks plays at speed 1 to its end, paced by the others, and says how many it played unpaced (it hung for good, or waited days)', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-untimed-');
    try {
      const run = await runDorsal(['run', TWO_FEEDS, '--seconds', '1', '--data', dir]);
      expect(run.code, run.stderr).toBe(0);
      const recorded = await newestProcess(dir);
      const times = await publishTimes(dir, recorded, 'ticks');
      expect(times.length).toBe(600);
      await rewritePublishTimes(
        dir,
        'ticks',
        new Map([
          [times[0]!, Number.NEGATIVE_INFINITY],
          // The first finite time, days before the process began: the others were due days later.
          [times[1]!, -2.8 * DAY_NS],
          [times[10]!, Number.NaN],
          [times[20]!, Number.POSITIVE_INFINITY],
          // Days after the run ended: the messages after it waited for it.
          [times[30]!, times[30]! + 2.8 * DAY_NS],
        ]),
      );
      const { code, stdout, stderr } = await runDorsalWithin(
        ['replay', '--speed', '1', '--diff', '--data', dir, '--json'],
        60_000,
      );
      expect(code, `${stdout}${stderr}`).toBe(0);
      const json = JSON.parse(stdout) as ReplayJson;
      expect([json.played, json.untimed, json.diff!.diverged]).toEqual([600, 5, 0]);
      // Paced by the finite times (a first one at -inf did not put the others out of reach, nor
      // a NaN drop the pacing): the replay lasts about as long as the recording.
      const finite = times.filter((_, seq) => ![0, 1, 10, 20, 30].includes(seq));
      const recordedSpan = Math.max(...finite) - Math.min(...finite);
      const replayed = await publishTimes(dir, json.replay, 'ticks');
      const replayedSpan = Math.max(...replayed) - Math.min(...replayed);
      expect(replayedSpan).toBeGreaterThan(recordedSpan * 0.9);
      expect(replayedSpan).toBeLessThan(recordedSpan * 1.5 + 500e6);
      // Said in one line, before it plays.
      const text = await runDorsalWithin(['replay', '--speed', 'max', '--data', dir], 60_000);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(
        /^5 ingress messages have a recorded time that is not a number \(NaN or infinite\) or lies outside the times of the recording's blocks \(the recording is damaged there\): each is played in its stream's order, unpaced\nreplaying 600 ingress messages /m,
      );
    } finally {
      cleanup();
    }
  }, 180_000);

  it('two ingress actors on one multi-producer stream, a tick stamped before ticks claimed ahead of it: played in seq order, no false divergence', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-stamped-');
    try {
      const run = await runDorsal(['run', TWO_FEEDS, '--seconds', '1', '--data', dir]);
      expect(run.code, run.stderr).toBe(0);
      const recorded = await newestProcess(dir);
      const times = await publishTimes(dir, recorded, 'ticks');
      // Stamped, then claimed after three ticks of either feed: its time is before theirs. (Two
      // feeds make such ticks now and then; this one is made for sure.)
      expect(times[97]!).toBeLessThan(times[100]!);
      await rewritePublishTimes(dir, 'ticks', new Map([[times[100]!, times[97]! - 1]]));
      const [[back]] = (await query(
        dir,
        recorded,
        'SELECT count(*) FILTER (WHERE back)::INTEGER FROM (SELECT publish_t < max(publish_t) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS back FROM stream_ticks)',
      )) as [[number]];
      expect(back).toBeGreaterThanOrEqual(1);
      const { code, json, stderr } = await replay(['--speed', 'max', '--diff', '--data', dir]);
      expect(json.diff?.divergences, stderr).toEqual([]);
      expect(code, stderr).toBe(0);
      const byStream = Object.fromEntries(json.diff!.streams.map((s) => [s.stream, s.matched]));
      expect([byStream.ticks, byStream.orders]).toEqual([600, 1200]);
      // Each tick holds, in the replay, what the recording's of the same seq holds.
      const ns = 'SELECT n FROM stream_ticks ORDER BY seq';
      expect(await query(dir, json.replay, ns)).toEqual(await query(dir, recorded, ns));
    } finally {
      cleanup();
    }
  }, 120_000);

  it('a recording that lost messages (an actor lapped, its persister maybe) says so before it plays, a line per stream, and next to the verdict', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-lapped-');
    try {
      const run = await runDorsal(['run', `${FIXTURES}/lapped.system.ts`, '--seconds', '1', '--data', dir]);
      expect(run.code, run.stderr).toBe(0);
      const recorded = await newestProcess(dir);
      const losses = (await query(
        dir,
        recorded,
        "SELECT consumer, counted_by, (lost + dropped)::INTEGER FROM losses WHERE stream = 'ticks' AND lost + dropped > 0 ORDER BY ALL",
      )) as [string, string, number][];
      const lapped = losses.find(([consumer, by]) => consumer === 'laggard' && by === 'actor')?.[2];
      expect(lapped).toBeGreaterThan(0);
      const missing = losses.find(([, by]) => by === 'persister')?.[2];
      // The laggard replayed takes no time: the replay is not slowed by it.
      const args = ['replay', '--system', `${FIXTURES}/lapped-quick.system.ts`, '--speed', 'max', '--diff'];
      const { code, stdout, stderr } = await runDorsal([...args, '--data', dir]);
      expect(code, `${stdout}${stderr}`).toBe(0);
      const said = [
        `laggard lost ${lapped!.toLocaleString('en-US')} messages of ticks in the recorded run (lapped): it handled none of them, and the replay may`,
        ...(missing === undefined
          ? []
          : [
              `the recording lacks ${missing.toLocaleString('en-US')} messages of ticks, lost by its persister: the replay cannot play them`,
            ]),
      ];
      const lines = stdout.split('\n');
      const replaying = lines.findIndex((l) => l.startsWith('replaying '));
      expect(lines.slice(0, replaying).sort()).toEqual(said.sort());
      expect(stdout).toMatch(
        missing === undefined
          ? /^the recorded run's actors lost [\d,]+ messages \(lapped\), said above: divergences may come from what was lost, not from the system\nno divergence: the replay produced what was recorded$/m
          : /^the recording is incomplete \(its persister lost [\d,]+ messages\), and the recorded run's actors lost [\d,]+ messages \(lapped\), said above: divergences may come from what was lost, not from the system\nno divergence: the replay produced what was recorded$/m,
      );
      const { json } = await replay([...args.slice(1), '--data', dir]);
      expect(json.recordingLost).toContainEqual({
        stream: 'ticks',
        countedBy: 'actor',
        consumer: 'laggard',
        lost: lapped,
      });
    } finally {
      cleanup();
    }
  }, 120_000);

  it('recorded text in its errors (a value the replayed layout does not take) reaches the terminal escaped, not as escape sequences', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-escapes-');
    try {
      const run = await runDorsal(['run', `${FIXTURES}/noted.system.ts`, '--seconds', '0.5', '--data', dir]);
      expect(run.code, run.stderr).toBe(0);
      const { code, stderr } = await runDorsal([
        'replay',
        '--system',
        `${FIXTURES}/noted-narrow.system.ts`,
        '--speed',
        'max',
        '--data',
        dir,
      ]);
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain(
        String.raw`50 of its 50 recorded values do not fit (the first: notes #0, '\u001b]0;PWNED\u0007\u001b[2J\u001b[31mFGD'); nothing was replayed`,
      );
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must not be printed
      expect(stderr.trimEnd()).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    } finally {
      cleanup();
    }
  }, 90_000);
});
