import { DorsalError } from '../../errors.js';
import { untilAborted, withinDeadline } from '../analytics/deadline.js';
import { QueryRefusedError } from '../analytics/guard.js';
import { inSlot, notStarted, type QuerySlots } from '../analytics/query-slots.js';
import { type AnalyticsQuestions, TIMED, timed } from '../analytics/questions.js';
import type { ReportLimits } from './report-data.js';

/** One second of a running process, as the live view shows it. */
export interface LiveSample {
  /** The second shown (epoch seconds), or null while the lake has no timing record of the process. */
  readonly second: number | null;
  /** The same second, RFC 3339 (UTC). */
  readonly time: string | null;
  /**
   * True once the process has ended (the lake holds the counts it keeps at its stop): its
   * numbers change no more, and it is sampled no more.
   */
  readonly ended: boolean;
  /** Messages published in that second, per stream. */
  readonly rates: readonly { readonly stream: string; readonly perSecond: number }[];
  /** Messages handled in that second, per actor × stream, with their latency since the origin. */
  readonly latency: readonly {
    readonly actor: string;
    readonly stream: string;
    readonly count: number;
    readonly p50: number;
    readonly p99: number;
    readonly max: number;
  }[];
}

/**
 * How far before the start of its newest timing block a sample reads a process's records, in ns:
 * the second shown ends in or after that block (whose records end after its start), and starts at
 * most 2 s before its newest record; the rest is margin.
 */
const SAMPLE_REACH_NS = 3e9;

/**
 * The last whole second of a process in the lake: the second before the one holding its newest
 * handler end. Blocks reach the lake about once a second per stream (`PersistOptions.blockMs`),
 * so the newest second is usually still partial; the one before it has its blocks. Of an ended
 * process with no handler end in the second before its newest, the newest (the one before stays
 * empty).
 *
 * It reads the last few seconds of records only: the lake's blocks (its metadata, not their
 * records) say where the newest timings are, and every scan of records is bounded below by a
 * constant on `end_t` or `publish_t`, which the Parquet statistics let DuckDB skip the rest by. A
 * sample over all of a long run's records took seconds, each second, holding a query slot.
 */
