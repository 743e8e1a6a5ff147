import { compress, compressSync, uncompress, uncompressSync } from 'lz4-napi';
import { WireFormatError } from '../errors.js';
import { decodeRecord, encodeRecord } from './codec.js';
import { readBytes } from './fields.js';
import { DEFAULT_MAX_BLOCK_BYTES } from './limits.js';
import { checkLz4BlockSliced } from './lz4-check.js';
import type { BlockPayload, DecodedPayload } from './types.js';

export { DEFAULT_MAX_BLOCK_BYTES };

/**
 * The two byte parts of a block (`dependencies`, `objects`), each lz4-compressed in the block
 * format with its decompressed size prepended as a little-endian u32. The stored blob is the CBOR
 * envelope of both parts, still compressed: the lake never decompresses to store.
 */

/**
 * Default largest ratio of a part's decompressed size to its compressed size. lz4 reaches ~255×
 * on a run of zeros; telemetry events compress 2–13× (fixtures, bench data, mostly-zero slots),
 * so 64× refuses only what is (nearly) all repetition — an lz4 bomb.
 */
export const DEFAULT_MAX_COMPRESSION_RATIO = 64;

/**
 * Default limit of a part when reading a stored block back: the largest part ingestion has ever
 * accepted (before `maxBlockBytes` there was a 256 MiB limit per part), so that older lakes stay
 * readable. What ingestion accepts now is bounded by `maxBlockBytes`.
 */
export const MAX_STORED_PART_BYTES = 256 * 1024 * 1024;

/** A part that decompresses to at most this many bytes passes whatever its ratio (small blocks of zeros do). */
export const RATIO_FREE_BYTES = 1024 * 1024;

/** How large a block's payload may be once decompressed. */
export interface PayloadLimits {
  /** Both parts together, decompressed (default 64 MiB). */
  readonly maxBlockBytes?: number;
  /** Decompressed size of a part over its compressed size, above 1 MiB (default 64). */
  readonly maxCompressionRatio?: number;
}

