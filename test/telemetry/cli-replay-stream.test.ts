import { once } from 'node:events';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lakeCacheDir } from '../../src/telemetry/analytics/lake-cache-dir.js';
import { lakeIdentity } from '../../src/telemetry/lake/identity.js';
import { compiled, literally } from '../helpers/compiled.js';
import { runDorsal, spawnDorsal, startDorsalServe } from './cli-helpers.js';
import { tempDir } from './fixtures.js';

/**
 * `dorsal replay` streams its playlist: the recording is read a page at a time and handed to the
 * player through a byte ring, here one of 4 KiB (a chunk of 1 KiB, about twenty messages) for a
 * recording of 6,000 messages over two streams with every field type: the ring goes round
 * hundreds of times. `--ring-bytes` is a hidden option for this.
 */

const FIXTURES = 'test/fixtures/replay-stream';
const TYPED = `${FIXTURES}/typed.system.ts`;
const RING = ['--ring-bytes', '4096'];
const TOTAL = 6000;

/** Rows of a query over one process, through `dorsal query --json` on an embedded lake. */
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

/** Every field of both streams, by seq, as exact text. */
async function fieldsOf(dir: string, process: string): Promise<{ alpha: unknown[][]; beta: unknown[][] }> {
  return {
    alpha: await query(
      dir,
      process,
      'SELECT seq, n, i::VARCHAR, u::VARCHAR, f::VARCHAR, g::VARCHAR, small, ok, text, hex(raw) FROM stream_alpha ORDER BY seq',
    ),
    beta: await query(
      dir,
      process,
      'SELECT seq, n, i::VARCHAR, f::VARCHAR, text FROM stream_beta ORDER BY seq',
    ),
  };
}

/**
 * The replay kept the recorded play order: its messages, taken in the recording's order
 * (publish time, then stream, then seq), were published at times that never go back.
 */
async function expectPlayOrder(dir: string, recorded: string, replay: string): Promise<void> {
  const sql =
    "SELECT 'alpha', seq, publish_t FROM stream_alpha UNION ALL SELECT 'beta', seq, publish_t FROM stream_beta";
  const before = (await query(dir, recorded, sql)) as [string, number, number][];
  before.sort((a, b) => a[2] - b[2] || a[0].localeCompare(b[0]) || a[1] - b[1]);
  const after = new Map(
    ((await query(dir, replay, sql)) as [string, number, number][]).map(([s, q, t]) => [`${s}:${q}`, t]),
  );
  expect(after.size).toBe(before.length);
  let last = Number.NEGATIVE_INFINITY;
  let backwards = 0;
  for (const [s, q] of before) {
    const t = after.get(`${s}:${q}`)!;
    if (t < last) backwards++;
    last = t;
  }
  expect(backwards).toBe(0);
}

async function replayJson(
  args: readonly string[],
): Promise<{ code: number | null; replay: string; played: number; stderr: string }> {
  const { code, stdout, stderr } = await runDorsal(['replay', ...args, '--json']);
  const json = JSON.parse(stdout || '{}') as { replay?: string; played?: number };
  return { code, replay: json.replay ?? '', played: json.played ?? 0, stderr };
}

