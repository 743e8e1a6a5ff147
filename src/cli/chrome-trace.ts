/**
 * Events of the Chrome trace event format (the JSON object form Perfetto and chrome://tracing
 * load), made from what the analytics views hold. Times come in as nanoseconds since the
 * process's start and go out as microseconds (`ts`, `dur`), kept to the nanosecond.
 */

/** Where an event is drawn: a process (`pid`) and a track in it (`tid`). */
export interface Track {
  readonly pid: number;
  readonly tid: number;
}

/** Arguments shown with an event when it is selected. */
export type TraceArgs = Readonly<Record<string, unknown>>;

/** A slice with its duration (`X`). */
export interface CompleteEvent extends Track {
  readonly ph: 'X';
  readonly name: string;
  readonly cat: string;
  readonly ts: number;
  readonly dur: number;
  readonly args: TraceArgs;
}

/** The begin of a slice that has no end (`B`): a span still open when the recording stopped. */
export interface BeginEvent extends Track {
  readonly ph: 'B';
  readonly name: string;
  readonly cat: string;
  readonly ts: number;
  readonly args: TraceArgs;
}

/** An async slice's begin or end (`b`, `e`), paired by `id`: async spans, which may overlap. */
export interface AsyncEvent extends Track {
  readonly ph: 'b' | 'e';
  readonly name: string;
  readonly cat: string;
  readonly id: number;
  readonly ts: number;
  readonly args?: TraceArgs;
}

/** A point in time on a thread's track (`i`, scope `t`). */
export interface InstantEvent extends Track {
  readonly ph: 'i';
  readonly s: 't';
  readonly name: string;
  readonly cat: string;
  readonly ts: number;
  readonly args: TraceArgs;
}

/**
 * A sample of a counter (`C`): one series per key of `args`. A counter belongs to its process,
 * whatever its `tid`: `id` tells apart the counters of one name (`name[id]` in chrome://tracing,
 * `name id: …` in Perfetto).
 */
export interface CounterEvent extends Track {
  readonly ph: 'C';
  readonly name: string;
  readonly id: string;
  readonly cat: string;
  readonly ts: number;
  readonly args: Readonly<Record<string, number>>;
}

/**
 * One end of a flow arrow (`s`: from the slice enclosing `ts` on its track; `f` with
 * `bp: 'e'`: to the slice enclosing `ts`). The two ends share `id`, `cat` and `name`.
 */
export interface FlowEvent extends Track {
  readonly ph: 's' | 'f';
  readonly name: string;
  readonly cat: string;
  readonly id: number;
  readonly ts: number;
  readonly bp?: 'e';
}

/** A name or an order for a process or a track (`M`). */
export interface MetadataEvent extends Track {
  readonly ph: 'M';
  readonly name: 'process_name' | 'thread_name' | 'thread_sort_index';
  readonly args: { readonly name: string } | { readonly sort_index: number };
}

export type TraceEvent =
  | CompleteEvent
  | BeginEvent
  | AsyncEvent
  | InstantEvent
  | CounterEvent
  | FlowEvent
  | MetadataEvent;

/** Microseconds, the format's unit, from nanoseconds: rounded to the nanosecond. */
export function micros(ns: number): number {
  return Math.round(ns) / 1000;
}

/**
 * The microseconds from `fromNs` to `toNs` (at least 0), as `micros` rounds both; 0 when either
 * is no number (a damaged recording): JSON has no NaN, and a viewer drops a slice without `dur`.
 */
export function between(fromNs: number, toNs: number): number {
  const us = (Math.round(toNs) - Math.round(fromNs)) / 1000;
  return Number.isFinite(us) ? Math.max(0, us) : 0;
}

/** A handler call, from the `timings` view, with the message it handled and where that came from. */
export interface HandlerCall {
  readonly actor: string;
  readonly stream: string;
  readonly seq: number;
  /** Nanoseconds since the process's start, as the timing record has them. */
  readonly originT: number;
  readonly publishT: number;
  readonly startT: number;
  readonly endT: number;
  /** The message whose handling produced this one, if any (an ingress message has none). */
  readonly parent: { readonly stream: string; readonly seq: number } | null;
}

/** A handler call as a slice named after its stream, on its actor's track. */
export function handlerSlice(call: HandlerCall, track: Track): CompleteEvent {
  return {
    ph: 'X',
    ...track,
    name: call.stream,
    cat: 'handler',
    ts: micros(call.startT),
    dur: between(call.startT, call.endT),
    args: {
      stream: call.stream,
      seq: call.seq,
      processing_ns: Math.round(call.endT - call.startT),
      queue_wait_ns: Math.round(call.startT - call.publishT),
      latency_ns: Math.round(call.endT - call.originT),
      ...(call.parent === null ? {} : { parent: `${call.parent.stream} #${call.parent.seq}` }),
    },
  };
}

