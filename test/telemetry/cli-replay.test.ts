import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { BlockRow } from '../../src/telemetry/lake/types.js';
import { compiled, literally } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import {
  type DorsalRun,
  finished,
  firstBlockIn,
  runDorsal,
  spawnDorsal,
  startDorsalServe,
} from './cli-helpers.js';
import { f64, patchRecords } from './damaged-times.js';
import { tempDir } from './fixtures.js';

/**
 * `dorsal replay` as a subprocess, against a lake recorded by a short run of the market example
 * (its feed is the ingress actor; everything downstream is deterministic).
 */

const SYSTEM = 'examples/market/system.ts';
const FIXTURES = 'test/fixtures/replay';
/** The system module's URL, as a process run by the compiled `dorsal` records it. */
const SYSTEM_URL = pathToFileURL(compiled(SYSTEM)).href;
const STREAMS = ['ticks', 'books', 'orders', 'acks'];
/** A day in ns, the unit of recorded times. */
const DAY_NS = 86_400e9;
/** Two ingress feeds into one multi-producer ticks stream, 300 ticks each (see the module). */
const TWO_FEEDS = `${FIXTURES}/two-feeds.system.ts`;

interface StreamComparison {
  stream: string;
  matched: number;
  differing: number;
  onlyRecorded: number;
  onlyReplayed: number;
}
interface DivergentMessage {
  stream: string;
  seq: number;
  actor: string;
  fields: Record<string, unknown>;
}
interface ReplayJson {
  process: string;
  replay: string;
  speed: string;
  played: number;
  lost: number;
  untimed: number;
  recordingLost: { stream: string; countedBy: string; consumer: string; lost: number }[];
  diff?: {
    diverged: number;
    streams: StreamComparison[];
    divergences: {
      kind: 'differs' | 'only-recorded' | 'only-replayed';
      stream: string;
      place: string;
      ingress: { rank: number; stream: string; seq: number } | null;
      recorded: DivergentMessage | null;
      replayed: DivergentMessage | null;
      chain: DivergentMessage[];
      fields: { field: string; recorded: unknown; replayed: unknown }[];
    }[];
  };
}

/** Rows of a query over one process, through `dorsal query --json`. */
async function query(dir: string, process: string, sql: string): Promise<unknown[][]> {
  const { code, stdout, stderr } = await runDorsal([
    'query',
    sql,
    '--data',
    dir,
    '--process',
    process,
    '--json',
    '--max-rows',
    '1000000',
  ]);
  expect(code, stderr).toBe(0);
  return (JSON.parse(stdout) as { rows: unknown[][] }).rows;
}

/** Messages per stream in a process. */
/** Runs the market example for `seconds` into the lake at `dir`; resolves to the newest process's id. */
async function recordMarket(dir: string, seconds: number): Promise<string> {
  const run = await runDorsal(['run', SYSTEM, '--seconds', String(seconds), '--data', dir]);
  expect(run.code, run.stderr).toBe(0);
  const listing = await runDorsal(['processes', '--data', dir, '--json']);
  return (JSON.parse(listing.stdout) as { processId: string }[])[0]!.processId;
}

async function counts(dir: string, process: string): Promise<Record<string, number>> {
  const rows = await query(dir, process, 'SELECT stream, count(*)::INTEGER FROM messages GROUP BY 1');
  return Object.fromEntries(rows.map(([s, n]) => [String(s), Number(n)]));
}

async function replay(
  args: readonly string[],
): Promise<{ code: number | null; json: ReplayJson; stderr: string }> {
  const { code, stdout, stderr } = await runDorsal(['replay', ...args, '--json']);
  let json: ReplayJson;
  try {
    json = JSON.parse(stdout) as ReplayJson;
  } catch {
    throw new Error(`dorsal replay ${args.join(' ')} printed no JSON (exit ${code}): ${stdout}${stderr}`);
  }
  return { code, json, stderr };
}

