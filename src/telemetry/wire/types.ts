/**
 * The records of the telemetry wire format, as plain data. Ids are lowercase UUID strings; times
 * are RFC 3339 in UTC with nanoseconds (`2025-01-02T03:04:05.123456789Z`); ticks are integer
 * readings of the process's clock, sent beside the times so that readers can calibrate it.
 */

import type { FieldDescription, FieldTypeName, LayoutDescription } from '../../queues/field-types.js';

/** The version this code writes and the only one it reads. */
export const WIRE_FORMAT_VERSION = 1;

/** Well-known stream tags; any other string is allowed too. */
export type StreamTag = 'messages' | 'timings' | 'log' | 'metrics' | 'spans' | (string & {});

/**
 * Layouts travel as the queues describe them (`Layout.describe()`): everything a reader needs to
 * decode the raw bytes of a block without the code that wrote them.
 */
export type {
  FieldDescription as LayoutFieldDescription,
  FieldTypeName as LayoutFieldType,
  LayoutDescription,
};

/** How a process's ticks relate to time. */
export interface ClockDescription {
  /** What the ticks count, e.g. `'dorsal-monotonic-ns'`. */
  readonly name: string;
  /** Ticks per second (1e9 for a nanosecond clock). */
  readonly ticksPerSecond: number;
}

/** An instrumented process. */
export interface ProcessInfo {
  readonly processId: string;
  readonly exe: string;
  readonly host: string;
  readonly username: string;
  /** RFC 3339 with nanoseconds. */
  readonly startTime: string;
  readonly startTicks: number;
  readonly clock: ClockDescription;
  readonly parentProcessId?: string;
  readonly properties: Readonly<Record<string, string>>;
}

/** A stream of blocks of one process, with the layouts needed to read them. */
export interface StreamInfo {
  readonly streamId: string;
  readonly processId: string;
  readonly tags: readonly StreamTag[];
  /** Layouts of the objects in a block's `dependencies` part. */
  readonly dependenciesLayouts: readonly LayoutDescription[];
  /** Layouts of the objects in a block's `objects` part. */
  readonly objectsLayouts: readonly LayoutDescription[];
  readonly properties: Readonly<Record<string, string>>;
}

/** What a stream is called: its `name`, else its actor's, else its thread's (`streams.name`). */
export function streamName(stream: Pick<StreamInfo, 'properties'>): string {
  return stream.properties.name ?? stream.properties.actor ?? stream.properties.thread ?? '';
}

/** A block's two byte parts, each lz4-compressed (block format, size-prepended). */
export interface BlockPayload {
  readonly dependencies: Uint8Array;
  readonly objects: Uint8Array;
}

/** A block's two byte parts, decompressed. */
export interface DecodedPayload {
  readonly dependencies: Uint8Array;
  readonly objects: Uint8Array;
}

/** The header of a block: what the lake keeps in its `blocks` table. */
export interface BlockHeader {
  readonly blockId: string;
  readonly streamId: string;
  readonly processId: string;
  readonly beginTime: string;
  readonly beginTicks: number;
  readonly endTime: string;
  readonly endTicks: number;
  readonly objectCount: number;
}

/** A block as sent to ingestion: its header and its compressed payload. */
export interface Block extends BlockHeader {
  readonly payload: BlockPayload;
}

/**
 * How many blocks a sink dropped since its previous report, by reason (`bufferFull`, `spoolFull`,
 * `rejected`, `shutdown`). A sink sends one whenever it has dropped blocks and the server answers,
 * so that the lake knows what it is missing; `reportId` makes a re-send count once.
 */
export interface DropReport {
  readonly reportId: string;
  readonly processId: string;
  /** When the report was made (RFC 3339 with nanoseconds). */
  readonly time: string;
  readonly counts: Readonly<Record<string, number>>;
}
