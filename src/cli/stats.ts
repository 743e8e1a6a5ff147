import { Command, Option } from 'commander';
import { allRows } from '../telemetry/analytics/paged.js';
import { type AnalyticsQuestions, type PercentileRow, TIMED } from '../telemetry/analytics/questions.js';
import { count, counted, dim, duration, printable, printJson, sparkline, table } from './format.js';
import {
  resolveProcess,
  type SourceOptions,
  sayUnreadableCounts,
  withSource,
  withSourceOptions,
} from './source.js';
import { type LossRow, losses } from './trace-queries.js';

interface StatsOptions extends SourceOptions {
  readonly by?: 'actor' | 'stream';
}

/** Histogram buckets: half a decade each, from 10 ns (bucket 2) to 10 s (bucket 20). */
const FIRST_BUCKET = 2;
const LAST_BUCKET = 20;

/** Per group (the `by` columns joined by `/`), the count of latencies in each half-decade bucket. */
async function histograms(
  analytics: AnalyticsQuestions,
  process: string,
  keys: readonly string[],
): Promise<Map<string, number[]>> {
  const group = keys.length > 0 ? `${keys.join(" || '/' || ")}` : "''";
  // Whole, page after page, however few rows a server answers at once.
  const rows = await allRows(
    analytics,
    { process },
    `SELECT ${group} AS g, least(${LAST_BUCKET}, greatest(${FIRST_BUCKET}, floor(log10(greatest(latency_ns, 1)) * 2)))::INTEGER AS b, count(*)::DOUBLE
     FROM timings WHERE ${TIMED} GROUP BY ALL ORDER BY g, b`,
    Number.POSITIVE_INFINITY,
    100_000,
  );
  const out = new Map<string, number[]>();
  for (const [g, b, n] of rows) {
    const counts = out.get(String(g)) ?? new Array<number>(LAST_BUCKET - FIRST_BUCKET + 1).fill(0);
    counts[Number(b) - FIRST_BUCKET] = Number(n);
    out.set(String(g), counts);
  }
  return out;
}

/** The percentile table of a process, with a histogram of latency per row (shared log axis). */
export async function statsTable(
  analytics: AnalyticsQuestions,
  process: string,
  by: readonly ('actor' | 'stream')[],
): Promise<{ rows: PercentileRow[]; text: string }> {
  const rows = await analytics.percentiles({ process, by });
  const bars = await histograms(analytics, process, by);
  const used = [...bars.values()].map((c) => [
    c.findIndex((n) => n > 0),
    c.length - 1 - [...c].reverse().findIndex((n) => n > 0),
  ]);
  const from = Math.min(...used.map(([a]) => a!).filter((a) => a >= 0), LAST_BUCKET - FIRST_BUCKET);
  const to = Math.max(...used.map(([, b]) => b!), 0);
  const axis = (bucket: number) => duration(10 ** ((bucket + FIRST_BUCKET) / 2));
  const text = table(
    [
      ...by,
      'count',
      'p50',
      'p90',
      'p99',
      'p99.9',
      'max',
      'handler p50',
      'handler p99',
      'handler max',
      `latency ${axis(from)} … ${axis(to + 1)}`,
    ],
    rows.map((r) => [
      ...by.map((k) => r[k] ?? ''),
      count(r.count),
      duration(r.latency.p50),
      duration(r.latency.p90),
      duration(r.latency.p99),
      duration(r.latency.p999),
      duration(r.latency.max),
      duration(r.processing.p50),
      duration(r.processing.p99),
      duration(r.processing.max),
      sparkline((bars.get(by.map((k) => r[k] ?? '').join('/')) ?? []).slice(from, to + 1)),
    ]),
  );
  return { rows, text };
}

/** What `stats` and `report` say on stderr of timing records they left out (`untimedTimings`). */
export function untimedLine(untimed: number): string {
  return `dorsal: left out ${counted(untimed, 'timing record', 'timing records')} whose time is no time (NaN, infinite, or more than a century from the start): the recording is damaged there`;
}

/** One consumer's losses of one stream, as a line under the table. */
function lossLine(l: LossRow): string {
  const what = [
    l.lost > 0 ? `${count(l.lost)} lost${l.poisoned > 0 ? ` (${count(l.poisoned)} poisoned)` : ''}` : '',
    l.dropped > 0 ? `${count(l.dropped)} dropped at the source` : '',
    l.unrecorded > 0
      ? `${count(l.unrecorded)} neither in the lake nor counted lost (lost on their way with their count, or deleted by retention)`
      : '',
  ].filter((part) => part !== '');
  const who = l.countedBy === 'persister' ? 'the persister (missing from the lake)' : printable(l.consumer);
  return `${printable(l.stream)}: ${what.join(', ')} by ${who}`;
}

/** `dorsal stats`: latency and processing-time percentiles per actor × stream, and what was lost. */
export function statsCommand(): Command {
  return withSourceOptions(
    new Command('stats')
      .description(
        'latency (since the origin) and handler time percentiles per actor × stream, with a histogram',
      )
      .addOption(new Option('--by <what>', 'group by actor or by stream only').choices(['actor', 'stream']))
      .addHelpText('after', '\nExample:\n  $ dorsal stats --by actor'),
  ).action(async (options: StatsOptions) => {
    await withSource(options, async (source) => {
      const process = await resolveProcess(source, options.process);
      // Counts that did not read would leave the loss lines out silently: said first.
      await sayUnreadableCounts(source.analytics, process.processId, options.strict === true);
      const by = options.by === undefined ? (['actor', 'stream'] as const) : ([options.by] as const);
      const { rows, text } = await statsTable(source.analytics, process.processId, by);
      // A consumer that lost messages handled fewer than were published: said beside the table.
      const lost = await losses(source.analytics, process.processId);
      // Records whose times are no number are in no row: said, not dropped silently.
      const untimed = await source.analytics.untimedTimings({ process: process.processId });
      if (untimed > 0) console.error(untimedLine(untimed));
      if (options.json) return printJson({ process: process.processId, rows, losses: lost, untimed });
      if (rows.length === 0) console.log(dim(`process ${process.processId} recorded no timing`));
      else {
        console.log(
          dim(`process ${process.processId} (${printable(process.exe)}, ${process.startTime.slice(0, 19)})`),
        );
        console.log(text);
      }
      for (const l of lost) console.log(lossLine(l));
    });
  });
}