describe('dorsal replay streams its playlist through a ring much smaller than it', () => {
  const { dir, cleanup } = tempDir('dorsal-replay-stream-');
  let recorded: string;
  let recordedFields: Awaited<ReturnType<typeof fieldsOf>>;

  beforeAll(async () => {
    const run = await runDorsal(['run', TYPED, '--seconds', '1.5', '--data', dir]);
    expect(run.code, run.stderr).toBe(0);
    const listing = await runDorsal(['processes', '--data', dir, '--json']);
    recorded = (JSON.parse(listing.stdout) as { processId: string }[])[0]!.processId;
    recordedFields = await fieldsOf(dir, recorded);
    expect([recordedFields.alpha.length, recordedFields.beta.length]).toEqual([3600, 2400]);
  }, 120_000);
  afterAll(cleanup);

  it('plays every message once, in the recorded order, each field exact (i64 and u64 extremes, -0, NaN, ±inf, UTF-8, bytes)', async () => {
    const { code, replay, played, stderr } = await replayJson(['--speed', 'max', ...RING, '--data', dir]);
    expect(code, stderr).toBe(0);
    expect(played).toBe(TOTAL);
    expect(await fieldsOf(dir, replay)).toEqual(recordedFields);
    await expectPlayOrder(dir, recorded, replay);
  }, 120_000);

  it("a crash of the player's thread mid-replay ends it with one line saying how far it got, never a hang", async () => {
    // The ring is full when the player stops reading: the main thread must give up writing.
    const { code, stderr } = await runDorsal([
      'replay',
      '--system',
      `${FIXTURES}/crash-mid.system.ts`,
      '--speed',
      'max',
      ...RING,
      '--data',
      dir,
    ]);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(
      /^dorsal: the replay stopped after \d+ of 6000 messages: actor 'crasher' crashed while handling stream 'alpha': crasher: gave up at its 500th alpha/,
    );
  }, 120_000);
  it('Ctrl-C ends a replay, even while its system starts, with one line saying so and naming the partial replay it recorded', async () => {
    // Ten times slower than recorded: far from done when the signal comes.
    const child = spawnDorsal(['replay', '--speed', '0.1', ...RING, '--data', dir]);
    let stdout = '';
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exit = once(child, 'exit');
    // Said once the plan is made, just before the system starts.
    await new Promise<void>((resolve) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (/^replaying /m.test(stdout)) resolve();
      });
      void exit.then(() => resolve());
    });
    child.kill('SIGINT');
    const [code, signal] = (await exit) as [number | null, string | null];
    expect(code, `${signal} ${stdout} ${stderr}`).toBe(1);
    expect(stderr.trim().split('\n'), stderr).toHaveLength(1);
    const said =
      /^dorsal: the replay stopped after \d+ of 6000 messages: interrupted \(what it played is recorded as process (\S+)\)/.exec(
        stderr,
      );
    expect(said, stderr).not.toBeNull();
    const listing = JSON.parse((await runDorsal(['processes', '--data', dir, '--json'])).stdout) as {
      processId: string;
      replayOf: string | null;
    }[];
    expect(listing.find((p) => p.processId === said![1])?.replayOf).toBe(recorded);
  }, 120_000);

  it('a system that retypes a field where recorded values do not fit (an f64 NaN into an i64) is refused before it runs, naming stream, field, types and the first value', async () => {
    const before = await runDorsal(['processes', '--data', dir, '--json']);
    const { code, stdout, stderr } = await runDorsal([
      'replay',
      '--system',
      `${FIXTURES}/retyped.system.ts`,
      '--speed',
      'max',
      ...RING,
      '--data',
      dir,
    ]);
    expect(code).toBe(1);
    // Refused up front: nothing said of a replay under way, no process recorded for it.
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(
      new RegExp(
        `^dorsal: field 'f' of stream 'alpha' is an i64 in ${literally(compiled(`${FIXTURES}/retyped.system.ts`))}, an f64 in process ${recorded}: 3,600 of its 3,600 recorded values do not fit \\(the first: alpha #0, 'nan'\\); nothing was replayed`,
      ),
    );
    const after = await runDorsal(['processes', '--data', dir, '--json']);
    expect(JSON.parse(after.stdout)).toEqual(JSON.parse(before.stdout));
  }, 120_000);

  it('a system that retypes fields where every recorded value fits (a u32 into a u16, a string into a longer one) plays every message, each field exact', async () => {
    const { code, replay, played, stderr } = await replayJson([
      '--system',
      `${FIXTURES}/narrowed.system.ts`,
      '--speed',
      'max',
      ...RING,
      '--data',
      dir,
    ]);
    expect(code, stderr).toBe(0);
    expect(played).toBe(TOTAL);
    expect(await fieldsOf(dir, replay)).toEqual(recordedFields);
  }, 120_000);

  it('--diff of a replay whose retyped layout moved fields (by their offsets) matches every message whose values are the same', async () => {
    const { stdout, stderr } = await runDorsal([
      'replay',
      '--system',
      `${FIXTURES}/narrowed.system.ts`,
      '--speed',
      'max',
      '--diff',
      '--data',
      dir,
      '--json',
    ]);
    const { diff } = JSON.parse(stdout) as {
      diff: { streams: { stream: string; matched: number; differing: number }[] };
    };
    // Alpha's n, a u32 narrowed to a u16, moved in its layout: the fields' texts differed in their
    // order alone, and every message was counted as differing. (Beta's n, widened to an f64, reads
    // 0.0 where 0 was recorded: a difference of type the diff shows.)
    expect(
      diff.streams.find((s) => s.stream === 'alpha'),
      stderr,
    ).toMatchObject({ matched: 3600, differing: 0 });
  }, 120_000);
});