export async function sampleLive(
  analytics: AnalyticsQuestions,
  processId: string,
  limits: ReportLimits = {},
): Promise<LiveSample> {
  const scope = { process: processId, ...limits };
  const [head] = (
    await analytics.query(
      `SELECT p.start_ns::VARCHAR,
        (SELECT max(b.begin_ticks) FROM blocks b JOIN streams s ON s.stream_id = b.stream_id
          WHERE b.process_id = p.process_id AND list_contains(s.tags::VARCHAR[], 'timings'))::VARCHAR,
        (SELECT max(b.end_ticks) FROM blocks b JOIN streams s ON s.stream_id = b.stream_id
          WHERE b.process_id = p.process_id AND list_contains(s.tags::VARCHAR[], 'timings'))::VARCHAR,
        (SELECT count(*) FROM run_counts c WHERE c.process_id = p.process_id)::DOUBLE
       FROM processes p`,
      { ...scope, maxRows: 1 },
    )
  ).rows;
  const ended = Number(head?.[3] ?? 0) > 0;
  const none: LiveSample = { second: null, time: null, ended, rates: [], latency: [] };
  if (head?.[0] === null || head?.[0] === undefined || head[1] === null || head[1] === undefined) return none;
  const startNs = BigInt(String(head[0]));
  // Process-clock ns (records' times, and blocks' ticks, are since the process's start; a dorsal
  // process's clock ticks in ns) from which records are read.
  // Up to where its newest timing block ends, and no further than now (a day past it: the
  // process's start is its own clock's, which may be ahead of this server's): a damaged time a
  // century ahead, in a record or in its block's ticks, would make the second one with nothing in
  // it, for good.
  const now = Number(BigInt(Date.now()) * 1_000_000n - startNs) + 86_400e9;
  const from = Math.min(Number(head[1]), now) - SAMPLE_REACH_NS;
  const to = Math.min(Number(head[2] ?? head[1]) + 1e9, now);
  // Seconds and their bounds in whole ns: a start_ns as a DOUBLE is 256 ns coarse, and moved
  // records near a second's edge into the next.
  const start = `${startNs}::BIGINT`;
  // The second before the newest one; of an ended process with no record in that second (a run
  // shorter than one, or one that paused before its end), the newest: the one before has nothing
  // in it, for good.
  const before = `w.newest * 1000000000 - ${start}`;
  const emptyBefore = `NOT EXISTS (SELECT 1 FROM timing_records t WHERE t.end_t >= ${from} AND t.end_t >= ${before} - 1000000000 AND t.end_t < ${before} AND ${timed('t.end_t')})`;
  const sec = ended ? `CASE WHEN ${emptyBefore} THEN w.newest ELSE w.newest - 1 END` : 'w.newest - 1';
  const { rows } = await analytics.query(
    `WITH s AS (
       SELECT ${sec} AS sec FROM (SELECT (${start} + max(end_t)::BIGINT) // 1000000000 AS newest FROM timing_records
       WHERE end_t >= ${from} AND end_t <= ${to} AND ${timed('end_t')}) w),
     b AS (SELECT sec, sec * 1000000000 - ${start} AS lo, (sec + 1) * 1000000000 - ${start} AS hi FROM s)
     SELECT 'rate' AS kind, m.stream, NULL AS actor, count(*)::DOUBLE AS n, NULL::DOUBLE AS p50, NULL::DOUBLE AS p99, NULL::DOUBLE AS mx, any_value(b.sec)::DOUBLE AS at
       FROM messages m, b WHERE m.publish_t >= ${from} AND m.publish_t >= b.lo AND m.publish_t < b.hi GROUP BY m.stream
     UNION ALL
     SELECT 'latency', t.stream, t.actor, count(*)::DOUBLE, quantile_disc(t.latency_ns, 0.5), quantile_disc(t.latency_ns, 0.99), max(t.latency_ns), any_value(b.sec)::DOUBLE
       FROM timings t, b WHERE t.end_t >= ${from} AND t.end_t >= b.lo AND t.end_t < b.hi AND ${TIMED} GROUP BY t.actor, t.stream
     UNION ALL
     SELECT 'second', NULL, NULL, NULL, NULL, NULL, NULL, sec::DOUBLE FROM b`,
    { ...scope, maxRows: 10_000 },
  );
  const at = rows.find((r) => r[0] === 'second')?.[7];
  const secondOf = at === null || at === undefined ? null : Number(at);
  return {
    second: secondOf,
    time: secondOf === null ? null : new Date(secondOf * 1000).toISOString().replace('.000Z', 'Z'),
    ended,
    rates: rows
      .filter((r) => r[0] === 'rate')
      .map((r) => ({ stream: String(r[1]), perSecond: Number(r[3]) }))
      .sort((a, b) => a.stream.localeCompare(b.stream)),
    latency: rows
      .filter((r) => r[0] === 'latency')
      .map((r) => ({
        actor: String(r[2]),
        stream: String(r[1]),
        count: Number(r[3]),
        p50: Number(r[4]),
        p99: Number(r[5]),
        max: Number(r[6]),
      }))
      .sort((a, b) => a.actor.localeCompare(b.actor) || a.stream.localeCompare(b.stream)),
  };
}

/** Options of `LiveSamples`. */
export interface LiveSamplesOptions {
  /** Time between two samples of a process, in ms (default 1000). */
  readonly intervalMs?: number;
  /** Query slots a sample takes one of while it is asked (default: none taken). */
  readonly slots?: QuerySlots;
  /** How long a sample's SQL may run, in ms (default: the analytics'). */
  readonly timeoutMs?: number;
  /** How long a sample may take from when its slot was taken, reading the lake included, in ms (default: no limit). */
  readonly sampleTimeoutMs?: number;
}

/**
 * Samples shared by every watcher of a process: one query per process and interval, whatever
 * the number of pages open on it.
 *
 * They come from the analytics' SQL over the lake, not from the blocks this server's ingestion
 * receives: the numbers are the report's (the same views, the same latency), any analytics server
 * in front of the lake can serve them (a system may persist through another ingestion server),
 * and each block is decoded once, by the analytics' look at the lake, instead of once more on
 * its way in. The price is the lake's delay: a second shows once its blocks are in.
 */
export class LiveSamples {
  private readonly analytics: () => Promise<AnalyticsQuestions>;
  private readonly intervalMs: number;
  private readonly slots: QuerySlots | undefined;
  private readonly timeoutMs: number | undefined;
  private readonly sampleTimeoutMs: number | undefined;
  /** The last sample of each process, and what stops it while it is being asked. */
  private readonly latest = new Map<string, Sampled>();
  /** Watchers per process: a sample still being asked is stopped when its last one leaves. */
  private readonly watchers = new Map<string, number>();
  private closed = false;

  constructor(analytics: () => Promise<AnalyticsQuestions>, options: LiveSamplesOptions = {}) {
    this.analytics = analytics;
    this.intervalMs = options.intervalMs ?? 1000;
    this.slots = options.slots;
    this.timeoutMs = options.timeoutMs;
    this.sampleTimeoutMs = options.sampleTimeoutMs;
  }

