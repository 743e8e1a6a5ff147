/**
 * A replay's diff in the lake: one document stream of the replay process (see documents.ts),
 * tagged `divergences`, holding one block whose objects part is a JSON document (`StoredDiff`):
 * the per-stream summary and the first divergences.
 *
 * Why JSON and not records: the record streams (`recordStreamInfo`) are fixed-width layouts that
 * the ETL decodes into Parquet partitions, one source-table kind at a time. A divergence is mostly
 * text of unbounded length (its place in the tree, the differing fields' values): in a fixed
 * string field it would be cut, and a cut value is a silent loss. The document is small (the
 * summary and at most `--divergences` divergences, written once per replay), so the analytics
 * read it whole when they look at the lake and make the tables `replay_diffs`,
 * `replay_diff_streams` and `replay_divergences` of it (see `createViews`).
 */
import type { IngestionService } from '../ingestion/service.js';
import { TelemetrySink } from '../sink/sink.js';
import type { Block, ProcessInfo, StreamInfo } from '../wire/index.js';
import { documentBlock, documentStreamInfo, parseDocument } from './documents.js';

/** The tag of a replay's diff stream. */
export const DIVERGENCES_TAG = 'divergences';

/** The `format` property of a diff stream: what its block's objects part holds. */
export const DIVERGENCES_FORMAT = 'dorsal.replay-diff.v1+json';

/** How one stream compared (see `dorsal replay --diff`). */
export interface StoredDiffStream {
  readonly stream: string;
  readonly matched: number;
  readonly differing: number;
  readonly onlyRecorded: number;
  readonly onlyReplayed: number;
}

/** One divergence as the lake keeps it. */
export interface StoredDivergence {
  readonly kind: 'differs' | 'only-recorded' | 'only-replayed';
  readonly stream: string;
  /** Its place in the tree. */
  readonly place: string;
  /** Its sequence number in the recording, in the replay (null on the side that lacks it). */
  readonly recordedSeq: number | null;
  readonly replayedSeq: number | null;
  /** For `differs`: each field whose value is not the same. */
  readonly fields: readonly {
    readonly field: string;
    readonly recorded: unknown;
    readonly replayed: unknown;
  }[];
}

/** What a replay's diff found, as stored. */
export interface StoredDiff {
  /** The process replayed (the recording). */
  readonly recording: string;
  /** Messages that diverged in all. */
  readonly diverged: number;
  /** At most this many divergences were kept (`--divergences`). */
  readonly limit: number;
  readonly streams: readonly StoredDiffStream[];
  /** The first divergences, in the order `dorsal replay --diff` printed them. */
  readonly divergences: readonly StoredDivergence[];
}

/** The stream of a replay process that holds its diff. */
export function divergencesStreamInfo(processId: string, diff: StoredDiff): StreamInfo {
  return documentStreamInfo(processId, DIVERGENCES_TAG, DIVERGENCES_FORMAT, {
    name: 'divergences',
    replay_of: diff.recording,
    diverged: String(diff.diverged),
    limit: String(diff.limit),
  });
}

/**
 * The one block of a diff stream, timed at `atEpochNs` (default now) on the process's clock: the
 * end of the replay's last block, so that keeping the diff does not stretch the process's span.
 */
export function divergencesBlock(
  process: ProcessInfo,
  stream: StreamInfo,
  diff: StoredDiff,
  atEpochNs: bigint = BigInt(Date.now()) * 1_000_000n,
): Block {
  return documentBlock(process, stream, diff, diff.streams.length + diff.divergences.length, atEpochNs);
}

/** Where the diff goes: the embedded lake's ingestion service, or an ingestion URL. */
export type DiffTarget =
  | { readonly service: IngestionService }
  | { readonly url: string; readonly key?: string };

/**
 * Sends a replay's diff to the lake as a stream of its process (the process record again first:
 * ingestion keeps the first it got). Rejects when the block did not reach the lake.
 */
export async function recordDiff(
  target: DiffTarget,
  process: ProcessInfo,
  diff: StoredDiff,
  options: { readonly atEpochNs?: bigint; readonly timeoutMs?: number } = {},
): Promise<void> {
  const sink = new TelemetrySink({
    target: 'service' in target ? target.service : target.url,
    ...('url' in target && target.key !== undefined ? { key: target.key } : {}),
    process,
  });
  const stream = divergencesStreamInfo(process.processId, diff);
  sink.addStream(stream);
  sink.push(divergencesBlock(process, stream, diff, options.atEpochNs));
  const stats = await sink.close({ timeoutMs: options.timeoutMs ?? 10_000 });
  if (stats.sent !== 1) {
    throw new Error(
      `the diff did not reach the lake${stats.lastError === undefined ? '' : `: ${stats.lastError}`}`,
    );
  }
}

/** The diff a diff stream's block holds (its objects part, decompressed); throws on another document. */
export function parseStoredDiff(objects: Uint8Array): StoredDiff {
  const diff = parseDocument(objects);
  const wrong = notADiff(diff);
  if (wrong !== undefined) throw new Error(`a divergences block holds no replay diff: ${wrong}`);
  return diff as StoredDiff;
}

/** Kinds of divergence. */
const KINDS: ReadonlySet<unknown> = new Set(['differs', 'only-recorded', 'only-replayed']);

/** A count or a sequence number a table holds as a BIGINT, and JavaScript as a number, exactly. */
const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * What makes `doc` no diff, or undefined if it is one: any client of an ingestion server can send
 * a divergences block, and the analytics make tables of it, so every part is checked for the
 * type its column has (a count past 2^63 failed every query over the lake).
 */
function notADiff(doc: unknown): string | undefined {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'not an object';
  const d = doc as Record<string, unknown>;
  if (!isCount(d.diverged)) return 'diverged is no count';
  if (d.limit !== undefined && !isCount(d.limit)) return 'limit is no count';
  if (d.recording !== undefined && typeof d.recording !== 'string') return 'recording is no text';
  if (!Array.isArray(d.streams)) return 'streams is no list';
  for (const [i, s] of d.streams.entries()) {
    const stream = s as Record<string, unknown> | null;
    if (typeof stream !== 'object' || stream === null || typeof stream.stream !== 'string')
      return `streams[${i}] names no stream`;
    for (const key of ['matched', 'differing', 'onlyRecorded', 'onlyReplayed']) {
      if (!isCount(stream[key])) return `streams[${i}].${key} is no count`;
    }
  }
  if (!Array.isArray(d.divergences)) return 'divergences is no list';
  for (const [i, v] of d.divergences.entries()) {
    const divergence = v as Record<string, unknown> | null;
    if (typeof divergence !== 'object' || divergence === null) return `divergences[${i}] is not an object`;
    if (!KINDS.has(divergence.kind)) return `divergences[${i}].kind is not a kind of divergence`;
    if (typeof divergence.stream !== 'string' || typeof divergence.place !== 'string')
      return `divergences[${i}] has no stream or place`;
    for (const key of ['recordedSeq', 'replayedSeq']) {
      if (divergence[key] !== null && !isCount(divergence[key]))
        return `divergences[${i}].${key} is no sequence`;
    }
    const fields = divergence.fields;
    if (
      fields !== undefined &&
      !(
        Array.isArray(fields) &&
        fields.every((f) => typeof (f as { field?: unknown } | null)?.field === 'string')
      )
    )
      return `divergences[${i}].fields is no list of fields`;
  }
  return undefined;
}