describe('dorsal replay streams its playlist from a server, a page at a time', () => {
  it('pages of 100 rows (the server row limit), merged across streams: every message, in order, exact', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-stream-url-');
    const lake = join(dir, 'lake');
    const serve = await startDorsalServe(['--port', '0', '--data', lake, '--query-rows', '100']);
    try {
      const run = await runDorsal(['run', TYPED, '--seconds', '1.5', '--url', serve.url]);
      expect(run.code, run.stderr).toBe(0);
      const { code, replay, played, stderr } = await replayJson([
        '--speed',
        'max',
        ...RING,
        '--url',
        serve.url,
      ]);
      expect(code, stderr).toBe(0);
      expect(played).toBe(TOTAL);
      const listing = await runDorsal(['processes', '--data', lake, '--json']);
      const recorded = (JSON.parse(listing.stdout) as { processId: string; replayOf: string | null }[]).find(
        (p) => p.replayOf === null,
      )!.processId;
      expect(await fieldsOf(lake, replay)).toEqual(await fieldsOf(lake, recorded));
      await expectPlayOrder(lake, recorded, replay);
    } finally {
      await serve.stop();
      cleanup();
    }
  }, 180_000);

  it('a recording that stops reading mid-replay (its partitions and blobs gone) ends it with one line naming the failure, never a hang', async () => {
    const { dir, cleanup } = tempDir('dorsal-replay-stream-gone-');
    const lake = join(dir, 'lake');
    const serve = await startDorsalServe(['--port', '0', '--data', lake, '--query-rows', '100']);
    try {
      const run = await runDorsal(['run', TYPED, '--seconds', '1.5', '--url', serve.url]);
      expect(run.code, run.stderr).toBe(0);
      const [recorded] = readdirSync(join(lake, 'blobs'));
      // Slowly (five times the recorded pacing), so that most of it is still unread when its data goes.
      const child = spawnDorsal(['replay', '--speed', '0.2', ...RING, '--url', serve.url]);
      let stdout = '';
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exit = once(child, 'exit');
      await new Promise<void>((resolve) => {
        child.stdout?.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (/^replaying /m.test(stdout)) resolve();
        });
        void exit.then(() => resolve());
      });
      // The recording's partitions, in the lake and in the server's cache, and its blobs.
      const cached = join(lakeCacheDir(join(lake, 'analytics'), lakeIdentity({ data: lake })), 'views');
      for (const views of [join(lake, 'views'), cached]) {
        for (const table of readdirSync(views)) {
          rmSync(join(views, table, `process_id=${recorded}`), { recursive: true, force: true });
        }
      }
      rmSync(join(lake, 'blobs', recorded!), { recursive: true, force: true });
      const [code] = (await exit) as [number | null];
      expect(code, stdout).toBe(1);
      expect(stderr.trim().split('\n'), stderr).toHaveLength(1);
      expect(stderr).toMatch(
        new RegExp(
          `^dorsal: the replay stopped after \\d+ of 6000 messages: reading the ingress messages of process ${recorded} failed: `,
        ),
      );
    } finally {
      await serve.stop();
      cleanup();
    }
  }, 180_000);
});
