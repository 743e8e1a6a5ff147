import { viewsOf } from '../../queues/codec.js';
import { Layout } from '../../queues/index.js';
import type { Lake } from '../lake/lake.js';
import type { StreamRow } from '../lake/types.js';
import { BlockCoverage, RecordProperty } from './records.js';

/** One record of a persisted source: its sequence, and each part decoded by its layout. */
export interface PersistedRecord {
  readonly seq: number;
  /** By layout name, after the record header: `Tracking` and the message's layout, or `TimingRecord`. */
  readonly parts: Readonly<Record<string, Record<string, unknown>>>;
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
}

/**
 * Reads back, with dorsal's own decoding, every block of one persisted process: per lake stream
 * its records and its losses. For tests and summaries of short runs: it decodes every record
 * into objects (the analytics turn blocks into tables instead).
 */
export async function readPersisted(lake: Lake, processId: string): Promise<PersistedSourceData[]> {
  const result: PersistedSourceData[] = [];
  for (const stream of await lake.streams({ processId })) {
    const recordBytes = Number(stream.properties[RecordProperty.RECORD_BYTES]);
    const offsets = (stream.properties[RecordProperty.LAYOUT_OFFSETS] ?? '').split(',').map(Number);
    if (!(recordBytes > 0) || offsets.length !== stream.objectsLayouts.length) continue;
    const layouts = stream.objectsLayouts.map((d) => Layout.fromDescription(d));
    const coverages: { first: number; end: number; lost: number; poisoned: number }[] = [];
    const records: PersistedRecord[] = [];
    for (const row of await lake.blocks({ streamId: stream.streamId })) {
      const { payload } = await lake.readBlock(row);
      const dependencies = copyOf(payload.dependencies);
      const coverage = BlockCoverage.create();
      BlockCoverage.bind(viewsOf(dependencies)).read(0, coverage);
      coverages.push({
        first: coverage.first_seq,
        end: coverage.end_seq,
        lost: coverage.lost_total,
        poisoned: coverage.poisoned_total,
      });
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
        records.push({ seq, parts });
      }
    }
    records.sort((a, b) => a.seq - b.seq);
    coverages.sort((a, b) => a.first - b.first);
    const last = coverages.at(-1);
    result.push({
      stream,
      records,
      lost: last?.lost ?? 0,
      poisoned: last?.poisoned ?? 0,
      covered: coverages.reduce((n, c) => n + (c.end - c.first), 0),
    });
  }
  return result;
}

/** The bytes in a buffer of their own, from byte 0 (layouts read by offsets from the buffer's start). */
function copyOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
