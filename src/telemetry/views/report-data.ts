import { withUnrecorded } from '../analytics/compat.js';
import { allRows, uncut } from '../analytics/paged.js';
import type { QueryScope } from '../analytics/query.js';
import {
  type AnalyticsQuestions,
  BLOCK_SPAN_SQL,
  type MessageTree,
  type PercentileRow,
  TIMED,
} from '../analytics/questions.js';
import { quoteLiteral } from '../analytics/sql.js';
import type { StoredDiffStream, StoredDivergence } from '../persist/replay-diff.js';

/** Latency histogram buckets per decade: bucket `b` holds latencies in [10^(b/10), 10^((b+1)/10)) ns. */
export const BUCKETS_PER_DECADE = 10;
/** Time buckets of the over-time charts, at most. */
export const MAX_TIME_BUCKETS = 120;
/** Slowest message trees the report draws. */
export const SLOWEST_TREES = 20;
/** Metrics the report plots, at most (by name). */
export const MAX_METRICS = 24;

/** The recorded process a report is about. */
export interface ReportProcess {
  readonly processId: string;
  readonly exe: string;
  readonly startTime: string;
  readonly properties: Readonly<Record<string, string>>;
  /** The process this one replays (`dorsal.replay_of`), if it is a replay. */
  readonly replayOf?: string;
  /** Whether the lake still holds the process it replays. */
  readonly originalInLake: boolean;
  /** For a replay: its diff as `dorsal replay --diff` kept it in the lake; undefined if it was replayed without. */
  readonly diff?: ReportDiff;
}

/** A replay's diff (the analytics' `replay_diffs`, `replay_diff_streams`, `replay_divergences`). */
export interface ReportDiff {
  /** Messages that diverged in all. */
  readonly diverged: number;
  /** Divergences kept at most (`--divergences`). */
  readonly limit: number;
  /** Why the diff's block could not be read, if it could not. */
  readonly error?: string;
  readonly streams: readonly StoredDiffStream[];
  /** As stored, the kind read back as text. */
  readonly divergences: readonly (Omit<StoredDivergence, 'kind'> & { readonly kind: string })[];
}

/** Messages an actor published on a stream. */
export interface ProducedEdge {
  readonly actor: string;
  readonly stream: string;
  readonly count: number;
}

/** Messages an actor handled from a stream, and the sequences it skipped between its first and last. */
export interface ConsumedEdge {
  readonly actor: string;
  readonly stream: string;
  readonly count: number;
  /** Sequences missing between the first and the last it handled: lapped, or its timing records lost. */
  readonly gaps: number;
  /** The first sequence it handled (what it missed before, if anything, is not counted in `gaps`). */
  readonly firstSeq: number;
  /**
   * What the actor's own consumer counted as lost (lapped, or poisoned), every incarnation
   * summed: exact, from the run's counts kept at its stop (null: the run has none, a process
   * still running or killed).
   */
  readonly lapped: number | null;
}

/** What the persister lost or dropped of one lake stream (`losses`). */
export interface PersisterLoss {
  readonly stream: string;
  readonly lost: number;
  readonly dropped: number;
  /** Neither in the lake nor counted lost (see the `losses` view). */
  readonly unrecorded: number;
}

/** Latency of one actor × stream: its percentiles and its log-scale histogram. */
export interface LatencyDistribution extends PercentileRow {
  readonly actor: string;
  readonly stream: string;
  /** `[bucket, count]`, bucket as in `BUCKETS_PER_DECADE`, ascending. */
  readonly histogram: readonly (readonly [number, number])[];
}

/** Values per time bucket, one series per key (a stream, an actor × stream, a metric). */
export interface TimeSeries {
  readonly name: string;
  /** One value per bucket of `ReportData.time` (0 or NaN where nothing was recorded). */
  readonly values: readonly number[];
}

