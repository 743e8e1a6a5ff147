import { compressSync, uncompress, uncompressSync } from 'lz4-napi';
import { WireFormatError } from '../errors.js';
import { decodeRecord, encodeRecord } from './codec.js';
import { readBytes } from './fields.js';
import type { BlockPayload, DecodedPayload } from './types.js';

/**
 * The two byte parts of a block (`dependencies`, `objects`), each lz4-compressed in the block
 * format with its decompressed size prepended as a little-endian u32. The stored blob is the CBOR
 * envelope of both parts, still compressed: the lake never decompresses to store.
 */

/** Default largest decompressed size of one part. */
export const DEFAULT_MAX_PART_BYTES = 256 * 1024 * 1024;

/** Compresses one part of a block payload. */
export function compressPart(bytes: Uint8Array): Uint8Array {
  return compressSync(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
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
export function decompressPart(
  part: Uint8Array,
  what: string,
  maxBytes = DEFAULT_MAX_PART_BYTES,
): Uint8Array {
  const size = declaredSize(part, what, maxBytes);
  try {
    return checked(uncompressSync(part), size, what);
  } catch (error) {
    throw error instanceof WireFormatError ? error : lz4Error(what, error);
  }
}

/** Decompresses one part on the libuv thread pool, so a large block does not stall the event loop. */
export async function decompressPartAsync(
  part: Uint8Array,
  what: string,
  maxBytes = DEFAULT_MAX_PART_BYTES,
): Promise<Uint8Array> {
  const size = declaredSize(part, what, maxBytes);
  let out: Uint8Array;
  try {
    out = await uncompress(part);
  } catch (error) {
    throw lz4Error(what, error);
  }
  return checked(out, size, what);
}

/**
 * Parts that declare at most this many bytes are decompressed on the calling thread: lz4 does a
 * megabyte in well under a millisecond, and a trip through the libuv pool (30–50 µs here, more
 * when its four threads are busy with other I/O) costs more than a small part takes.
 */
export const INLINE_DECOMPRESS_BYTES = 1024 * 1024;

/** Checks that both parts of a payload decompress to the sizes they declare. */
export async function verifyPayload(payload: BlockPayload, maxBytes = DEFAULT_MAX_PART_BYTES): Promise<void> {
  const parts = [
    { part: payload.dependencies, what: 'block.payload.dependencies' },
    { part: payload.objects, what: 'block.payload.objects' },
  ];
  const small: typeof parts = [];
  const large: typeof parts = [];
  for (const p of parts)
    (declaredSize(p.part, p.what, maxBytes) > INLINE_DECOMPRESS_BYTES ? large : small).push(p);
  // Small parts first, on this thread: one that throws must not leave a pool task unawaited.
  for (const { part, what } of small) decompressPart(part, what, maxBytes);
  await Promise.all(large.map(({ part, what }) => decompressPartAsync(part, what, maxBytes)));
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
export function decodePayload(blob: Uint8Array, maxBytes = DEFAULT_MAX_PART_BYTES): DecodedPayload {
  const parts = decodePayloadBlob(blob);
  return {
    dependencies: decompressPart(parts.dependencies, 'payload.dependencies', maxBytes),
    objects: decompressPart(parts.objects, 'payload.objects', maxBytes),
  };
}
