import { Command, InvalidArgumentError, Option } from 'commander';
import type { SystemDefinition } from '../actors/define-system.js';
import { ByteRing } from '../queues/byte-ring.js';
import { quoteLiteral } from '../telemetry/analytics/sql.js';
import { recordDiff, type StoredDiff } from '../telemetry/persist/replay-diff.js';
import { formatRfc3339Ns, type ProcessInfo } from '../telemetry/wire/index.js';
import { bold, count, counted, dim, printable, printJson, yellow } from './format.js';
import { integer } from './options.js';
import { compareInLake, type ReplayDiff } from './replay-diff.js';
import { chunkBytesFor, feedPlaylist, RING_BYTES } from './replay-feed.js';
import { refuseUnfitFields } from './replay-fit.js';
import { incompleteNote, lossLines, type RecordingLoss, recordingLosses } from './replay-losses.js';
import { compareInMemory } from './replay-memory.js';
import { countUntimed } from './replay-pages.js';
import type { PlayerArgs } from './replay-player.js';
import { ingressActorsOf, ingressByStream, type Playlist, playlistOf } from './replay-recording.js';
import { recordedSpan } from './replay-span.js';
import { diffText } from './replay-text.js';
import { depthSql, MAX_LAKE_DEPTH, type PlacedRuns } from './replay-tree.js';
import { loadSystemModule, persistTarget, persistTotals, runSystem } from './run.js';
import {
  CliError,
  openSource,
  type ProcessSummary,
  resolveProcess,
  type Source,
  type SourceOptions,
  withSource,
  withSourceOptions,
} from './source.js';
import { listenForStop } from './stop-signals.js';

interface ReplayOptions extends SourceOptions {
  readonly system?: string;
  /** 0: as fast as the streams take. */
  readonly speed: number;
  readonly diff: boolean;
  readonly divergences: number;
  /** Bytes of the ring the player's messages come through. */
  readonly ringBytes: number;
}

