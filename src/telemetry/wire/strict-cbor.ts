import { WireFormatError } from '../errors.js';

/**
 * A strict check of CBOR bytes, run before they are decoded. Only the plain types the wire format
 * uses are accepted: integers, byte and text strings of definite length, arrays, maps with text
 * keys, floats, false, true, null and undefined. Tags (a bignum, a shared reference, a cbor-x
 * record or typed array, a date…), indefinite lengths and other simple values are refused, and so
 * are a key twice in one map (decoders disagree on which one wins) and the key `__proto__` (which
 * cbor-x renames to `__proto_` rather than make it an own property: the value would change).
 *
 * Why a check of its own in front of cbor-x rather than cbor-x configured: cbor-x decodes a tag's
 * content before it calls the tag's handler, and its default handlers are the danger (tag 2 turns
 * a 512 KiB byte string into a BigInt by one shift per byte: minutes of CPU; tags 28/29 let a few
 * bytes reference one large layout thousands of times, and whatever walks the decoded value then
 * walks every reference). Replacing the handlers one by one would leave any tag nobody thought of.
 * This walk reads only the heads of the items (lengths are checked against the limits and against
 * the bytes left before anything is allocated) and skips string contents, so it costs a few
 * nanoseconds per item and nothing per payload byte; cbor-x, which is fast and well tested, then
 * decodes bytes known to hold nothing but plain items.
 */

/** What a record may hold; every count is checked before the item is decoded. */
export interface CborLimits {
  /** Deepest nesting of arrays and maps (the top-level map is depth 1). */
  readonly maxDepth: number;
  /** Data items in total, keys included. */
  readonly maxItems: number;
  readonly maxArrayLength: number;
  readonly maxMapEntries: number;
  /** Largest text string, in UTF-8 bytes. */
  readonly maxTextBytes: number;
  /** Largest map key, in UTF-8 bytes. */
  readonly maxKeyBytes: number;
  /** Largest byte string. */
  readonly maxByteStringBytes: number;
}

const MAJOR_UNSIGNED = 0;
const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;

/** Simple values accepted in major type 7: false, true, null, undefined. */
const SIMPLE_FALSE = 20;
const SIMPLE_UNDEFINED = 23;
/** Additional information of major type 7 for half, single and double floats. */
const FLOAT_SIZES: Readonly<Record<number, number>> = { 25: 2, 26: 4, 27: 8 };

