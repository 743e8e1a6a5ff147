import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { BlockRow } from '../../src/telemetry/lake/types.js';
import { compiled, literally } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { firstBlockIn, runDorsal, spawnDorsal } from './cli-helpers.js';
import {
  asKept,
  counts,
  FIXTURES,
  keptDiff,
  query,
  recordMarket,
  replay,
  STREAMS,
  SYSTEM,
  SYSTEM_URL,
} from './cli-replay-helpers.js';
import { tempDir } from './fixtures.js';

describe('dorsal replay of a recorded run', () => {
  const { dir, cleanup } = tempDir('dorsal-replay-');
  let recorded: string;
  let recordedCounts: Record<string, number>;
  /** The replays made so far (the first, at speed max, by `beforeAll`). */
  const replays: string[] = [];
  let atMax: Awaited<ReturnType<typeof replay>>;

  beforeAll(async () => {
    recorded = await recordMarket(dir, 1);
    recordedCounts = await counts(dir, recorded);
    atMax = await replay(['--speed', 'max', '--diff', '--data', dir]);
    replays.push(atMax.json.replay);
  }, 180_000);
  afterAll(cleanup);

  it('into the same system at speed max: every message matched, no divergence, exit 0', async () => {
    const { code, json, stderr } = atMax;
    expect(code, stderr).toBe(0);
    expect(json.process).toBe(recorded);
    expect(json.speed).toBe('max');
    expect(json.played).toBe(recordedCounts.ticks);
    expect(json.lost).toBe(0);
    expect(json.diff!.diverged).toBe(0);
    expect(json.diff!.divergences).toEqual([]);
    expect(json.diff!.streams.map((s) => s.stream)).toEqual(STREAMS);
    for (const s of json.diff!.streams) {
      expect(s.matched, s.stream).toBe(recordedCounts[s.stream]);
      expect(s.matched, s.stream).toBeGreaterThan(0);
    }
    // The replay recorded what the recording holds, stream by stream.
    expect(await counts(dir, json.replay)).toEqual(recordedCounts);
  }, 90_000);

  it('keeps its diff in the lake, as a stream of the replay tagged divergences (--data)', async () => {
    const { json } = atMax;
    const kept = await keptDiff(['--data', dir], json.replay);
    expect(kept.diffs).toEqual([[recorded, 0, 5, null, 'dorsal.replay-diff.v1+json']]);
    expect(kept.streams).toEqual(json.diff!.streams);
    expect(kept.divergences).toEqual([]);
    // One block, timed at the end of the replay's last: keeping the diff does not stretch the process.
    const [[blocks, diffEnd, lastEnd]] = (await query(
      dir,
      json.replay,
      "SELECT count(*) FILTER (WHERE d)::INTEGER, epoch_ns(max(b.end_time) FILTER (WHERE d))::VARCHAR, epoch_ns(max(b.end_time) FILTER (WHERE NOT d))::VARCHAR FROM (SELECT b.*, list_contains(s.tags::VARCHAR[], 'divergences') AS d FROM blocks b JOIN streams s USING (stream_id)) b",
    )) as [[number, string, string]];
    expect(blocks).toBe(1);
    expect(diffEnd).toBe(lastEnd);
    // The recording has none: it is no replay.
    const original = await keptDiff(['--data', dir], recorded);
    expect(original.diffs).toEqual([]);
    expect(original.streams).toEqual([]);
  }, 60_000);

  it('without --diff: no diff in the lake', async () => {
    const { code, json, stderr } = await replay(['--speed', 'max', '--data', dir]);
    expect(code, stderr).toBe(0);
    expect(json.diff).toBeUndefined();
    replays.push(json.replay);
    const kept = await keptDiff(['--data', dir], json.replay);
    expect(kept).toEqual({ diffs: [], streams: [], divergences: [] });
  }, 90_000);

  it('into the same system at speed 1: no divergence, and the ingress keeps its recorded gaps', async () => {
    const { code, stdout, stderr } = await runDorsal([
      'replay',
      '--process',
      recorded,
      '--speed',
      '1',
      '--diff',
      '--data',
      dir,
    ]);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(
      new RegExp(
        `^replaying [\\d,]+ ingress messages of process \\S+ into ${literally(SYSTEM_URL)} at speed 1$`,
        'm',
      ),
    );
    expect(stdout).toMatch(/^stream +matched +differing +only recorded +only replayed$/m);
    expect(stdout).toMatch(/^ticks +[\d,]+ +0 +0 +0$/m);
    expect(stdout).toMatch(/^no divergence: the replay produced what was recorded$/m);
    const replayId = /^recorded as process (\S+) \(a replay of (\S+)\)/m.exec(stdout);
    expect(replayId?.[2]).toBe(recorded);
    replays.push(replayId![1]!);

    // Pacing, on recorded times: each replayed tick's publish time since the first keeps the
    // recorded one's: never earlier (the player waits for it), mostly about as late.
    const since = 'SELECT publish_t - min(publish_t) OVER () FROM stream_ticks ORDER BY seq';
    const before = (await query(dir, recorded, since)).map((r) => Number(r[0]));
    const after = (await query(dir, replayId![1]!, since)).map((r) => Number(r[0]));
    expect(after).toHaveLength(before.length);
    const lateness = after.map((t, i) => t - before[i]!).sort((a, b) => a - b);
    const ms = 1e6;
    expect(lateness[0]!).toBeGreaterThan(-0.05 * ms);
    expect(lateness[Math.floor(lateness.length / 2)]!).toBeLessThan(50 * ms);
    const span = (times: number[]) => times[times.length - 1]! - times[0]!;
    expect(span(after)).toBeGreaterThanOrEqual(span(before) - 0.05 * ms);
    expect(span(after)).toBeLessThan(span(before) * 1.5 + 500 * ms);
  }, 90_000);

  it('into a system whose strategy quotes another qty: the first divergent order, its fields, exit 1', async () => {
    const { code, json } = await replay([
      '--system',
      `${FIXTURES}/market-qty-20.system.ts`,
      '--speed',
      'max',
      '--diff',
      '--divergences',
      '3',
      '--data',
      dir,
    ]);
    expect(code).toBe(1);
    replays.push(json.replay);
    const diff = json.diff!;
    expect(diff.diverged).toBe(recordedCounts.orders);
    const byStream = Object.fromEntries(diff.streams.map((s) => [s.stream, s]));
    expect(byStream.orders).toEqual({
      stream: 'orders',
      matched: 0,
      differing: recordedCounts.orders,
      onlyRecorded: 0,
      onlyReplayed: 0,
    });
    // The acks carry the order id and the verdict only: the same.
    expect(byStream.acks!.matched).toBe(recordedCounts.acks);
    expect(byStream.ticks!.matched).toBe(recordedCounts.ticks);
    expect(diff.divergences).toHaveLength(3);
    const [first] = diff.divergences;
    expect(first!.kind).toBe('differs');
    expect(first!.stream).toBe('orders');
    expect(first!.fields).toEqual([{ field: 'qty', recorded: 10, replayed: 20 }]);
    // The first order recorded, in the tree of the first tick that made one, and its chain.
    expect(first!.recorded!.seq).toBe(0);
    expect(first!.chain.map((m) => m.stream)).toEqual(['ticks', 'books', 'orders']);
    expect(first!.place).toBe(`ticks:${first!.ingress!.seq}/books:0/orders:0`);
    expect(diff.divergences[1]!.place).toBe(`ticks:${first!.ingress!.seq}/books:0/orders:1`);
    // What it printed is what the lake keeps: the counts, and the first three divergences.
    const kept = await keptDiff(['--data', dir], json.replay);
    expect(kept.diffs).toEqual([[recorded, recordedCounts.orders, 3, null, 'dorsal.replay-diff.v1+json']]);
    expect(kept.streams).toEqual(diff.streams);
    expect(kept.divergences).toEqual(asKept(diff));
    expect(kept.divergences[0]!.fields).toEqual([{ field: 'qty', recorded: 10, replayed: 20 }]);
  }, 90_000);

  it('into a system whose strategy quotes less often: the orders it no longer makes, drawn, exit 1', async () => {
    const { code, stdout } = await runDorsal([
      'replay',
      '--system',
      `${FIXTURES}/market-spread-5.system.ts`,
      '--speed',
      'max',
      '--diff',
      '--data',
      dir,
    ]);
    expect(code).toBe(1);
    replays.push(/^recorded as process (\S+)/m.exec(stdout)![1]!);
    const orders = /^orders +([\d,]+) +([\d,]+) +([\d,]+) +([\d,]+)$/m.exec(stdout)!;
    expect(Number(orders[3]!.replaceAll(',', ''))).toBeGreaterThan(0);
    expect(orders[4]).toBe('0');
    expect(stdout).toMatch(/^[\d,]+ messages diverged; the first 5:$/m);
    expect(stdout).toMatch(
      /^1\. orders #\d+ was recorded, and not replayed \(in the tree of the [\d,]+(st|nd|rd|th) ingress message, ticks #\d+; at ticks:\d+\/books:0\/orders:0\)$/m,
    );
    // Its chain from the tick down, the order marked.
    expect(stdout).toMatch(
      /^ {3}ticks #\d+ feed \{.*\}\n {3}└─ books #\d+ book-builder \{.*\}\n {6}└─ orders #\d+ strategy \{.*\} ← recorded only$/m,
    );
  }, 90_000);

  it('records each replay as a new process, listed as a replay of the original', async () => {
    const { code, stdout } = await runDorsal(['processes', '--data', dir, '--json']);
    expect(code).toBe(0);
    const listing = JSON.parse(stdout) as { processId: string; replayOf: string | null; messages: number }[];
    const original = listing.find((p) => p.processId === recorded)!;
    expect(original.replayOf).toBeNull();
    for (const id of replays) {
      const entry = listing.find((p) => p.processId === id);
      expect(entry, id).toBeDefined();
      expect(entry!.replayOf).toBe(recorded);
    }
    const [properties] = await query(
      dir,
      replays[0]!,
      "SELECT properties->>'dorsal.replay_of', properties->>'dorsal.replay_speed', properties->>'dorsal.system' FROM processes",
    );
    expect(properties).toEqual([recorded, 'max', SYSTEM_URL]);
    const table = await runDorsal(['processes', '--data', dir]);
    expect(table.stdout).toMatch(new RegExp(`^${replays[0]} .* ${recorded}$`, 'm'));
  });

  it('into a system whose acks carry the order id as text, or as bytes: every ack differs, each run its own fields', async () => {
    for (const [system, replayed] of [
      ['acks-as-text', '0'],
      ['acks-as-bytes', '0\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00'],
    ] as const) {
      const { code, json, stderr } = await replay([
        '--system',
        `${FIXTURES}/${system}.system.ts`,
        '--speed',
        'max',
        '--diff',
        '--divergences',
        '1',
        '--data',
        dir,
      ]);
      // The two runs are read in one query: neither's fields are cast to the other's types
      // (the same digits as a number and as text are not equal; bytes and a number do not fail it).
      expect(code, `${system}: ${stderr}`).toBe(1);
      const diff = json.diff!;
      expect(diff.diverged, system).toBe(recordedCounts.acks);
      expect(
        diff.streams.find((s) => s.stream === 'acks'),
        system,
      ).toEqual({
        stream: 'acks',
        matched: 0,
        differing: recordedCounts.acks,
        onlyRecorded: 0,
        onlyReplayed: 0,
      });
      const [first] = diff.divergences;
      expect(first!.fields, system).toEqual([{ field: 'order', recorded: 0, replayed }]);
      // Each side shows the fields its own layout has, and no other.
      expect(Object.keys(first!.recorded!.fields).sort(), system).toEqual(['accepted', 'order']);
      expect(first!.recorded!.fields.order, system).toBe(0);
      expect(first!.replayed!.fields.order, system).toBe(replayed);
    }
  }, 180_000);

  it('says what is wrong in one line, and exits non-zero', async () => {
    const failures: [string[], RegExp][] = [
      [['--process', 'ffffffff'], /^dorsal: no process ffffffff in .*: `dorsal processes` lists them/],
      [
        ['--system', `${FIXTURES}/not-a-system.ts`],
        new RegExp(
          `^dorsal: ${literally(compiled(`${FIXTURES}/not-a-system.ts`))} must export default defineSystem`,
        ),
      ],
      [['--system', 'no/such/system.ts'], /^dorsal: no system module at no\/such\/system\.ts/],
      [['--speed', 'fast'], /argument 'fast' is invalid. expected 1 \(as recorded\), 10/],
      // A second played over 1e292 years, and a factor no clock tells from max.
      [
        ['--speed', '1e-300'],
        /argument '1e-300' is invalid. .*another factor from 0\.001 to 1000000, or max/,
      ],
      [['--speed', '1e9'], /argument '1e9' is invalid/],
    ];
    for (const [args, message] of failures) {
      const which = args[0] === '--process' ? [] : ['--process', recorded];
      const { code, stderr } = await runDorsal(['replay', ...which, ...args, '--data', dir]);
      expect(code, args.join(' ')).not.toBe(0);
      expect(stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(stderr, args.join(' ')).toMatch(message);
    }
  }, 90_000);

  it('has --help with an example', async () => {
    const { code, stdout } = await runDorsal(['replay', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/--speed <speed>/);
    expect(stdout).toMatch(/Examples:\n {2}\$ dorsal replay --speed max --diff/);
  });
});

describe('dorsal replay of other recordings', () => {
  it('a recording whose run has not ended (killed mid-run) is refused a diff in one line, not blamed on the system', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-unended-');
    try {
      const child = spawnDorsal(['run', SYSTEM, '--seconds', '600', '--data', dir]);
      const exited = once(child, 'exit');
      await firstBlockIn(dir);
      // Still recording: played as far as the lake held it when the replay began, said so. (The
      // pages read on into what it recorded meanwhile, and the replay failed past its counts.)
      const live = await runDorsal(['replay', '--speed', 'max', '--data', dir, '--json']);
      expect(live.code, live.stderr).toBe(0);
      const played = JSON.parse(live.stdout) as { played: number; recordingEnded: boolean };
      expect(played.recordingEnded).toBe(false);
      expect(played.played).toBeGreaterThan(0);
      child.kill('SIGKILL');
      await exited;
      // Killed: replayed with the same words, not as a whole recording.
      const killed = await runDorsal(['replay', '--speed', 'max', '--data', dir]);
      expect(killed.code, killed.stderr).toBe(0);
      expect(killed.stdout).toMatch(
        /process \S+ has not ended \(the lake holds no counts of its stop\): it is still running, and what it records from now on is not played, or it was killed/,
      );
      const { code, stderr } = await runDorsal(['replay', '--diff', '--speed', 'max', '--data', dir]);
      expect(code).toBe(1);
      expect(stderr).toMatch(
        /^dorsal: process \S+ has not ended \(the lake holds no counts of its stop: it is still running, or it was killed\): a diff would/,
      );
      expect(stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      cleanup();
    }
  }, 120_000);

  it('interrupted while it stops, once everything was played: said in one line, exit 1, and no diff made', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-stopping-');
    try {
      const system = `${FIXTURES}/slow-exit.system.ts`;
      const run = await runDorsal(['run', system, '--seconds', '0.5', '--data', dir]);
      expect(run.code, run.stderr).toBe(0);
      const marker = join(dir, 'stopping');
      const child = spawnDorsal(['replay', '--diff', '--speed', 'max', '--data', dir], {
        DORSAL_TEST_EXIT_MARKER: marker,
      });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      await until(() => existsSync(marker), 'the replayed system stopping', 60_000);
      child.kill('SIGINT');
      const [code] = await exited;
      expect(code, stderr).toBe(1);
      expect(stderr).toMatch(
        /^dorsal: the replay was interrupted while it stopped, after all 5 messages were played: it is recorded as process \S+, and nothing was compared/,
      );
      const diffs = await runDorsal([
        'query',
        'SELECT count(*) FROM replay_diffs',
        '--all-processes',
        '--data',
        dir,
        '--json',
      ]);
      expect(JSON.parse(diffs.stdout)).toMatchObject({ rows: [['0']] });
    } finally {
      cleanup();
    }
  }, 120_000);

  it('a process with no ingress message is refused in one line', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-silent-');
    try {
      const run = await runDorsal(['run', `${FIXTURES}/silent.system.ts`, '--seconds', '0.3', '--data', dir]);
      expect(run.code, run.stderr).toBe(0);
      const { code, stderr } = await runDorsal(['replay', '--data', dir]);
      expect(code).toBe(1);
      expect(stderr).toMatch(
        /^dorsal: process \S+ recorded no ingress message: its ingress actors \(quiet-feed\) published nothing/,
      );
      expect(stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      cleanup();
    }
  }, 90_000);

  it('a recording some of whose blocks do not read is refused, naming one: played, it would be played in part', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-damaged-');
    try {
      await recordMarket(dir, 0.5);
      const lake = Lake.open({ data: dir });
      let block: BlockRow;
      try {
        const ticks = (await lake.streams()).find(
          (s) => s.tags.includes('messages') && s.properties.name === 'ticks',
        )!;
        [block] = (await lake.blocks({ streamId: ticks.streamId })) as [BlockRow];
      } finally {
        await lake.close();
      }
      // The run's summary made partitions of every block: gone, they are made again from the blocks.
      rmSync(join(dir, 'views'), { recursive: true, force: true });
      rmSync(join(dir, 'analytics'), { recursive: true, force: true });
      const blob = join(dir, block.blobPath);
      writeFileSync(blob, readFileSync(blob).subarray(0, 10));
      const { code, stderr } = await runDorsal(['replay', '--data', dir]);
      expect(code).toBe(1);
      expect(stderr).toMatch(
        new RegExp(
          `^dorsal: process \\S+ cannot be replayed whole: 1 of its blocks do not read \\(${block.objectCount.toLocaleString('en-US')} records\\), e\\.g\\. block ${block.blockId}`,
          'm',
        ),
      );
    } finally {
      cleanup();
    }
  }, 90_000);

  it('into a system that crashes on the last message, once everything was played: said in one line, exit 1 (it exited 0)', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-crash-');
    try {
      const recorded = await recordMarket(dir, 0.5);
      const books = (await counts(dir, recorded)).books!;
      const { code, stderr } = await runDorsal(
        ['replay', '--system', `${FIXTURES}/crash-at-end.system.ts`, '--speed', 'max', '--data', dir],
        { DORSAL_TEST_CRASH_AFTER: String(books) },
      );
      expect(code).toBe(1);
      expect(stderr).toMatch(
        new RegExp(
          `^dorsal: the replayed system crashed after all [\\d,]+ messages were played: .*crashed on book ${books}, as told`,
          'm',
        ),
      );
    } finally {
      cleanup();
    }
  }, 90_000);

  it('a process that does not say its system asks for --system, and replays with it', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-bare-');
    try {
      const child = spawn(process.execPath, [compiled(`${FIXTURES}/record-bare.ts`), dir], {
        stdio: 'inherit',
      });
      const [exit] = (await once(child, 'exit')) as [number | null];
      expect(exit).toBe(0);
      const refused = await runDorsal(['replay', '--data', dir]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        /^dorsal: process \S+ does not say which system module it ran: give --system MODULE/,
      );
      // Its ingress actors are then those that run the module's ingress modules.
      const { code, json, stderr } = await replay([
        '--system',
        SYSTEM,
        '--speed',
        'max',
        '--diff',
        '--data',
        dir,
      ]);
      expect(code, stderr).toBe(0);
      expect(json.played).toBeGreaterThan(0);
      expect(json.diff!.diverged).toBe(0);
    } finally {
      cleanup();
    }
  }, 90_000);

  it('at speed 10, of a demo at 2,000 ticks/s: the gaps shrink tenfold, never below', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-10-');
    try {
      const demo = await runDorsal(['demo', '--seconds', '1', '--rate', '2000', '--data', dir]);
      expect(demo.code, demo.stderr).toBe(0);
      const { code, json, stderr } = await replay(['--speed', '10', '--data', dir]);
      expect(code, stderr).toBe(0);
      expect(json.speed).toBe('10');
      expect(json.diff).toBeUndefined();
      // On recorded times: each replayed tick since the first, against a tenth of the recorded gap.
      const since = 'SELECT publish_t - min(publish_t) OVER () FROM stream_ticks ORDER BY seq';
      const before = (await query(dir, json.process, since)).map((r) => Number(r[0]) / 10);
      const after = (await query(dir, json.replay, since)).map((r) => Number(r[0]));
      expect(after).toHaveLength(before.length);
      const early = Math.min(...after.map((t, i) => t - before[i]!));
      expect(early).toBeGreaterThan(-0.05 * 1e6);
      // Faster than half the recorded pacing: not played as recorded.
      expect(after[after.length - 1]!).toBeLessThan(before[before.length - 1]! * 10 * 0.5);
    } finally {
      cleanup();
    }
  }, 90_000);

  it('a stream two threads produce into interleaves differently, and no divergence comes of it', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-shared-');
    try {
      const run = await runDorsal([
        'run',
        `${FIXTURES}/two-strategies.system.ts`,
        '--seconds',
        '1',
        '--data',
        dir,
      ]);
      expect(run.code, run.stderr).toBe(0);
      const { code, json, stderr } = await replay(['--speed', 'max', '--diff', '--data', dir]);
      expect(code, stderr).toBe(0);
      expect(json.diff!.diverged).toBe(0);
      const orders = json.diff!.streams.find((s) => s.stream === 'orders')!;
      expect(orders.matched).toBe((await counts(dir, json.process)).orders);
      expect(orders.matched).toBeGreaterThan(0);
    } finally {
      cleanup();
    }
  }, 90_000);

  it('an actor that stops reading a stream does not hold the replay: no divergence', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-lazy-');
    try {
      const run = await runDorsal([
        'run',
        `${FIXTURES}/lazy-reader.system.ts`,
        '--seconds',
        '1',
        '--data',
        dir,
      ]);
      expect(run.code, run.stderr).toBe(0);
      const { code, json, stderr } = await replay(['--speed', 'max', '--diff', '--data', dir]);
      expect(code, stderr).toBe(0);
      expect(json.diff!.diverged).toBe(0);
      expect(json.diff!.streams.find((s) => s.stream === 'acks')!.matched).toBeGreaterThan(0);
    } finally {
      cleanup();
    }
  }, 90_000);
});
