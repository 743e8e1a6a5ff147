import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'vitest';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { compiled } from '../helpers/compiled.js';
import { type DorsalRun, finished, runDorsal, spawnDorsal } from './cli-helpers.js';
import { f64, patchRecords } from './damaged-times.js';

/**
 * What the tests of `dorsal replay` share (cli-replay.test.ts, cli-replay-more.test.ts): the
 * command as a subprocess, against lakes recorded by short runs of the market example (its feed
 * is the ingress actor; everything downstream is deterministic) and of the fixtures' systems.
 */

export const SYSTEM = 'examples/market/system.ts';
export const FIXTURES = 'test/fixtures/replay';
/** The system module's URL, as a process run by the compiled `dorsal` records it. */
export const SYSTEM_URL = pathToFileURL(compiled(SYSTEM)).href;
export const STREAMS = ['ticks', 'books', 'orders', 'acks'];
/** A day in ns, the unit of recorded times. */
export const DAY_NS = 86_400e9;
/** Two ingress feeds into one multi-producer ticks stream, 300 ticks each (see the module). */
export const TWO_FEEDS = `${FIXTURES}/two-feeds.system.ts`;

export interface StreamComparison {
  stream: string;
  matched: number;
  differing: number;
  onlyRecorded: number;
  onlyReplayed: number;
}
export interface DivergentMessage {
  stream: string;
  seq: number;
  actor: string;
  fields: Record<string, unknown>;
}
export interface ReplayJson {
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
export async function query(dir: string, process: string, sql: string): Promise<unknown[][]> {
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
export async function recordMarket(dir: string, seconds: number): Promise<string> {
  const run = await runDorsal(['run', SYSTEM, '--seconds', String(seconds), '--data', dir]);
  expect(run.code, run.stderr).toBe(0);
  const listing = await runDorsal(['processes', '--data', dir, '--json']);
  return (JSON.parse(listing.stdout) as { processId: string }[])[0]!.processId;
}

export async function counts(dir: string, process: string): Promise<Record<string, number>> {
  const rows = await query(dir, process, 'SELECT stream, count(*)::INTEGER FROM messages GROUP BY 1');
  return Object.fromEntries(rows.map(([s, n]) => [String(s), Number(n)]));
}

export async function replay(
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
export async function keptDiff(
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
export async function publishTimes(dir: string, process: string, stream: string): Promise<number[]> {
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
export async function rewritePublishTimes(
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
export async function runDorsalWithin(args: readonly string[], ms: number): Promise<DorsalRun> {
  const child = spawnDorsal(args);
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  try {
    return await finished(child);
  } finally {
    clearTimeout(timer);
  }
}

/** The newest recorded process in the lake at `dir`. */
export async function newestProcess(dir: string): Promise<string> {
  const listing = await runDorsal(['processes', '--data', dir, '--json']);
  return (JSON.parse(listing.stdout) as { processId: string }[])[0]!.processId;
}

/** The divergences a replay printed, as the lake keeps them. */
export function asKept(diff: NonNullable<ReplayJson['diff']>) {
  return diff.divergences.map((d) => ({
    kind: d.kind,
    stream: d.stream,
    place: d.place,
    recordedSeq: d.recorded?.seq ?? null,
    replayedSeq: d.replayed?.seq ?? null,
    fields: d.fields,
  }));
}