/** A metric's plot: mean, least and greatest value per time bucket. */
export interface MetricSeries {
  readonly name: string;
  readonly unit: string;
  /**
   * Who measured it: the actor (or actors) on the measuring thread, else the thread; a metric of
   * one name measured on two threads is two series, not one that mixes their values (two actors
   * sharing a thread are one: an event does not say which of them took it).
   */
  readonly source: string;
  readonly count: number;
  readonly mean: readonly number[];
  readonly min: readonly number[];
  readonly max: readonly number[];
}

/** Spans of one name: how often, how long in all, the longest. */
export interface SpanTotals {
  readonly name: string;
  readonly count: number;
  readonly totalNs: number;
  readonly maxNs: number;
  readonly p99Ns: number;
}

/** Everything a report draws, aggregated in SQL: a few thousand numbers whatever the run's size. */
export interface ReportData {
  readonly process: ReportProcess;
  /** Blocks of the run that did not read (a blob missing or damaged): their records are in no figure. */
  readonly unreadable: {
    readonly blocks: number;
    readonly records: number;
    /** Why, for the first few. */
    readonly errors: readonly string[];
  };
  /**
   * Timing records whose start, end or origin is no number (NaN or infinite: a damaged
   * recording): in none of the latency figures.
   */
  readonly untimed: number;
  /**
   * Why the run's counts did not read (a blob missing or damaged), if they did not: what its
   * actors counted lost (`ConsumedEdge.lapped`) is then unknown, not none.
   */
  readonly countsErrors: readonly string[];
  /**
   * The run's time axis: process-clock ns of its first and last message or measure within its
   * blocks' times (see `offAxis`), and the bucket width. `spanned` is false when they are one
   * time (a run of one message): no rate can be told then.
   */
  readonly time: {
    readonly beginNs: number;
    readonly endNs: number;
    readonly bucketNs: number;
    readonly buckets: number;
    readonly spanned: boolean;
  };
  /**
   * Messages whose publish time lies outside the times of the run's blocks, or is no number (a
   * damaged recording): one such time decided the axis (and every rate) on its own, 1e17 ns
   * putting 20,000 ticks/s at 0.0002/s. They are in none of the figures over time.
   */
  readonly offAxis: number;
  readonly topology: {
    readonly actors: readonly string[];
    readonly streams: readonly string[];
    readonly produced: readonly ProducedEdge[];
    readonly consumed: readonly ConsumedEdge[];
    readonly persister: readonly PersisterLoss[];
  };
  readonly latency: readonly LatencyDistribution[];
  /** Messages per second, per stream, over time. */
  readonly throughput: readonly TimeSeries[];
  /** Sequences skipped per bucket, per actor × stream (`actor ← stream`), over time. */
  readonly gaps: readonly TimeSeries[];
  readonly slowest: readonly MessageTree[];
  readonly instrumentation: {
    readonly levels: readonly { readonly level: string; readonly count: number }[];
    readonly topLogs: readonly {
      readonly level: string;
      readonly target: string;
      readonly message: string;
      readonly count: number;
    }[];
    readonly metrics: readonly MetricSeries[];
    readonly spans: readonly SpanTotals[];
  };
}

type Row = readonly unknown[];

/** Unreadable blocks a report names at most (it counts them all). */
const MAX_UNREADABLE_SHOWN = 5;
/** The most frequent log lines a report lists. */
const TOP_LOGS = 12;
/** The spans a report lists, those that took the most time first. */
const TOP_SPANS = 15;

/**
 * What bounds each of a report's queries: a time limit (of the SQL alone, or of each whole query
 * as a server's views ask), and a signal that stops them all (the page's client went away).
 */
export type ReportLimits = Pick<QueryScope, 'timeoutMs' | 'timeLimit' | 'signal'> & {
  /** A replay's divergences listed at most, the first its diff kept (default 10,000). */
  readonly divergences?: number;
};