  /** The process's sample, taken now unless one was taken less than an interval ago. */
  sample(processId: string): Promise<LiveSample> {
    if (this.closed) return Promise.reject(notStarted());
    const now = performance.now();
    const known = this.latest.get(processId);
    // Reused while it runs (one at a time per process, however slow), if taken less than an
    // interval ago, or for ever once the process has ended (its numbers change no more); never
    // once stopped (its last watcher left): it is failing.
    if (
      known !== undefined &&
      !known.stop.signal.aborted &&
      (!known.settled || known.ended || now - known.at < this.intervalMs * 0.9)
    ) {
      return known.sample;
    }
    const stop = new AbortController();
    const ask = async (signal: AbortSignal) =>
      sampleLive(await untilAborted(this.analytics(), signal), processId, {
        ...(this.timeoutMs === undefined ? {} : { timeoutMs: this.timeoutMs }),
        signal,
      });
    const bounded = () =>
      this.sampleTimeoutMs === undefined
        ? ask(stop.signal)
        : withinDeadline(this.sampleTimeoutMs, stop.signal, ask);
    const sample = this.slots === undefined ? bounded() : inSlot(this.slots, stop.signal, bounded);
    const sampled: Sampled = { at: now, sample, stop, settled: false, ended: false };
    // Newest last: the first entry is the least recently sampled process.
    this.latest.delete(processId);
    this.latest.set(processId, sampled);
    sample.then(
      (taken) => {
        sampled.settled = true;
        sampled.ended = taken.ended;
      },
      () => {
        sampled.settled = true;
        if (this.latest.get(processId) === sampled) this.latest.delete(processId);
      },
    );
    if (this.latest.size > 64) {
      const [oldest, evicted] = this.latest.entries().next().value as [string, Sampled];
      this.latest.delete(oldest);
      // Watched, it runs on for its watchers; not, nothing would stop it.
      if (!this.watchers.has(oldest)) evicted.stop.abort();
    }
    return sample;
  }

  /**
   * Server-sent events for one watcher: an `event: sample` with the sample as JSON at once, then
   * every interval, until `signal` aborts, or the process has ended: its last sample is then
   * followed by `event: ended`, and the stream ends (a page closes its `EventSource` on it). A
   * failed sample is sent as `event: problem` and the stream goes on.
   */
  async *events(processId: string, signal: AbortSignal): AsyncGenerator<string> {
    this.watchers.set(processId, (this.watchers.get(processId) ?? 0) + 1);
    try {
      yield `retry: ${this.intervalMs}\n\n`;
      while (!signal.aborted) {
        try {
          // A watcher that leaves stops waiting at once (and, the last one, stops the sample).
          const sample = await untilAborted(this.sample(processId), signal);
          yield `event: sample\ndata: ${JSON.stringify(sample)}\n\n`;
          if (sample.ended) {
            yield `event: ended\ndata: ${JSON.stringify({ second: sample.second, time: sample.time })}\n\n`;
            return;
          }
        } catch (error) {
          if (signal.aborted) return;
          // What dorsal says of it (timed out, not ready, busy); a refused query's text, or any
          // other error's, said in general: it may be DuckDB's, quoting the server's files.
          const message =
            error instanceof QueryRefusedError
              ? "the sample's query was refused (its reason may name the server's files: not sent)"
              : error instanceof DorsalError
                ? error.message
                : 'internal error while sampling the process';
          yield `event: problem\ndata: ${JSON.stringify({ message: message.slice(0, 500) })}\n\n`;
        }
        await sleep(this.intervalMs, signal);
      }
    } finally {
      const watching = (this.watchers.get(processId) ?? 1) - 1;
      if (watching > 0) this.watchers.set(processId, watching);
      else {
        this.watchers.delete(processId);
        const running = this.latest.get(processId);
        if (running !== undefined && !running.settled) {
          this.latest.delete(processId);
          running.stop.abort();
        }
      }
    }
  }

  /** Stops the samples being asked; later ones are refused (the server stops). */
  close(): void {
    this.closed = true;
    for (const sampled of this.latest.values()) sampled.stop.abort();
    this.latest.clear();
  }
}

/** A sample taken (or being taken) at `at`, and what stops it. */
interface Sampled {
  readonly at: number;
  readonly sample: Promise<LiveSample>;
  readonly stop: AbortController;
  settled: boolean;
  /** The sample says the process has ended: it is kept, not taken again. */
  ended: boolean;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
