/**
 * Instrumentation events read back from the lake (`readPersisted`), their string ids resolved
 * with the strings of their own block: logs, metrics and span events as plain records.
 */
import {
  type LevelSetting,
  LogFlags,
  levelName,
  MetricKind,
  PropertyType,
  SpanFlags,
  SpanKind,
} from '../instrumentation/index.js';
import type { PersistedRecord, PersistedSourceData } from './read.js';

export interface PersistedLog {
  readonly seq: number;
  /** ns since the stream's `clock_base_ns`. */
  readonly t: number;
  readonly level: LevelSetting;
  readonly target: string;
  readonly message: string;
  /** The span open on the thread when logged (its id), or 0. */
  readonly span: number;
  readonly properties: Readonly<Record<string, number | boolean | string>>;
  /** Properties were left out (more than 4, more than 2 strings) or a string value was cut. */
  readonly propertiesLeftOut: boolean;
  readonly textCut: boolean;
}

export interface PersistedMetric {
  readonly seq: number;
  readonly t: number;
  readonly name: string;
  readonly unit: string;
  readonly value: number;
  readonly kind: 'float' | 'integer';
  readonly span: number;
}

export interface PersistedSpanEvent {
  readonly seq: number;
  readonly t: number;
  readonly kind: 'begin' | 'end' | 'async-begin' | 'async-end';
  readonly id: number;
  /** The span open around this one when it began, or 0. */
  readonly parent: number;
  readonly name: string;
  /** Spans open around it when it began (0: top level). */
  readonly depth: number;
  /** An end the thread wrote because an outer span ended first. */
  readonly closedByParent: boolean;
}

const SPAN_KINDS: Readonly<Record<number, PersistedSpanEvent['kind']>> = {
  [SpanKind.BEGIN]: 'begin',
  [SpanKind.END]: 'end',
  [SpanKind.ASYNC_BEGIN]: 'async-begin',
  [SpanKind.ASYNC_END]: 'async-end',
};

/** The log entries of a `log` stream, in sequence order. */
export function persistedLogs(data: PersistedSourceData): PersistedLog[] {
  return data.records.map((record) => {
    const e = part(record, 'dorsal.LogEvent');
    const properties: Record<string, number | boolean | string> = {};
    for (let i = 0; i < 4; i++) {
      const type = e[`type${i}`] as number;
      if (type === PropertyType.NONE) continue;
      const key = text(record, e[`key${i}`]);
      const value = e[`value${i}`] as number;
      if (type === PropertyType.NUMBER) properties[key] = value;
      else if (type === PropertyType.BOOLEAN) properties[key] = value === 1;
      else properties[key] = e[value === 0 ? 'text0' : 'text1'] as string;
    }
    const flags = e.flags as number;
    return {
      seq: record.seq,
      t: e.t as number,
      level: levelName(e.level as number),
      target: text(record, e.target),
      message: text(record, e.template),
      span: e.span as number,
      properties,
      propertiesLeftOut: (flags & LogFlags.PROPERTIES_LEFT_OUT) !== 0,
      textCut: (flags & LogFlags.TEXT_CUT) !== 0,
    };
  });
}

/** The measures of a `metrics` stream, in sequence order. */
export function persistedMetrics(data: PersistedSourceData): PersistedMetric[] {
  return data.records.map((record) => {
    const e = part(record, 'dorsal.MetricEvent');
    return {
      seq: record.seq,
      t: e.t as number,
      name: text(record, e.name),
      unit: text(record, e.unit),
      value: e.value as number,
      kind: e.kind === MetricKind.INTEGER ? 'integer' : 'float',
      span: e.span as number,
    };
  });
}

/** The span begins and ends of a `spans` stream, in sequence order. */
export function persistedSpans(data: PersistedSourceData): PersistedSpanEvent[] {
  return data.records.map((record) => {
    const e = part(record, 'dorsal.SpanEvent');
    const kind = SPAN_KINDS[e.kind as number];
    if (kind === undefined)
      throw new Error(`record ${record.seq}: unknown span event kind ${String(e.kind)}`);
    return {
      seq: record.seq,
      t: e.t as number,
      kind,
      id: e.id as number,
      parent: e.parent as number,
      name: text(record, e.name),
      depth: e.depth as number,
      closedByParent: ((e.flags as number) & SpanFlags.CLOSED_BY_PARENT) !== 0,
    };
  });
}

function part(record: PersistedRecord, layout: string): Record<string, unknown> {
  const found = record.parts[layout];
  if (found === undefined) throw new Error(`record ${record.seq} holds no ${layout}`);
  return found;
}

/** The text of a string id, from the record's own block: a block that lacks it does not decode on its own. */
function text(record: PersistedRecord, id: unknown): string {
  const found = record.strings?.get(id as number);
  if (found === undefined)
    throw new Error(`record ${record.seq}: string id ${String(id)} is not in its block`);
  return found;
}
