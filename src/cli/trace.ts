import { Command } from 'commander';
import { count, counted, dim, duration, printable, printJson } from './format.js';
import { integer } from './options.js';
import {
  CliError,
  refuseOutputInLake,
  resolveProcess,
  type SourceOptions,
  sayUnreadableCounts,
  withSource,
  withSourceOptions,
} from './source.js';
import { exportTrace, type TraceSummary } from './trace-export.js';
import { toStdout } from './trace-file.js';
import { processStartNs } from './trace-queries.js';
import { sinceStart, type TraceTime, type TraceWindow, traceTime } from './trace-window.js';

interface TraceOptions extends SourceOptions {
  readonly output: string;
  readonly begin?: TraceTime;
  readonly end?: TraceTime;
  readonly limit: number;
}

const DEFAULT_LIMIT = 1_000_000;

/** `+1.20 s`: a time since the process's start; `2.00 s before its start` (a calendar --begin/--end may be). */
function offset(ns: number): string {
  return ns < 0 ? `${duration(-ns)} before its start` : `+${duration(ns)}`;
}

function describe(summary: TraceSummary): string {
  const w = summary.written;
  const { beginNs, endNs } = summary.window;
  const window =
    beginNs === undefined && endNs === undefined
      ? 'the whole process'
      : `${beginNs === undefined ? 'its start' : offset(beginNs)} to ${endNs === undefined ? 'its end' : offset(endNs)}`;
  // `lost` counts the poisoned already; what the lake holds of neither is missing too.
  const missing = summary.losses.filter((l) => l.countedBy === 'persister');
  const lost = missing.reduce((n, l) => n + l.lost + l.dropped + l.unrecorded, 0);
  const lapped = summary.losses.filter((l) => l.countedBy !== 'persister');
  return [
    `wrote ${toStdout(summary.file) ? 'the trace to stdout' : summary.file}: ${counted(w.handler_calls, 'handler call', 'handler calls')}, ${counted(w.flow_arrows, 'flow arrow', 'flow arrows')}, ${counted(w.spans, 'span', 'spans')}, ${counted(w.log_entries, 'log entry', 'log entries')}, ${counted(w.counter_samples, 'counter sample', 'counter samples')}`,
    dim(`process ${summary.process}, ${window}; open it in https://ui.perfetto.dev or chrome://tracing`),
    // An empty trace is most often a window that misses the run (a time of another day, say).
    ...(w.handler_calls + w.spans + w.log_entries + w.counter_samples === 0 && window !== 'the whole process'
      ? ['the window holds none of its events: see `dorsal processes` for when it ran']
      : []),
    ...(lost === 0
      ? []
      : [
          `the recording lost ${counted(lost, 'message or event', 'messages or events')} (${missing.map((l) => printable(l.stream)).join(', ')}): the trace cannot show them`,
        ]),
    ...lapped.map(
      (l) =>
        `${printable(l.consumer)} lost ${counted(l.lost, l.countedBy === 'observer' ? 'timing record' : 'message', l.countedBy === 'observer' ? 'timing records' : 'messages')} of ${printable(l.stream)} (lapped${l.poisoned > 0 ? `, ${count(l.poisoned)} poisoned` : ''}): it handled none of them`,
    ),
  ].join('\n');
}

/** `dorsal trace`: a recorded process as a Chrome trace, for Perfetto or chrome://tracing. */
export function traceCommand(): Command {
  return withSourceOptions(
    new Command('trace')
      .description(
        'write a run as a Chrome trace for Perfetto or chrome://tracing: handler calls, message flows, spans, logs, metrics',
      )
      .requiredOption('-o, --output <file>', 'the trace file to write (JSON); - writes it to stdout')
      .option('--begin <time>', 'from this RFC 3339 time, or offset from the process start (+2s)', traceTime)
      .option(
        '--end <time>',
        'until this RFC 3339 time, or offset from the process start (+2500ms)',
        traceTime,
      )
      .option(
        '--limit <n>',
        'handler calls, spans, log entries and counter samples written at most; the latest are left out',
        integer(1, 1_000_000_000),
        DEFAULT_LIMIT,
      )
      .addHelpText(
        'after',
        '\nExamples:\n  $ dorsal trace -o trace.json\n  $ dorsal trace --begin +2s --end +2500ms -o trace.json   # then open it in https://ui.perfetto.dev\n  $ dorsal trace -o - | gzip > trace.json.gz               # the summary goes to stderr',
      ),
  ).action(async (options: TraceOptions) => {
    if (!toStdout(options.output)) refuseOutputInLake(options, options.output);
    await withSource(options, async (source) => {
      const recorded = await resolveProcess(source, options.process);
      // Counts that did not read would leave the actors' loss lines out silently: said first.
      await sayUnreadableCounts(source.analytics, recorded.processId, options.strict === true);
      const startNs = await processStartNs(source.analytics, recorded.processId);
      const window: TraceWindow = {
        ...(options.begin === undefined ? {} : { beginNs: sinceStart(options.begin, startNs) }),
        ...(options.end === undefined ? {} : { endNs: sinceStart(options.end, startNs) }),
      };
      if (window.beginNs !== undefined && window.endNs !== undefined && window.endNs <= window.beginNs) {
        throw new CliError(`--end ${options.end?.text} is not after --begin ${options.begin?.text}`);
      }
      const summary = await exportTrace({
        analytics: source.analytics,
        process: recorded,
        window,
        limit: options.limit,
        output: options.output,
      });
      if (summary.leftOut > 0) {
        console.error(
          `dorsal: left out ${count(summary.leftOut)} events from ${offset(summary.cutoffNs ?? 0)} on, to keep to --limit ${count(summary.limit)}: narrow the window with --begin/--end, or raise --limit`,
        );
      }
      if (summary.untimed > 0) {
        console.error(
          `dorsal: left out ${count(summary.untimed)} events whose time is no time (NaN, infinite, or more than a century from the start): the recording is damaged there`,
        );
      }
      // With the trace on stdout, what is said of it goes to stderr.
      const toStderr = toStdout(options.output);
      if (options.json) return printJson(summary, toStderr ? process.stderr : process.stdout);
      (toStderr ? console.error : console.log)(describe(summary));
    });
  });
}