/** The diff a replay kept in the lake, through `dorsal query` (`where`: `--data DIR` or `--url URL`). */
async function keptDiff(
  where: readonly string[],
  process: string,
): Promise<{
  diffs: unknown[][];
  streams: StreamComparison[];
  divergences: {
    kind: string;
    stream: string;
    place: string;
    recordedSeq: number | null;
    replayedSeq: number | null;
    fields: unknown;
  }[];
}> {
  const ask = async (sql: string) => {
    const { code, stdout, stderr } = await runDorsal([
      'query',
      sql,
      ...where,
      '--process',
      process,
      '--json',
    ]);
    expect(code, stderr).toBe(0);
    return (JSON.parse(stdout) as { rows: unknown[][] }).rows;
  };
  const diffs = await ask(
    "SELECT d.replay_of, d.diverged::INTEGER, d.divergences_limit::INTEGER, d.error, s.properties->>'format' FROM replay_diffs d JOIN streams s ON s.process_id = d.process_id AND list_contains(s.tags::VARCHAR[], 'divergences')",
  );
  const streams = await ask(
    'SELECT stream, matched::INTEGER, differing::INTEGER, only_recorded::INTEGER, only_replayed::INTEGER FROM replay_diff_streams ORDER BY position',
  );
  const divergences = await ask(
    'SELECT kind, stream, place, recorded_seq::INTEGER, replayed_seq::INTEGER, fields::VARCHAR FROM replay_divergences ORDER BY n',
  );
  return {
    diffs,
    streams: streams.map(([stream, matched, differing, onlyRecorded, onlyReplayed]) => ({
      stream: String(stream),
      matched: Number(matched),
      differing: Number(differing),
      onlyRecorded: Number(onlyRecorded),
      onlyReplayed: Number(onlyReplayed),
    })),
    divergences: divergences.map(([kind, stream, place, recordedSeq, replayedSeq, fields]) => ({
      kind: String(kind),
      stream: String(stream),
      place: String(place),
      recordedSeq: recordedSeq === null ? null : Number(recordedSeq),
      replayedSeq: replayedSeq === null ? null : Number(replayedSeq),
      fields: JSON.parse(String(fields)) as unknown,
    })),
  };
}

/** Each message of `stream` in a process: its publish time, by seq (exact, through its text). */
async function publishTimes(dir: string, process: string, stream: string): Promise<number[]> {
  const rows = await query(dir, process, `SELECT publish_t::VARCHAR FROM stream_${stream} ORDER BY seq`);
  return rows.map(([t]) =>
    Number(
      String(t)
        .replace(/^inf$/, 'Infinity')
        .replace(/^-inf$/, '-Infinity'),
    ),
  );
}

/**
 * Rewrites, in the blocks of message stream `stream` in the lake at `dir`, the publish time of
 * ingress messages (`times`: from their recorded time to the new one), as a damaged recording or
 * a producer's early stamp has it. An ingress message's origin_t and publish_t are the same time,
 * side by side in its envelope: that pair is what is looked for. The partitions made of the
 * blocks are dropped, to be made again from them.
 */
async function rewritePublishTimes(
  dir: string,
  stream: string,
  times: ReadonlyMap<number, number>,
): Promise<void> {
  const lake = Lake.open({ data: dir });
  let rewritten = 0;
  try {
    const lakeStream = (await lake.streams()).find(
      (s) => s.tags.includes('messages') && s.properties.name === stream,
    )!;
    rewritten = await patchRecords(lake, await lake.blocks({ streamId: lakeStream.streamId }), (objects) => {
      let patched = 0;
      for (const [from, to] of times) {
        const at = objects.indexOf(Buffer.concat([f64(from), f64(from)]));
        if (at < 0) continue;
        f64(to).copy(objects, at + 8);
        patched++;
      }
      return patched;
    });
  } finally {
    await lake.close();
  }
  expect(rewritten).toBe(times.size);
  rmSync(join(dir, 'views'), { recursive: true, force: true });
  rmSync(join(dir, 'analytics'), { recursive: true, force: true });
}

/** Runs `dorsal ARGS…`, killed after `ms` if it has not ended by then: a hang fails, it does not hold the tests. */
async function runDorsalWithin(args: readonly string[], ms: number): Promise<DorsalRun> {
  const child = spawnDorsal(args);
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  try {
    return await finished(child);
  } finally {
    clearTimeout(timer);
  }
}

/** The newest recorded process in the lake at `dir`. */
async function newestProcess(dir: string): Promise<string> {
  const listing = await runDorsal(['processes', '--data', dir, '--json']);
  return (JSON.parse(listing.stdout) as { processId: string }[])[0]!.processId;
}

/** The divergences a replay printed, as the lake keeps them. */
function asKept(diff: NonNullable<ReplayJson['diff']>) {
  return diff.divergences.map((d) => ({
    kind: d.kind,
    stream: d.stream,
    place: d.place,
    recordedSeq: d.recorded?.seq ?? null,
    replayedSeq: d.replayed?.seq ?? null,
    fields: d.fields,
  }));
}

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
