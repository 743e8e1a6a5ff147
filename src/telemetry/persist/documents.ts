/**
 * Document streams: a lake stream of a process that holds JSON documents, one per block, where
 * the record streams (`recordStreamInfo`) hold fixed-width records. For what is written once
 * and is small, or mostly text of unbounded length: a replay's diff (`replay-diff.ts`), a run's
 * counts at its stop (`run-counts.ts`). The analytics read such blocks whole, by the stream's tag,
 * when they look at the lake (no partitions), and make tables of them.
 */
import { randomUUID } from 'node:crypto';
import {
  type Block,
  compressPart,
  formatRfc3339Ns,
  type ProcessInfo,
  rfc3339ToEpochNs,
  type StreamInfo,
} from '../wire/index.js';

/** A document stream of `processId`: tagged `tag`, its `format` property says what its blocks hold. */
export function documentStreamInfo(
  processId: string,
  tag: string,
  format: string,
  properties: Readonly<Record<string, string>>,
): StreamInfo {
  return {
    streamId: randomUUID(),
    processId,
    tags: [tag],
    dependenciesLayouts: [],
    objectsLayouts: [],
    properties: { ...properties, format },
  };
}

/**
 * A block of a document stream holding `document` as JSON, timed at `atEpochNs` on the
 * process's clock; `objectCount`: what the document counts (rows of the tables made of it).
 */
export function documentBlock(
  process: ProcessInfo,
  stream: StreamInfo,
  document: unknown,
  objectCount: number,
  atEpochNs: bigint,
): Block {
  const startNs = rfc3339ToEpochNs(process.startTime) ?? atEpochNs;
  const ticks =
    process.startTicks + Math.round((Number(atEpochNs - startNs) * process.clock.ticksPerSecond) / 1e9);
  const time = formatRfc3339Ns(atEpochNs);
  return {
    blockId: randomUUID(),
    streamId: stream.streamId,
    processId: process.processId,
    beginTime: time,
    beginTicks: ticks,
    endTime: time,
    endTicks: ticks,
    objectCount,
    payload: {
      dependencies: compressPart(new Uint8Array(0)),
      objects: compressPart(new TextEncoder().encode(JSON.stringify(document))),
    },
  };
}

/** The JSON document of a document block's objects part (decompressed). */
export function parseDocument(objects: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(objects));
}