/** Log levels, most severe first, as `log_entries` names them. */
const LEVEL_ORDER = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/**
 * Asks the analytics everything a report of `process` draws. Every aggregate is computed by
 * DuckDB where the data is (embedded, or on the server behind `RemoteAnalytics`); what comes back
 * is bounded by the system's shape (actors, streams, metrics) and `MAX_TIME_BUCKETS`, not by the
 * number of messages.
 */
export async function gatherReport(
  analytics: AnalyticsQuestions,
  processId: string,
  options: ReportLimits = {},
): Promise<ReportData> {
  const { divergences = REPORTED_DIVERGENCES, ...limits } = options;
  const scope = { process: processId, ...limits };
  // Each answer whole, page after page through a server that answers fewer rows at once: none is
  // drawn short. Each question's order is total (its groups' keys), so that pages neither repeat
  // nor miss a row; `atMost` rows of a top-N.
  const ask = (sql: string, atMost?: number): Promise<readonly Row[]> =>
    allRows(analytics, scope, sql, atMost);
  const rank = LEVEL_ORDER.map((level, i) => `WHEN '${level}' THEN ${i}`).join(' ');

  // Asked at once, the questions share one look at the lake: of a running process, they answer
  // about the same blocks (and the lake is listed, and new blocks decoded, once, not per question).
  const [
    process,
    [span],
    producedRows,
    consumedRows,
    lappedRows,
    persisterRows,
    percentiles,
    histogramRows,
    slowest,
    levelRows,
    logRows,
    spanRows,
    unreadableRows,
    untimed,
    countsErrorRows,
  ] = await Promise.all([
    readProcess(analytics, processId, limits, divergences),
    // Within the blocks' times (see `BLOCK_SPAN_SQL`), and how many messages lie elsewhere.
    ask(
      `WITH s AS (${BLOCK_SPAN_SQL}),
         t AS (SELECT min(t) AS lo, max(t) AS hi FROM (SELECT publish_t AS t FROM messages UNION ALL SELECT time_ns FROM measures), s WHERE t BETWEEN s.lo AND s.hi AND isfinite(t))
       SELECT t.lo, t.hi, (SELECT count(*)::DOUBLE FROM messages, s WHERE NOT coalesce(isfinite(publish_t) AND publish_t BETWEEN s.lo AND s.hi, false)) FROM t`,
    ),
    ask('SELECT actor, stream, count(*)::DOUBLE FROM messages GROUP BY ALL ORDER BY ALL'),
    ask(
      'SELECT actor, stream, count(*)::DOUBLE, (max(seq) - min(seq) + 1 - count(DISTINCT seq))::DOUBLE, min(seq)::DOUBLE FROM timings GROUP BY ALL ORDER BY ALL',
    ),
    ask('SELECT actor, stream, lost::DOUBLE FROM actor_counts ORDER BY ALL'),
    withUnrecorded((unrecorded) =>
      ask(
        `SELECT stream, lost::DOUBLE, dropped::DOUBLE, ${unrecorded} FROM losses WHERE counted_by = 'persister' ORDER BY ALL`,
      ),
    ),
    analytics.percentiles({ process: processId, ...options }),
    ask(
      `SELECT actor, stream, floor(log10(greatest(latency_ns, 1)) * ${BUCKETS_PER_DECADE})::INTEGER AS b, count(*)::DOUBLE FROM timings WHERE ${TIMED} GROUP BY ALL ORDER BY actor, stream, b`,
    ),
    analytics.slowestTrees({ process: processId, n: SLOWEST_TREES, ...options }),
    ask(
      `SELECT level, count(*)::DOUBLE FROM log_entries GROUP BY level ORDER BY min(CASE level ${rank} ELSE ${LEVEL_ORDER.length} END), level`,
    ),
    ask(
      'SELECT level, target, message, count(*)::DOUBLE AS n FROM log_entries GROUP BY ALL ORDER BY n DESC, level, target, message',
      TOP_LOGS,
    ),
    ask(
      'SELECT name, count(*)::DOUBLE, sum(duration_ns), max(duration_ns), quantile_disc(duration_ns, 0.99) FROM thread_spans WHERE duration_ns IS NOT NULL GROUP BY name ORDER BY sum(duration_ns) DESC, name',
      TOP_SPANS,
    ),
    ask(
      'SELECT count(*) OVER ()::DOUBLE, (sum(object_count) OVER ())::DOUBLE, error FROM unreadable_blocks ORDER BY block_id, error',
      MAX_UNREADABLE_SHOWN,
    ),
    analytics.untimedTimings({ process: processId, ...limits }),
    ask('SELECT error FROM run_counts WHERE error IS NOT NULL ORDER BY error', MAX_UNREADABLE_SHOWN),
  ]);

  const first = num(span?.[0]);
  const beginNs = Number.isFinite(first) ? first : 0;
  const last = num(span?.[1]);
  const spanned = Number.isFinite(last) && last > beginNs;
  const endNs = spanned ? last : beginNs + 1;
  const bucketNs = niceBucket((endNs - beginNs) / MAX_TIME_BUCKETS);
  const buckets = Math.max(1, Math.ceil((endNs - beginNs + 1) / bucketNs));
  const bucketOf = (column: string) => `floor((${column} - ${beginNs}) / ${bucketNs})::INTEGER`;
  const inRange = (column: string) => `${column} >= ${beginNs} AND ${column} <= ${endNs}`;
  const [throughputRows, gapRows, measureRows] = await Promise.all([
    ask(
      `SELECT stream, ${bucketOf('publish_t')} AS b, count(*)::DOUBLE FROM messages WHERE ${inRange('publish_t')} GROUP BY ALL ORDER BY ALL`,
    ),
    ask(
      `SELECT actor || ' ← ' || stream, ${bucketOf('end_t')} AS b, sum(gap)::DOUBLE FROM (SELECT actor, stream, end_t, seq - lag(seq) OVER (PARTITION BY actor, stream ORDER BY seq) - 1 AS gap FROM timings) WHERE gap > 0 AND ${inRange('end_t')} GROUP BY ALL ORDER BY ALL`,
    ),
    ask(
      `SELECT name, coalesce(unit, ''), ${bucketOf('time_ns')} AS b, avg(value), min(value), max(value), count(*)::DOUBLE, coalesce(actor, thread, '') AS source FROM measures WHERE ${inRange('time_ns')} GROUP BY ALL ORDER BY 1, 2, 8, 3`,
    ),
  ]);

  const produced = producedRows.map(
    (r): ProducedEdge => ({ actor: str(r[0]), stream: str(r[1]), count: num(r[2]) }),
  );
  const lapped = new Map(lappedRows.map((r) => [`${str(r[0])}\u0000${str(r[1])}`, num(r[2])]));
  const consumed = consumedRows.map(
    (r): ConsumedEdge => ({
      actor: str(r[0]),
      stream: str(r[1]),
      count: num(r[2]),
      gaps: num(r[3]),
      firstSeq: num(r[4]),
      lapped: lapped.get(`${str(r[0])}\u0000${str(r[1])}`) ?? null,
    }),
  );
  const persister = persisterRows.map(
    (r): PersisterLoss => ({ stream: str(r[0]), lost: num(r[1]), dropped: num(r[2]), unrecorded: num(r[3]) }),
  );
  const histograms = grouped(histogramRows, (r) => `${str(r[0])}\u0000${str(r[1])}`);
  const latency = percentiles.map(
    (p): LatencyDistribution => ({
      ...p,
      actor: p.actor ?? '',
      stream: p.stream ?? '',
      histogram: (histograms.get(`${p.actor}\u0000${p.stream}`) ?? []).map(
        (r) => [num(r[2]), num(r[3])] as const,
      ),
    }),
  );
  const perSecond = 1e9 / bucketNs;
  const metrics = [
    ...grouped(measureRows, (r) => `${str(r[0])}\u0000${str(r[1])}\u0000${str(r[7])}`).values(),
  ]
    .slice(0, MAX_METRICS)
    .map((rows) => metricSeries(rows, buckets));
  return {
    process,
    unreadable: {
      blocks: num(unreadableRows[0]?.[0] ?? 0),
      records: num(unreadableRows[0]?.[1] ?? 0),
      errors: unreadableRows.map((r) => str(r[2])),
    },
    untimed,
    countsErrors: countsErrorRows.map((r) => str(r[0])),
    time: { beginNs, endNs, bucketNs, buckets, spanned },
    offAxis: num(span?.[2] ?? 0),
    topology: {
      actors: [...new Set([...produced, ...consumed].map((e) => e.actor))].sort(),
      streams: [...new Set([...produced, ...consumed].map((e) => e.stream))].sort(),
      produced,
      consumed,
      persister,
    },
    latency,
    throughput: series(throughputRows, buckets, (n) => n * perSecond),
    gaps: series(gapRows, buckets),
    slowest,
    instrumentation: {
      levels: levelRows.map((r) => ({ level: str(r[0]), count: num(r[1]) })),
      topLogs: logRows.map((r) => ({
        level: str(r[0]),
        target: str(r[1]),
        message: str(r[2]),
        count: num(r[3]),
      })),
      metrics,
      spans: spanRows.map(
        (r): SpanTotals => ({
          name: str(r[0]),
          count: num(r[1]),
          totalNs: num(r[2]),
          maxNs: num(r[3]),
          p99Ns: num(r[4]),
        }),
      ),
    },
  };
}

