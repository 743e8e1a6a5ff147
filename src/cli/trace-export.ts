import { basename } from 'node:path';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import {
  counterSample,
  flowArrow,
  handlerSlice,
  logInstant,
  type MetadataEvent,
  processName,
  spanEvents,
  type Track,
  trackNames,
} from './chrome-trace.js';
import type { ProcessSummary } from './source.js';
import { TraceFile } from './trace-file.js';
import {
  countEvents,
  type EventCounts,
  type EventKind,
  handlerCalls,
  isKept,
  type LossRow,
  logEntries,
  losses,
  measures,
  spans,
  type TraceScope,
  trackSources,
} from './trace-queries.js';
import type { TraceWindow } from './trace-window.js';

/** What to export: the process, its window, and how many events at most. */
export interface TraceRequest {
  readonly analytics: AnalyticsQuestions;
  readonly process: ProcessSummary;
  readonly window: TraceWindow;
  /** Handler calls, spans, log entries and counter samples written at most (flow arrows come on top). */
  readonly limit: number;
  readonly output: string;
  /** Rows asked for per query (a server may answer fewer: the rest comes in the next page). */
  readonly pageRows?: number;
}

/** What an export wrote, and what it left out. */
export interface TraceSummary {
  readonly file: string;
  readonly process: string;
  readonly window: TraceWindow;
  /** Events written, by kind (flow arrows: pairs of events). */
  readonly written: Readonly<Record<EventKind | 'flow_arrows', number>>;
  /** Events of the window left out to keep to the limit. */
  readonly leftOut: number;
  /** From when on events were left out (ns since the process's start), if any were. */
  readonly cutoffNs: number | null;
  /** Events of the process left out because their time is no number (a damaged recording). */
  readonly untimed: number;
  readonly limit: number;
  /** Streams of the process that lost messages or events: what the trace cannot show. */
  readonly losses: readonly LossRow[];
}

/** A process as a viewer names it: the system module it ran (or its executable), its id, what it replays. */
function processLabel(process: ProcessSummary): string {
  const system = process.properties['dorsal.system'];
  const what = system === undefined ? basename(process.exe) : system.split('/').slice(-2).join('/');
  const replayOf = process.properties['dorsal.replay_of'];
  return `${what} ${process.processId}${replayOf === undefined ? '' : ` (replay of ${replayOf})`}`;
}

/** The one process of a trace (the format's `pid`). */
const PID = 1;

/** Tracks by actor (or by thread, for a thread that is no actor's), made as events name them. */
class Tracks {
  private readonly byKey = new Map<string, Track>();
  private readonly pending: MetadataEvent[] = [];

  track(actor: string | null, thread: string | null): Track {
    const key = actor !== null ? `actor\u0000${actor}` : `thread\u0000${thread ?? ''}`;
    let track = this.byKey.get(key);
    if (track === undefined) {
      track = { pid: PID, tid: this.byKey.size + 1 };
      this.byKey.set(key, track);
      this.pending.push(...trackNames(track, actor ?? thread ?? '?', track.tid));
    }
    return track;
  }

  /** The name events of the tracks made since the last call. */
  takeNames(): MetadataEvent[] {
    return this.pending.splice(0);
  }
}

/**
 * Writes the Chrome trace of a process's window to `output`: a slice per handler call on its
 * actor's track, with a flow arrow from the call that produced its message; spans as slices on
 * their thread's track; log entries as instants; measures as counters. Keeps to `limit` events by
 * leaving out the latest ones, and says how many.
 *
 * @example
 * const summary = await exportTrace({ analytics, process, window: { beginNs: 2e9 }, limit: 1e6, output: 'trace.json' });
 * summary.written.handler_calls; // slices written
 */
export async function exportTrace(request: TraceRequest): Promise<TraceSummary> {
  const { analytics, process, window, limit } = request;
  const counts: EventCounts = await countEvents(analytics, process.processId, window, limit);
  const scope: TraceScope = {
    analytics,
    process: process.processId,
    window,
    cutoffNs: counts.cutoffNs,
    pageRows: request.pageRows ?? 50_000,
  };
  const written = { handler_calls: 0, spans: 0, log_entries: 0, counter_samples: 0, flow_arrows: 0 };
  const file = await TraceFile.create(request.output);
  try {
    const tracks = new Tracks();
    await file.add(processName(PID, processLabel(process)));
    for (const source of await trackSources(scope)) tracks.track(source.actor, source.thread);
    await file.add(...tracks.takeNames());

    for await (const call of handlerCalls(scope)) {
      const track = tracks.track(call.actor, null);
      await file.add(handlerSlice(call, track));
      written.handler_calls++;
      const producer = call.producer;
      if (producer !== null && isKept(producer.startT, scope)) {
        written.flow_arrows++;
        await file.add(
          ...flowArrow(
            written.flow_arrows,
            call.stream,
            { track: tracks.track(producer.actor, null), startT: producer.startT, endT: producer.endT },
            { track, startT: call.startT, endT: call.endT },
          ),
        );
      }
    }
    for await (const span of spans(scope)) {
      await file.add(...spanEvents(span, tracks.track(span.actor, span.thread), written.spans + 1));
      written.spans++;
    }
    for await (const entry of logEntries(scope)) {
      await file.add(logInstant(entry, tracks.track(entry.actor, entry.thread)));
      written.log_entries++;
    }
    for await (const measure of measures(scope)) {
      const owner = measure.actor ?? measure.thread;
      await file.add(counterSample(measure, tracks.track(measure.actor, measure.thread), owner));
      written.counter_samples++;
    }
    await file.add(...tracks.takeNames());

    const inWindow = Object.values(counts.inWindow).reduce((a, b) => a + b, 0);
    const kept = Object.values(counts.kept).reduce((a, b) => a + b, 0);
    const summary: TraceSummary = {
      file: request.output,
      process: process.processId,
      window,
      written,
      leftOut: inWindow - kept,
      cutoffNs: counts.cutoffNs,
      untimed: counts.untimed,
      limit,
      losses: await losses(analytics, process.processId),
    };
    await file.finish({
      'dorsal-process': process.processId,
      'dorsal-exe': process.exe,
      'dorsal-process-start': process.startTime,
      'dorsal-clock': 'ts: microseconds since the process start',
      'dorsal-window-ns': window,
      'dorsal-written': written,
      'dorsal-left-out': summary.leftOut,
      'dorsal-losses': summary.losses,
      'dorsal-untimed': counts.untimed,
      ...(counts.cutoffNs === null ? {} : { 'dorsal-left-out-from-ns': counts.cutoffNs }),
    });
    return summary;
  } catch (error) {
    await file.abandon();
    throw error;
  }
}