/** Compresses one part of a block payload. */
export function compressPart(bytes: Uint8Array): Uint8Array {
  return compressSync(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** Compresses one part of a block payload on the libuv thread pool (the persister's blocks). */
export function compressPartAsync(bytes: Uint8Array): Promise<Uint8Array> {
  return compress(bytes);
}

/** The decompressed size a compressed part declares, checked against a limit before allocating. */
export function declaredSize(part: Uint8Array, what: string, maxBytes: number): number {
  if (part.length < 4)
    throw new WireFormatError(`${what}: lz4 part of ${part.length} bytes is truncated (no size prefix)`);
  const size = new DataView(part.buffer, part.byteOffset, 4).getUint32(0, true);
  if (size > maxBytes) {
    throw new WireFormatError(
      `${what}: lz4 part declares ${size} decompressed bytes, over the limit of ${maxBytes}`,
    );
  }
  return size;
}

/**
 * Checks the sizes a payload's parts declare against the limits, before anything is decompressed,
 * and returns the bytes that decompressing both will take.
 */
export function checkPayloadSizes(payload: BlockPayload, limits: PayloadLimits = {}): number {
  const maxBlock = limits.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES;
  const ratio = limits.maxCompressionRatio ?? DEFAULT_MAX_COMPRESSION_RATIO;
  let total = 0;
  for (const [part, what] of [
    [payload.dependencies, 'block.payload.dependencies'],
    [payload.objects, 'block.payload.objects'],
  ] as const) {
    const size = declaredSize(part, what, maxBlock);
    if (size > RATIO_FREE_BYTES && size > part.length * ratio) {
      throw new WireFormatError(
        `${what}: lz4 part of ${part.length} bytes declares ${size} decompressed bytes, more than ${ratio} times its size`,
      );
    }
    total += size;
  }
  if (total > maxBlock) {
    throw new WireFormatError(
      `block.payload: its parts declare ${total} decompressed bytes in all, over the limit of ${maxBlock}`,
    );
  }
  return total;
}

function checked(out: Uint8Array, size: number, what: string): Uint8Array {
  if (out.length !== size) {
    throw new WireFormatError(`${what}: lz4 part declares ${size} bytes but decompresses to ${out.length}`);
  }
  return out;
}

function lz4Error(what: string, error: unknown): WireFormatError {
  const detail = error instanceof Error ? error.message : String(error);
  return new WireFormatError(`${what}: corrupt or truncated lz4 data (${detail})`, { cause: error });
}

/** Decompresses one part, synchronously. */
export function decompressPart(part: Uint8Array, what: string, maxBytes = MAX_STORED_PART_BYTES): Uint8Array {
  const size = declaredSize(part, what, maxBytes);
  try {
    return checked(uncompressSync(part), size, what);
  } catch (error) {
    throw error instanceof WireFormatError ? error : lz4Error(what, error);
  }
}

/**
 * Decompresses one part; a large one on the libuv thread pool, so that it does not stall the
 * event loop. Parts that declare at most `INLINE_DECOMPRESS_BYTES` are decompressed on the calling
 * thread: lz4 does a megabyte in well under a millisecond, and a trip through the pool (30–50 µs
 * here, more when its four threads are busy with other I/O) costs more than a small part takes.
 */
export async function decompressPartAsync(
  part: Uint8Array,
  what: string,
  maxBytes = MAX_STORED_PART_BYTES,
): Promise<Uint8Array> {
  const size = declaredSize(part, what, maxBytes);
  if (size <= INLINE_DECOMPRESS_BYTES) return decompressPart(part, what, maxBytes);
  let out: Uint8Array;
  try {
    out = await uncompress(part);
  } catch (error) {
    throw lz4Error(what, error);
  }
  return checked(out, size, what);
}

/** See `decompressPartAsync`. */
export const INLINE_DECOMPRESS_BYTES = 1024 * 1024;

/**
 * Checks that both parts of a payload are within the limits and decompress to the sizes they
 * declare, without decompressing them (see lz4-check.ts): verifying takes no memory, whatever the
 * number of blocks verified at once.
 */
export async function verifyPayload(payload: BlockPayload, limits: PayloadLimits = {}): Promise<void> {
  const maxBlock = checkPayloadSizes(payload, limits);
  for (const [part, what] of [
    [payload.dependencies, 'block.payload.dependencies'],
    [payload.objects, 'block.payload.objects'],
  ] as const) {
    await checkLz4BlockSliced(part, declaredSize(part, what, maxBlock), what);
  }
}

/** Encodes a (compressed) payload as the blob the lake stores. */
export function encodePayloadBlob(payload: BlockPayload): Uint8Array {
  return encodeRecord('payload', { dependencies: payload.dependencies, objects: payload.objects });
}

/** Decodes a stored blob back to its compressed parts. */
export function decodePayloadBlob(blob: Uint8Array): BlockPayload {
  const obj = decodeRecord(blob, 'payload');
  return {
    dependencies: readBytes(obj, 'dependencies', 'payload'),
    objects: readBytes(obj, 'objects', 'payload'),
  };
}

/** Decodes a stored blob and decompresses both parts. */
export function decodePayload(blob: Uint8Array, maxBytes = MAX_STORED_PART_BYTES): DecodedPayload {
  const parts = decodePayloadBlob(blob);
  return {
    dependencies: decompressPart(parts.dependencies, 'payload.dependencies', maxBytes),
    objects: decompressPart(parts.objects, 'payload.objects', maxBytes),
  };
}

/** Decodes a stored blob and decompresses both parts, large ones on the thread pool. */
export async function decodePayloadAsync(
  blob: Uint8Array,
  maxBytes = MAX_STORED_PART_BYTES,
): Promise<DecodedPayload> {
  const parts = decodePayloadBlob(blob);
  return {
    dependencies: await decompressPartAsync(parts.dependencies, 'payload.dependencies', maxBytes),
    objects: await decompressPartAsync(parts.objects, 'payload.objects', maxBytes),
  };
}