/** Rows `[name, unit, bucket, mean, min, max, count, source]` of one metric as its plot. */
function metricSeries(rows: readonly Row[], buckets: number): MetricSeries {
  const mean = new Array<number>(buckets).fill(Number.NaN);
  const min = new Array<number>(buckets).fill(Number.NaN);
  const max = new Array<number>(buckets).fill(Number.NaN);
  let count = 0;
  for (const r of rows) {
    const b = num(r[2]);
    if (b < 0 || b >= buckets) continue;
    mean[b] = num(r[3]);
    min[b] = num(r[4]);
    max[b] = num(r[5]);
    count += num(r[6]);
  }
  return {
    name: str(rows[0]?.[0]),
    unit: str(rows[0]?.[1]),
    source: str(rows[0]?.[7]),
    count,
    mean,
    min,
    max,
  };
}

/** Divergences a report lists at most: the first, in the order the diff found them. */
const REPORTED_DIVERGENCES = 10_000;

/** The process row, and whether the process it replays (if any) is in the lake too. */
async function readProcess(
  analytics: AnalyticsQuestions,
  processId: string,
  options: ReportLimits,
  divergences: number,
): Promise<ReportProcess> {
  const { rows } = await analytics.query(
    `SELECT process_id, exe, start_time::VARCHAR, properties::VARCHAR FROM processes WHERE process_id = ${quoteLiteral(processId)}`,
    { maxRows: 1, ...options },
  );
  const row = rows[0];
  let properties: Record<string, string> = {};
  try {
    properties = JSON.parse(str(row?.[3])) as Record<string, string>;
  } catch {}
  const replayOf = properties['dorsal.replay_of'] ?? properties.replay_of;
  let originalInLake = false;
  if (replayOf !== undefined) {
    const found = await analytics.query(
      `SELECT count(*)::DOUBLE FROM processes WHERE process_id = ${quoteLiteral(replayOf)}`,
      { maxRows: 1, ...options },
    );
    originalInLake = num(found.rows[0]?.[0]) > 0;
  }
  const diff =
    replayOf === undefined ? undefined : await readDiff(analytics, processId, options, divergences);
  return {
    processId: row === undefined ? processId : str(row[0]),
    exe: str(row?.[1]),
    startTime: str(row?.[2]),
    properties,
    ...(replayOf === undefined ? {} : { replayOf }),
    originalInLake,
    ...(diff === undefined ? {} : { diff }),
  };
}