/** A slice's extent in nanoseconds, and the track it is on. */
export interface SliceAt {
  readonly track: Track;
  readonly startT: number;
  readonly endT: number;
}

/**
 * Where a flow's end binds to a slice: half a nanosecond after its start, strictly inside it (a
 * time on its edge could bind to the slice before it, which ends there) and before anything nested
 * in it begins (a viewer binds a flow to the innermost slice at its time: a span of the handler
 * would take the arrow).
 */
export function bindingPoint(slice: SliceAt): number {
  const start = Math.round(slice.startT);
  return (Math.round(slice.endT) - start >= 1 ? start + 0.5 : start) / 1000;
}

/** The arrow from the handler call that produced a message to a handler call of that message. */
export function flowArrow(id: number, name: string, from: SliceAt, to: SliceAt): [FlowEvent, FlowEvent] {
  return [
    { ph: 's', ...from.track, name, cat: 'message', id, ts: bindingPoint(from) },
    { ph: 'f', ...to.track, name, cat: 'message', id, ts: bindingPoint(to), bp: 'e' },
  ];
}

/** A span of a thread, from the `thread_spans` view. */
export interface ThreadSpan {
  readonly name: string;
  readonly spanId: number;
  readonly depth: number;
  readonly beginNs: number;
  /** Null when it never ended (the thread stopped inside it). */
  readonly endNs: number | null;
  readonly async: boolean;
  readonly closedByParent: boolean;
}

/**
 * A span as a slice on its thread's track; an async span (which may overlap others) as an async
 * slice, identified by `asyncId`; a span that never ended as a slice without end.
 */
export function spanEvents(span: ThreadSpan, track: Track, asyncId: number): TraceEvent[] {
  const ts = micros(span.beginNs);
  const args = {
    span_id: span.spanId,
    depth: span.depth,
    ...(span.closedByParent ? { closed_by_parent: true } : {}),
  };
  if (span.async) {
    const begin: AsyncEvent = { ph: 'b', ...track, name: span.name, cat: 'span', id: asyncId, ts, args };
    if (span.endNs === null) return [begin];
    return [begin, { ph: 'e', ...track, name: span.name, cat: 'span', id: asyncId, ts: micros(span.endNs) }];
  }
  if (span.endNs === null) return [{ ph: 'B', ...track, name: span.name, cat: 'span', ts, args }];
  return [
    {
      ph: 'X',
      ...track,
      name: span.name,
      cat: 'span',
      ts,
      dur: between(span.beginNs, span.endNs),
      args,
    },
  ];
}

/** A log entry, from the `log_entries` view. */
export interface LogEntry {
  readonly timeNs: number;
  readonly level: string;
  readonly target: string;
  readonly message: string;
  readonly properties: Readonly<Record<string, unknown>>;
}

/** A log entry as an instant on its thread's track, named by its message. */
export function logInstant(entry: LogEntry, track: Track): InstantEvent {
  return {
    ph: 'i',
    s: 't',
    ...track,
    name: entry.message,
    cat: `log.${entry.level}`,
    ts: micros(entry.timeNs),
    args: { level: entry.level, target: entry.target, properties: entry.properties },
  };
}

/** A measure, from the `measures` view. */
export interface Measure {
  readonly timeNs: number;
  readonly name: string;
  readonly unit: string;
  readonly value: number;
}

/**
 * A measure as a sample of the counter named after it and the actor or thread (`owner`) that took
 * it, its series named by its unit: two actors' measures of one name are two counters, not one
 * line zigzagging between them.
 */
export function counterSample(measure: Measure, track: Track, owner: string): CounterEvent {
  return {
    ph: 'C',
    ...track,
    name: measure.name,
    id: owner,
    cat: 'metric',
    ts: micros(measure.timeNs),
    args: { [measure.unit === '' ? 'value' : measure.unit]: measure.value },
  };
}

/** The name a viewer shows for a process. */
export function processName(pid: number, name: string): MetadataEvent {
  return { ph: 'M', pid, tid: 0, name: 'process_name', args: { name } };
}

/** The name a viewer shows for a track, and where it is placed among the others. */
export function trackNames(track: Track, name: string, order: number): MetadataEvent[] {
  return [
    { ph: 'M', ...track, name: 'thread_name', args: { name } },
    { ph: 'M', ...track, name: 'thread_sort_index', args: { sort_index: order } },
  ];
}