/** Walks one CBOR item after another, checking heads against the limits. */
class StrictWalker {
  private at = 0;
  private items = 0;
  /** The same bytes, to read keys from: latin1 maps each byte to one character, so equal keys are equal strings. */
  private readonly text: Buffer;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly limits: CborLimits,
    private readonly what: string,
  ) {
    this.text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Checks that the bytes hold exactly one item. */
  check(): void {
    if (this.bytes.length === 0) this.fail('empty body, expected a CBOR map');
    this.item(1);
    if (this.at !== this.bytes.length) {
      this.fail(`malformed CBOR (${this.bytes.length - this.at} bytes after the end of the item)`);
    }
  }

  private item(depth: number): void {
    const start = this.at;
    if (++this.items > this.limits.maxItems) this.fail(`more than ${this.limits.maxItems} CBOR items`);
    const { major, value } = this.head();
    switch (major) {
      case MAJOR_UNSIGNED:
      case MAJOR_NEGATIVE:
        return;
      case MAJOR_BYTES:
        this.skip(value, this.limits.maxByteStringBytes, 'byte string', start);
        return;
      case MAJOR_TEXT:
        this.skip(value, this.limits.maxTextBytes, 'text string', start);
        return;
      case MAJOR_ARRAY: {
        this.nest(depth, start);
        // Every item takes at least one byte: a count larger than the bytes left is a lie.
        this.count(value, this.limits.maxArrayLength, 1, 'array', start);
        for (let i = 0; i < value; i++) this.item(depth + 1);
        return;
      }
      case MAJOR_MAP: {
        this.nest(depth, start);
        this.count(value, this.limits.maxMapEntries, 2, 'map', start);
        const keys = new Set<string>();
        for (let i = 0; i < value; i++) {
          this.key(keys);
          this.item(depth + 1);
        }
        return;
      }
      case MAJOR_TAG:
        this.fail(`CBOR tag ${value} at byte ${start}: tags are not accepted`);
        return;
      default:
        this.simple(value, start);
    }
  }

  /** A map key: a text string of bounded size, not seen before in its map, not `__proto__`. */
  private key(seen: Set<string>): void {
    const start = this.at;
    if (++this.items > this.limits.maxItems) this.fail(`more than ${this.limits.maxItems} CBOR items`);
    const { major, value } = this.head();
    if (major !== MAJOR_TEXT) this.fail(`map key at byte ${start} is not a text string`);
    const from = this.at;
    this.skip(value, this.limits.maxKeyBytes, 'map key', start);
    const key = this.text.toString('latin1', from, this.at);
    if (key === '__proto__') this.fail(`map key "__proto__" at byte ${start} is not accepted`);
    if (seen.has(key)) {
      const shown = JSON.stringify(this.text.toString('utf8', from, this.at).slice(0, 100));
      this.fail(`map key ${shown} at byte ${start} appears twice in its map`);
    }
    seen.add(key);
  }

  /** Major type 7: the four accepted simple values and floats. */
  private simple(info: number, start: number): void {
    if (info >= SIMPLE_FALSE && info <= SIMPLE_UNDEFINED) return;
    const size = FLOAT_SIZES[info];
    if (size !== undefined) {
      // head() did not consume a float's bytes as an argument: see there.
      if (this.left() < size) this.fail(`malformed CBOR (truncated float at byte ${start})`);
      this.at += size;
      return;
    }
    this.fail(`CBOR simple value ${info} at byte ${start} is not accepted`);
  }

  /** Reads an item's head; `value` is the argument (a length, a count, a tag number, an integer). */
  private head(): { major: number; value: number } {
    if (this.at >= this.bytes.length) this.fail(`malformed CBOR (truncated at byte ${this.at})`);
    const initial = this.bytes[this.at] as number;
    this.at += 1;
    const major = initial >> 5;
    const info = initial & 0x1f;
    // Major type 7 carries floats in the bytes that follow; the caller reads them.
    if (major === 7) return { major, value: info };
    if (info < 24) return { major, value: info };
    if (info === 31) this.fail(`indefinite-length CBOR item at byte ${this.at - 1} is not accepted`);
    if (info > 27) this.fail(`malformed CBOR (reserved head at byte ${this.at - 1})`);
    const size = 1 << (info - 24);
    if (this.left() < size) this.fail(`malformed CBOR (truncated at byte ${this.at})`);
    let value = 0;
    for (let i = 0; i < size; i++) value = value * 256 + (this.bytes[this.at + i] as number);
    this.at += size;
    // Above 2^53 the number is inexact, but only as an integer value, never a length: any length
    // that large fails its limit below.
    return { major, value };
  }

  private skip(length: number, max: number, what: string, start: number): void {
    if (length > max) this.fail(`${what} of ${length} bytes at byte ${start} is over the limit of ${max}`);
    if (length > this.left())
      this.fail(`malformed CBOR (${what} at byte ${start} declares ${length} bytes, past the end)`);
    this.at += length;
  }

  /** An array's or map's count, against its limit and against the bytes left (`perEntry` each at least). */
  private count(n: number, max: number, perEntry: number, what: string, start: number): void {
    if (n > max) this.fail(`${what} of ${n} entries at byte ${start} is over the limit of ${max}`);
    if (n * perEntry > this.left())
      this.fail(`malformed CBOR (${what} at byte ${start} declares ${n} entries, past the end)`);
  }

  private nest(depth: number, start: number): void {
    if (depth > this.limits.maxDepth)
      this.fail(`CBOR nested deeper than ${this.limits.maxDepth} levels at byte ${start}`);
  }

  private left(): number {
    return this.bytes.length - this.at;
  }

  private fail(message: string): never {
    throw new WireFormatError(`${this.what}: ${message}`);
  }
}

/**
 * Throws `WireFormatError` unless `bytes` hold exactly one CBOR item made of plain types within
 * `limits`.
 *
 * @example
 * checkStrictCbor(body, METADATA_LIMITS, 'stream');   // then decode with cbor-x
 */
export function checkStrictCbor(bytes: Uint8Array, limits: CborLimits, what: string): void {
  new StrictWalker(bytes, limits, what).check();
}