/** A replay's diff, if `dorsal replay --diff` kept one (the newest, should there be several). */
async function readDiff(
  analytics: AnalyticsQuestions,
  processId: string,
  options: ReportLimits,
  listed: number,
): Promise<ReportDiff | undefined> {
  const scope = { process: processId, maxRows: 10_000, ...options };
  const [diffs, streams, divergences] = await Promise.all([
    analytics.query('SELECT diverged::DOUBLE, divergences_limit::DOUBLE, error FROM replay_diffs', scope),
    allRows(
      analytics,
      scope,
      'SELECT stream, matched::DOUBLE, differing::DOUBLE, only_recorded::DOUBLE, only_replayed::DOUBLE FROM replay_diff_streams ORDER BY position, stream, matched, differing, only_recorded, only_replayed',
    ),
    // The first ones, as the diff kept them (it says how many diverged): a prefix, page after page
    // through a server that answers fewer rows at once.
    allRows(
      analytics,
      scope,
      'SELECT kind, stream, place, recorded_seq::DOUBLE, replayed_seq::DOUBLE, fields::VARCHAR FROM replay_divergences ORDER BY n, kind, stream, place, recorded_seq, replayed_seq',
      listed,
      Math.min(listed, 10_000),
    ),
  ]);
  const row = uncut(diffs)[0];
  if (row === undefined) return undefined;
  const seq = (v: unknown) => (v === null || v === undefined ? null : num(v));
  return {
    diverged: num(row[0]),
    limit: num(row[1]),
    ...(row[2] === null || row[2] === undefined ? {} : { error: str(row[2]) }),
    streams: streams.map((r) => ({
      stream: str(r[0]),
      matched: num(r[1]),
      differing: num(r[2]),
      onlyRecorded: num(r[3]),
      onlyReplayed: num(r[4]),
    })),
    divergences: divergences.map((r) => {
      let fields: ReportDiff['divergences'][number]['fields'] = [];
      try {
        fields = JSON.parse(str(r[5])) as typeof fields;
      } catch {}
      return {
        kind: str(r[0]),
        stream: str(r[1]),
        place: str(r[2]),
        recordedSeq: seq(r[3]),
        replayedSeq: seq(r[4]),
        fields,
      };
    }),
  };
}