/** The player's module, beside this one (TypeScript when run from the sources). */
const PLAYER = new URL(`./replay-player${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/** Factors of the recorded pacing a replay takes: a thousand times slower to a million times faster. */
const SPEEDS = { least: 1e-3, most: 1e6 };

/** `1` (the recorded pacing), `10` (ten times faster), a factor within `SPEEDS`, or `max` (0). */
function speed(value: string): number {
  if (value === 'max') return 0;
  const n = Number(value);
  if (value.trim() === '' || !(n >= SPEEDS.least && n <= SPEEDS.most)) {
    // 1e-300 was taken: a second of the recording would have been played over 1e292 years.
    throw new InvalidArgumentError(
      `expected 1 (as recorded), 10 (ten times faster), another factor from ${SPEEDS.least} to ${SPEEDS.most}, or max`,
    );
  }
  return n;
}

/** What a replay is about to play: the recorded process, the system module, and what to read. */
interface Plan {
  readonly recorded: ProcessSummary;
  readonly module: string;
  readonly url: URL;
  readonly definition: SystemDefinition;
  /** The recorded process's ingress actors. */
  readonly actors: readonly string[];
  /** The messages to play: which streams, how many; read from the recording as they are played. */
  readonly playlist: Playlist;
  /** How many of them have a recorded time that is not a number: played unpaced. */
  readonly untimed: number;
  /** The recording has not ended (still running, or killed): see `plan`. */
  readonly unended: boolean;
  /** What the recorded run lost of its spine's streams: the replay and its diff cannot tell it. */
  readonly lost: readonly RecordingLoss[];
}

/** The newest process that is not a replay (undefined when there is none: `resolveProcess` says so). */
async function newestRecording(source: Source): Promise<string | undefined> {
  const { rows } = await source.analytics.query(
    "SELECT process_id FROM processes WHERE properties->>'dorsal.replay_of' IS NULL ORDER BY start_time DESC LIMIT 1",
    { maxRows: 1 },
  );
  const id = rows[0]?.[0];
  return id === undefined ? undefined : String(id);
}

/** A recorded module: its URL, or the path it is if it is none. */
function moduleUrl(module: string): URL | string {
  try {
    return new URL(module);
  } catch {
    return module;
  }
}

/**
 * Refuses a recording some of whose blocks do not read (a blob missing or damaged): played, it
 * would feed the system only part of what it recorded, and a diff would blame the system for
 * what the lake lost.
 */
async function refuseUnreadable(source: Source, processId: string): Promise<void> {
  const { rows } = await source.analytics.query(
    'SELECT count(*)::DOUBLE, coalesce(sum(object_count), 0)::DOUBLE, min(error) FROM unreadable_blocks',
    { process: processId },
  );
  const [blocks, records, error] = rows[0] ?? [0, 0, null];
  if (Number(blocks) === 0) return;
  throw new CliError(
    `process ${processId} cannot be replayed whole: ${count(Number(blocks))} of its blocks do not read (${count(Number(records))} records), e.g. ${printable(String(error))}`,
  );
}

/** Whether the lake holds the counts a process keeps at its stop: it ended (not running, not killed). */
async function ended(source: Source, processId: string): Promise<boolean> {
  const { rows } = await source.analytics.query('SELECT count(*)::DOUBLE FROM run_counts', {
    process: processId,
    maxRows: 1,
  });
  return Number(rows[0]?.[0] ?? 0) > 0;
}

/**
 * The refusal to diff against a recording whose run has not ended (the lake holds no counts of
 * its stop, which the persister writes last): still running, its messages after the plan would be
 * said recorded and not replayed, and those not flushed yet replayed and not recorded; killed, it
 * lacks what was never flushed. Either way the diff would blame the system for the recording.
 */
function unendedRefusal(processId: string): CliError {
  return new CliError(
    `process ${processId} has not ended (the lake holds no counts of its stop: it is still running, or it was killed): a diff would count what it has not recorded as divergences; replay it without --diff, or diff it once it has stopped`,
  );
}

/** Finds what to replay: the process, its (or the given) system module, its ingress streams, checked. */
async function plan(source: Source, options: ReplayOptions): Promise<Plan> {
  const recorded = await resolveProcess(source, options.process ?? (await newestRecording(source)));
  const module = options.system ?? recorded.properties['dorsal.system'];
  if (module === undefined) {
    throw new CliError(
      `process ${recorded.processId} does not say which system module it ran: give --system MODULE`,
    );
  }
  const { url, definition } = await loadSystemModule(options.system ?? moduleUrl(module));
  const actors = ingressActorsOf(recorded, definition);
  if (actors.length === 0) {
    throw new CliError(
      `process ${recorded.processId} does not say which of its actors are ingress, and none runs a module ${printable(module)} marks ingress: give --system MODULE`,
    );
  }
  await refuseUnreadable(source, recorded.processId);
  // Not ended: still recording (what it records from now on is not played), or killed (its last
  // messages, and what it lost, never reached the lake): refused a diff, else said before it plays.
  const unended = !(await ended(source, recorded.processId));
  if (unended && options.diff) throw unendedRefusal(recorded.processId);
  const ingress = await ingressByStream(source.analytics, recorded.processId, actors);
  const counts = new Map([...ingress].map(([stream, { count }]) => [stream, count]));
  if ([...counts.values()].every((n) => n === 0)) {
    throw new CliError(
      `process ${recorded.processId} recorded no ingress message: its ingress actors (${actors.map(printable).join(', ')}) published nothing`,
    );
  }
  const listed = {
    ...playlistOf(recorded, actors, counts, definition, module),
    span: await recordedSpan(source.analytics, recorded.processId),
  };
  const playlist = unended
    ? { ...listed, ends: listed.streams.map((s) => ingress.get(s)?.end ?? 0) }
    : listed;
  await refuseUnfitFields(source.analytics, recorded, playlist, module);
  const untimed = await countUntimed(source.analytics, playlist);
  const spine = new Set(streamsOf(recorded).map((s) => s.name));
  const lost = await recordingLosses(source.analytics, recorded.processId, spine);
  return { recorded, module, url, definition, actors, playlist, untimed, lost, unended };
}

/**
 * Plays a plan into a fresh run of its system, recorded; resolves to the new process's id. The
 * playlist streams from `source` through a byte ring while the system runs: a reading that fails,
 * or a run that ends before everything was played (a crash), is a `CliError` saying how far it got.
 */
async function play(
  source: Source,
  plan: Plan,
  options: ReplayOptions,
  signal: AbortSignal,
): Promise<{ replay: string; lost: number }> {
  const { playlist } = plan;
  const total = playlist.total;
  const ring = ByteRing.create(options.ringBytes);
  const chunkBytes = chunkBytesFor(playlist, ring);
  // A 64-bit count: an Int32 one turned negative past 2^31 messages, and the run never ended.
  const played = new SharedArrayBuffer(8);
  const count = new BigInt64Array(played);
  const args: PlayerArgs = {
    streams: playlist.streams,
    layouts: playlist.layouts.map((l) => l.describe()),
    ring: ring.buffer,
    chunkBytes,
    speed: options.speed,
    played,
  };
  const bar = process.stderr.isTTY === true ? await progressBar(total) : undefined;
  // The ring fills while the system starts; the writer stops waiting for room once the run is
  // over (the `finally` below: nothing between here and there may throw past it).
  let over = false;
  let failure: unknown;
  const feeding = feedPlaylist(source.analytics, playlist, ring, chunkBytes, () => !over).catch(
    (error: unknown) => {
      failure = error;
    },
  );
  // SC load: the count the player stored last, whole.
  const progress = () => Number(Atomics.load(count, 0));
  const ticker = bar === undefined ? undefined : setInterval(() => bar.update(progress()), 100);
  let report: Awaited<ReturnType<typeof runSystem>>;
  try {
    report = await runSystem(plan.definition, {
      seconds: Number.POSITIVE_INFINITY,
      persist: persistTarget(options),
      properties: {
        'dorsal.system': plan.url.href,
        'dorsal.replay_of': plan.recorded.processId,
        'dorsal.replay_speed': options.speed === 0 ? 'max' : String(options.speed),
      },
      include: (actor) => actor.ingress !== true,
      extra: [{ module: PLAYER, args, ingress: true }],
      // Played everything, the recording could not be read, or the system stopped by itself (a crash).
      done: (system) => progress() >= total || failure !== undefined || system.liveThreads.length === 0,
      signal,
    });
  } finally {
    over = true;
    await feeding;
    if (ticker !== undefined) clearInterval(ticker);
    bar?.update(progress());
    bar?.stop();
  }
  const replay = report.persist?.processId;
  // The crash that stopped the system (one a restart healed is no reason to fail).
  const crash = report.failure;
  if (failure !== undefined || progress() < total || replay === undefined) {
    const why =
      failure !== undefined
        ? `: ${printable(failure instanceof Error ? failure.message : String(failure))}`
        : crash !== undefined
          ? `: ${printable(crash.message.split('\n')[0]!)}`
          : signal.aborted
            ? ': interrupted'
            : '';
    // What was played is in the lake all the same, as a replay: said, so that it is not taken for a whole one.
    const kept = replay === undefined ? '' : ` (what it played is recorded as process ${replay})`;
    throw new CliError(`the replay stopped after ${progress()} of ${total} messages${why}${kept}`);
  }
  // Everything played, then interrupted while it stopped: it is recorded, but what the system did
  // with the last messages may not be, and the user asked to stop, not to be shown a diff.
  if (signal.aborted) {
    throw new CliError(
      `the replay was interrupted while it stopped, after all ${total} messages were played: it is recorded as process ${replay}, and nothing was compared`,
    );
  }
  // Everything played, and then the system crashed (a message still on its way): no replay to trust.
  if (crash !== undefined) {
    throw new CliError(
      `the replayed system crashed after all ${total} messages were played: ${printable(crash.message.split('\n')[0]!)}`,
    );
  }
  return { replay, lost: persistTotals(report).lost };
}

async function progressBar(total: number): Promise<{ update: (n: number) => void; stop: () => void }> {
  const { default: progress } = await import('cli-progress');
  const bar = new progress.SingleBar(
    {
      format: `${dim('replaying')} {bar} {value}/{total} ingress messages · {eta_formatted} left`,
      stream: process.stderr,
      clearOnComplete: true,
      hideCursor: true,
    },
    progress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { update: (n) => bar.update(n), stop: () => bar.stop() };
}

/** The replay compared with its recording: every stream either recorded. */
async function diff(options: ReplayOptions, planned: Plan, replay: string): Promise<ReplayDiff> {
  return withSource(options, async (source) => {
    const replayed = await resolveProcess(source, replay);
    const both = [...streamsOf(planned.recorded), ...streamsOf(replayed)];
    const streams = [...new Set(both.map((s) => s.name))];
    const shared = new Set(both.filter((s) => s.multiProducer === true).map((s) => s.name));
    const runs: PlacedRuns = {
      recorded: planned.recorded.processId,
      replayed: replay,
      streams,
      ingress: { recorded: planned.actors, replayed: ingressActorsOf(replayed) },
      shared,
      spans: {
        recorded: planned.playlist.span ?? (await recordedSpan(source.analytics, planned.recorded.processId)),
        replayed: await recordedSpan(source.analytics, replay),
      },
    };
    // Placed by the analytics, unless a tree is too deep for its recursive placing.
    const { rows } = await source.analytics.query(depthSql(runs), {
      processes: [runs.recorded, runs.replayed],
      maxRows: 1,
    });
    return Number(rows[0]?.[0] ?? 0) >= MAX_LAKE_DEPTH
      ? compareInMemory(source.analytics, runs, options.divergences)
      : compareInLake(source.analytics, runs, options.divergences);
  });
}

/** The diff as the lake keeps it (the divergences' chains are left out: their places say where they are). */
export function storedDiff(recording: string, diff: ReplayDiff, limit: number): StoredDiff {
  return {
    recording,
    diverged: diff.diverged,
    limit,
    streams: diff.streams.map((s) => ({ ...s })),
    divergences: diff.divergences.map((d) => ({
      kind: d.kind,
      stream: d.stream,
      place: d.place,
      recordedSeq: d.recorded?.seq ?? null,
      replayedSeq: d.replayed?.seq ?? null,
      fields: d.fields,
    })),
  };
}

/**
 * Records a replay's diff in the lake, as a stream of the replay process (see
 * `telemetry/persist/replay-diff.ts`): through the embedded lake's ingestion with `--data`, through
 * the server's with `--url`. The process record sent again is the one the lake holds, field for
 * field (ingestion refuses other content under its id); the block is timed at the end of the
 * replay's last block.
 */
async function keepDiff(options: ReplayOptions, replay: string, stored: StoredDiff): Promise<void> {
  const row = await withSource(options, async (source) => {
    const { rows } = await source.analytics.query(
      `SELECT exe, host, username, start_ns::VARCHAR, parent_process_id, properties::VARCHAR, (SELECT epoch_ns(max(end_time))::VARCHAR FROM blocks WHERE process_id = ${quoteLiteral(replay)}), start_ticks::VARCHAR, clock::VARCHAR FROM processes WHERE process_id = ${quoteLiteral(replay)}`,
      // Unscoped: a look scoped to the replay would be reused by the next query of it, for up to
      // the analytics' freshness, and hide the diff just kept from a server that did not store it
      // (another on the same lake; the one that stored it looks again after its own writes).
      { maxRows: 1 },
    );
    return rows[0];
  });
  if (row === undefined)
    throw new CliError(`the replay ${replay} is not in the lake: its diff cannot be kept there`);
  const [exe, host, username, startNs, parent, properties, lastEndNs, startTicks, clock] = row.map((v) =>
    v === null ? '' : String(v),
  );
  const at = lastEndNs ? { atEpochNs: BigInt(lastEndNs) } : {};
  const process: ProcessInfo = {
    processId: replay,
    exe: exe!,
    host: host!,
    username: username!,
    startTime: formatRfc3339Ns(BigInt(startNs!)),
    // As the lake holds them: the ingestion refuses a process record sent again with other content.
    startTicks: startTicks ? Number(startTicks) : 0,
    clock: clock
      ? (JSON.parse(clock) as ProcessInfo['clock'])
      : { name: 'dorsal-spine-ns', ticksPerSecond: 1e9 },
    ...(parent ? { parentProcessId: parent } : {}),
    properties: JSON.parse(properties!) as Record<string, string>,
  };
  try {
    if (options.url) {
      await recordDiff(
        { url: options.url, ...(options.key ? { key: options.key } : {}) },
        process,
        stored,
        at,
      );
      return;
    }
    const [{ IngestionService }, { Lake }] = await Promise.all([
      import('../telemetry/ingestion/service.js'),
      import('../telemetry/lake/lake.js'),
    ]);
    const service = new IngestionService(Lake.open({ data: options.data }));
    try {
      await service.lake.ready();
      await recordDiff({ service }, process, stored, at);
    } finally {
      await service.close();
    }
  } catch (error) {
    throw new CliError(
      `the diff of replay ${replay} could not be kept in the lake: ${printable(error instanceof Error ? error.message : String(error))}`,
    );
  }
}

/** A process's spine streams, in declaration order, and whether several actors may produce each. */
function streamsOf(process: ProcessSummary): { name: string; multiProducer?: boolean }[] {
  try {
    const spine = JSON.parse(process.properties['dorsal.spine'] ?? '[]') as unknown;
    return Array.isArray(spine) ? (spine as { name: string; multiProducer?: boolean }[]) : [];
  } catch {
    return [];
  }
}

/** Said of a recording that has not ended (see `plan`). */
function unendedLine(processId: string): string {
  return `process ${processId} has not ended (the lake holds no counts of its stop): it is still running, and what it records from now on is not played, or it was killed, and what it published last and what it lost may not be in the lake`;
}

/** Said of a recording's messages whose time is not a number (see `countUntimed`). */
function untimedLine(untimed: number): string {
  return `${counted(untimed, 'ingress message has', 'ingress messages have')} a recorded time that is not a number (NaN or infinite) or lies outside the times of the recording's blocks (the recording is damaged there): each is played in its stream's order, unpaced`;
}

/** `dorsal replay`: plays a recorded process's ingress messages into a fresh run; with `--diff`, compares. */
export function replayCommand(): Command {
  return withSourceOptions(
    new Command('replay')
      .description(
        'play the ingress messages of a recorded process into a fresh run of its system (recorded as a new process); --diff compares what it produced with the recording',
      )
      .option('--process <id>', 'the recorded process (default: the newest that is not a replay)')
      .option('--system <module>', 'a (changed) system module to play into, instead of the recorded one')
      .option('--speed <speed>', '1 (the recorded pacing), 10 (ten times faster) or max', speed, 1)
      .option('--diff', 'compare with the recording; exit 1 if anything diverged', false)
      .option('--divergences <n>', 'divergences described at most', integer(0, 1_000_000), 5)
      .addOption(
        new Option('--ring-bytes <n>', 'bytes of the ring the played messages go through')
          .argParser(integer(64, 2 ** 30))
          .default(RING_BYTES)
          .hideHelp(),
      )
      .addHelpText(
        'after',
        `
The ingress actors (ingress: true in defineSystem) are left out; a player publishes what they
published, in the recorded order. --diff matches messages by their place in the tree (the ingress
message they descend from, and the path from it) and compares their fields.

Examples:
  $ dorsal replay --speed max --diff
  $ dorsal replay --process 9be40bbc --system ./market-v2.system.js --diff`,
      ),
    false,
    true,
  ).action(async (options: ReplayOptions) => {
    // One source for the plan and the play: the messages are read as they are played.
    const source = await openSource(options);
    let planned: Plan;
    let played: { replay: string; lost: number };
    // Ctrl-C (or SIGTERM, SIGHUP) ends the run, which then says it was interrupted: listened for
    // before the replay is said to begin (until then, Node's default ends the command at once),
    // and until the run has stopped and flushed.
    const interrupt = new AbortController();
    let release = () => {};
    try {
      planned = await plan(source, options);
      const total = planned.playlist.total;
      const speedText = options.speed === 0 ? 'max' : String(options.speed);
      release = listenForStop(() => interrupt.abort());
      if (!options.json) {
        // What the recording lacks, and what it cannot pace, before it plays: what comes of it
        // (a diff's divergences, a pacing) is not taken for the system's.
        for (const line of lossLines(planned.lost, planned.playlist.streams)) console.log(yellow(line));
        if (planned.untimed > 0) console.log(yellow(untimedLine(planned.untimed)));
        if (planned.unended) console.log(yellow(unendedLine(planned.recorded.processId)));
        console.log(
          dim(
            `replaying ${count(total)} ingress messages of process ${planned.recorded.processId} into ${printable(planned.module)} at speed ${speedText}`,
          ),
        );
      }
      played = await play(source, planned, options, interrupt.signal);
    } finally {
      release();
      await source.close();
    }
    const total = planned.playlist.total;
    const speedText = options.speed === 0 ? 'max' : String(options.speed);
    const { replay, lost } = played;
    const result = options.diff ? await diff(options, planned, replay) : undefined;
    if (result !== undefined && result.diverged > 0) process.exitCode = 1;
    if (options.json) {
      printJson({
        process: planned.recorded.processId,
        replay,
        system: planned.url.href,
        speed: speedText,
        played: total,
        lost,
        untimed: planned.untimed,
        recordingLost: planned.lost,
        recordingEnded: !planned.unended,
        ...(result === undefined ? {} : { diff: result }),
      });
    } else {
      console.log(
        `${bold('recorded as process')} ${replay} ${dim(`(a replay of ${planned.recorded.processId})`)}${lost > 0 ? ` · ${count(lost)} lost by the persister` : ''}`,
      );
      const incomplete = planned.lost.length > 0 ? incompleteNote(planned.lost) : undefined;
      if (result !== undefined) console.log(`\n${diffText(result, incomplete)}`);
    }
    // Printed first: a diff that cannot be kept is still seen (and the command fails).
    if (result !== undefined) {
      await keepDiff(options, replay, storedDiff(planned.recorded.processId, result, options.divergences));
    }
  });
}
