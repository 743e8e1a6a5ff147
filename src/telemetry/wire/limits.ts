import type { RecordKind } from './codec.js';
import type { CborLimits } from './strict-cbor.js';

/**
 * How much a record of each kind may hold, checked on its CBOR before it is decoded. The limits
 * are far above what dorsal's sinks send and low enough that a record's cost is bounded: a few
 * megabytes, and tens of milliseconds of CPU for the largest (a 1 MiB stream record of 16,384
 * fields took 25-80 ms to decode, validate and store, measured by a review on a 2-core VM);
 * `recordBodyLimit` bounds it on a server.
 */

/** Layouts in one stream record (dependencies and objects counted apart). */
export const MAX_LAYOUTS = 1024;
/** Fields of one layout. */
export const MAX_LAYOUT_FIELDS = 4096;
/** Fields of all the layouts of one stream. */
export const MAX_STREAM_FIELDS = 16_384;

/**
 * Bytes of a process or stream record an ingestion server takes by default (its
 * `recordBodyLimit`): a sink refuses to make a process record larger (see `TelemetrySink`).
 */
export const DEFAULT_RECORD_BODY_LIMIT = 1024 * 1024;

/** Bytes of one text of a process or stream record (a property's value, say). */
export const MAX_METADATA_TEXT_BYTES = 256 * 1024;

/** Processes and streams: a few dozen fields, properties, layouts of up to 4,096 fields. */
const METADATA: CborLimits = {
  maxDepth: 8,
  maxItems: 200_000,
  maxArrayLength: MAX_LAYOUT_FIELDS,
  maxMapEntries: 1024,
  maxTextBytes: MAX_METADATA_TEXT_BYTES,
  maxKeyBytes: 1024,
  maxByteStringBytes: 64 * 1024,
};

/** Blocks and stored payloads: a header and two byte strings, as large as the body allows. */
const BLOCK: CborLimits = {
  maxDepth: 8,
  maxItems: 256,
  maxArrayLength: 64,
  maxMapEntries: 64,
  maxTextBytes: 4096,
  maxKeyBytes: 256,
  maxByteStringBytes: Number.MAX_SAFE_INTEGER,
};

/** Drop reports: a header and a map of counts. */
const DROPS: CborLimits = { ...BLOCK, maxByteStringBytes: 4096 };

/** The limits of each kind of record. */
export const RECORD_LIMITS: Readonly<Record<RecordKind, CborLimits>> = {
  process: METADATA,
  stream: METADATA,
  block: BLOCK,
  payload: BLOCK,
  drops: DROPS,
};

/**
 * Default largest decompressed size of a block, both parts together: 64 MiB. Here, with no
 * codec loaded, for the options checked where nothing is encoded (a System's persist options, in
 * every actor's import); `payload.ts` enforces it.
 */
export const DEFAULT_MAX_BLOCK_BYTES = 64 * 1024 * 1024;