/** The smallest of 1, 2, 5 × 10^k ns (at least 1 ms) that is at least `ns`. */
export function niceBucket(ns: number): number {
  let bucket = 1_000_000;
  for (;;) {
    for (const step of [1, 2, 5]) if (bucket * step >= ns) return bucket * step;
    bucket *= 10;
  }
}

/** Rows `[key, bucket, value]` as one dense series per key, sorted by key. */
function series(rows: readonly Row[], buckets: number, scale = (n: number) => n): TimeSeries[] {
  const byName = new Map<string, number[]>();
  for (const r of rows) {
    const name = str(r[0]);
    const b = num(r[1]);
    if (b < 0 || b >= buckets) continue;
    let values = byName.get(name);
    if (values === undefined) {
      values = new Array<number>(buckets).fill(0);
      byName.set(name, values);
    }
    values[b] = scale(num(r[2]));
  }
  return [...byName.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, values]) => ({ name, values }));
}

function grouped(rows: readonly Row[], key: (row: Row) => string): Map<string, Row[]> {
  const groups = new Map<string, Row[]>();
  for (const row of rows) {
    const k = key(row);
    const group = groups.get(k) ?? [];
    group.push(row);
    groups.set(k, group);
  }
  return groups;
}

function num(value: unknown): number {
  return value === null || value === undefined ? Number.NaN : Number(value);
}

function str(value: unknown): string {
  return value === null || value === undefined ? '' : String(value);
}
