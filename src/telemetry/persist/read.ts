import { viewsOf } from '../../queues/codec.js';
import { Layout, type LayoutDescription } from '../../queues/index.js';
import type { Lake } from '../lake/lake.js';
import type { StreamRow } from '../lake/types.js';
import { RecordProperty } from './records.js';
import { COUNTS_TAG, parseStoredCounts, type StoredCounts } from './run-counts.js';

/** One record of a persisted source: its sequence, and each part decoded by its layout. */
export interface PersistedRecord {
  readonly seq: number;
  /**
   * By layout name, after the record header: `Tracking` and the message's layout, `TimingRecord`,
   * or an instrumentation event (`dorsal.LogEvent`, `dorsal.MetricEvent`, `dorsal.SpanEvent`).
   */
  readonly parts: Readonly<Record<string, Record<string, unknown>>>;
  /** The strings of the record's own block (its dependencies), by id: what an event's ids name. */
  readonly strings?: ReadonlyMap<number, string>;
}

/** What a persisted source holds in the lake. */
export interface PersistedSourceData {
  readonly stream: StreamRow;
  /** Records in sequence order. */
  readonly records: readonly PersistedRecord[];
  /** The losses the last block carried (see BlockCoverage). */
  readonly lost: number;
  readonly poisoned: number;
  /** Sequences the blocks account for, persisted or lost. */
  readonly covered: number;
  /** An instrumentation stream: what its thread dropped at the source, as the last block says (see SourceDrops). */
  readonly dropped?: { readonly strings: number; readonly depth: number };
}

/** A block's dependencies, decoded region by region (see records.ts). */
export interface Dependencies {
  readonly coverage: { first: number; end: number; lost: number; poisoned: number };
  readonly dropped?: { strings: number; depth: number };
  readonly strings?: Map<number, string>;
}

/**
 * Reads back, with dorsal's own decoding, every block of one persisted process: per lake stream
 * its records and its losses. Each block is decoded on its own, from what its stream declares
 * (layouts, `record_bytes`, `layout_offsets`, `dependencies_offsets`) and its own dependencies.
 * For tests and summaries of short runs: it decodes every record into objects (the analytics
 * turn blocks into tables instead).
 */
export async function readPersisted(lake: Lake, processId: string): Promise<PersistedSourceData[]> {
  const result: PersistedSourceData[] = [];
  for (const stream of await lake.streams({ processId })) {
    const recordBytes = Number(stream.properties[RecordProperty.RECORD_BYTES]);
    const offsets = (stream.properties[RecordProperty.LAYOUT_OFFSETS] ?? '').split(',').map(Number);
    if (!(recordBytes > 0) || offsets.length !== stream.objectsLayouts.length) continue;
    const layouts = stream.objectsLayouts.map((d) => Layout.fromDescription(d));
    const blocks: Dependencies[] = [];
    const records: PersistedRecord[] = [];
    for (const row of await lake.blocks({ streamId: stream.streamId })) {
      const { payload } = await lake.readBlock(row);
      const dependencies = decodeDependencies(stream, copyOf(payload.dependencies));
      blocks.push(dependencies);
      const objects = copyOf(payload.objects);
      const views = viewsOf(objects);
      const codecs = layouts.map((layout) => layout.bind(views) as { read(base: number, out: object): void });
      for (let i = 0; i < row.objectCount; i++) {
        const base = i * recordBytes;
        const parts: Record<string, Record<string, unknown>> = {};
        let seq = 0;
        layouts.forEach((layout, part) => {
          const out = layout.create() as Record<string, unknown>;
          codecs[part]!.read(base + offsets[part]!, out);
          if (part === 0) seq = out.seq as number;
          else parts[layout.name] = out;
        });
        records.push({
          seq,
          parts,
          ...(dependencies.strings === undefined ? {} : { strings: dependencies.strings }),
        });
      }
    }
    records.sort((a, b) => a.seq - b.seq);
    // Every figure a block carries is a running total: the latest is the largest. (By first
    // sequence the last block is ambiguous: blocks of coverage or drops alone share theirs with
    // the block before them, and the lake lists those, timed at 0, first.)
    const max = (of: (b: Dependencies) => number | undefined) =>
      blocks.reduce((m, b) => Math.max(m, of(b) ?? 0), 0);
    const drops = blocks.some((b) => b.dropped !== undefined)
      ? { strings: max((b) => b.dropped?.strings), depth: max((b) => b.dropped?.depth) }
      : undefined;
    result.push({
      stream,
      records,
      lost: max((b) => b.coverage.lost),
      poisoned: max((b) => b.coverage.poisoned),
      covered: blocks.reduce((n, b) => n + (b.coverage.end - b.coverage.first), 0),
      ...(drops === undefined ? {} : { dropped: drops }),
    });
  }
  return result;
}

/**
 * The counts the persister kept of a System's run at its stop (see run-counts.ts), or undefined
 * if the process has none (a plain process, a run killed before its stop). Throws if its block
 * does not read.
 */
export async function readRunCounts(lake: Lake, processId: string): Promise<StoredCounts | undefined> {
  for (const stream of await lake.streams({ processId })) {
    if (!stream.tags.includes(COUNTS_TAG)) continue;
    for (const row of await lake.blocks({ streamId: stream.streamId })) {
      return parseStoredCounts((await lake.readBlock(row)).payload.objects);
    }
  }
  return undefined;
}

/**
 * Each region of a block's dependencies, by its layout: `BlockCoverage` (always first),
 * `SourceDrops`, `dorsal.StringEntry` (as many as the region holds).
 */
export function decodeDependencies(
  stream: Pick<StreamRow, 'dependenciesLayouts' | 'properties'>,
  bytes: ArrayBuffer,
): Dependencies {
  const layouts = stream.dependenciesLayouts;
  const starts = (stream.properties[RecordProperty.DEPENDENCIES_OFFSETS] ?? '0').split(',').map(Number);
  const views = viewsOf(bytes);
  const regions = new Map<string, Record<string, unknown>[]>();
  layouts.forEach((description: LayoutDescription, i) => {
    const layout = Layout.fromDescription(description);
    const codec = layout.bind(views) as { read(base: number, out: object): void };
    const end = i + 1 < layouts.length ? (starts[i + 1] ?? bytes.byteLength) : bytes.byteLength;
    const found: Record<string, unknown>[] = [];
    for (let at = starts[i] ?? 0; at + layout.size <= end; at += layout.size) {
      const out = layout.create() as Record<string, unknown>;
      codec.read(at, out);
      found.push(out);
    }
    regions.set(description.name, found);
  });
  const coverage = regions.get('BlockCoverage')?.[0] ?? {};
  const drops = regions.get('SourceDrops')?.[0];
  const entries = regions.get('dorsal.StringEntry');
  return {
    coverage: {
      first: coverage.first_seq as number,
      end: coverage.end_seq as number,
      lost: coverage.lost_total as number,
      poisoned: coverage.poisoned_total as number,
    },
    ...(drops === undefined
      ? {}
      : { dropped: { strings: drops.strings_total as number, depth: drops.depth_total as number } }),
    ...(entries === undefined
      ? {}
      : { strings: new Map(entries.map((e) => [e.id as number, e.text as string])) }),
  };
}

/** The bytes in a buffer of their own, from byte 0 (layouts read by offsets from the buffer's start). */
function copyOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
