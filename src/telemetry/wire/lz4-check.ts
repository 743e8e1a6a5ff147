import { WireFormatError } from '../errors.js';

/**
 * Checks that an lz4 block (after its 4-byte size prefix) decompresses to exactly `size` bytes,
 * without decompressing it: the walk reads each sequence's token, length bytes and offset, skips
 * its literals, and checks what a decoder would (a literal run inside the input, a match offset
 * neither 0 nor past the bytes made so far, no byte beyond the declared size, an end right after
 * a run of literals). It allocates nothing and costs one step per sequence, not per byte (a
 * length's extension bytes are read one by one, but never more than the declared size allows).
 *
 * Why not decompress to check: lz4-napi's output buffers are memory V8 does not see, so garbage
 * ones are not collected in time — 16 blocks of 32 MiB verified at once by decompressing took the
 * server's RSS from 110 to 700 MiB, with or without a budget limiting decompressions under way to
 * 64 MiB. A block that passes this walk decompresses with lz4-napi to the same size (a property
 * test compares the two on corrupted blocks).
 */
export function checkLz4Block(part: Uint8Array, size: number, what: string): void {
  new Lz4Walk(part, size, what).run(Number.POSITIVE_INFINITY);
}

/** Input bytes walked between two turns of the event loop (~2–5 ms here at worst). */
const SLICE_BYTES = 4 * 1024 * 1024;

/**
 * `checkLz4Block` for a part of any size: a large one is walked in slices, letting the event loop
 * run in between (a part made of the shortest sequences takes ~80 ms per 50 MB here).
 */
export async function checkLz4BlockSliced(part: Uint8Array, size: number, what: string): Promise<void> {
  const walk = new Lz4Walk(part, size, what);
  while (!walk.run(SLICE_BYTES)) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** The state of a walk: where it is in the input, and how many bytes decompressing would have made. */
class Lz4Walk {
  private at = 4;
  private made = 0;

  constructor(
    private readonly part: Uint8Array,
    private readonly size: number,
    private readonly what: string,
  ) {}

  /** Walks sequences until the end (true) or until about `slice` input bytes are behind it (false). */
  run(slice: number): boolean {
    const { part, size } = this;
    const end = part.length;
    const stop = Math.min(end, this.at + slice);
    let at = this.at;
    let made = this.made;
    const fail = (problem: string): never => {
      throw new WireFormatError(`${this.what}: corrupt or truncated lz4 data (${problem} at byte ${at})`);
    };
    for (;;) {
      if (at >= stop && at < end) {
        this.at = at;
        this.made = made;
        return false;
      }
      if (at >= end) fail('expected a sequence token');
      const token = part[at++] as number;
      let literals = token >>> 4;
      if (literals === 15) {
        let more: number;
        do {
          if (at >= end) fail('truncated literal length');
          more = part[at++] as number;
          literals += more;
          // A length of many 255 bytes is refused as soon as it passes what is left to make, not
          // walked to its end: the walk reads at most size / 255 bytes of one length.
          if (made + literals > size) fail(`a literal run past the declared ${size} bytes`);
        } while (more === 255);
      }
      if (literals > end - at) fail(`${literals} literal bytes past the end of the input`);
      at += literals;
      made += literals;
      if (made > size) break;
      // The last sequence is literals only: the input ends right after them.
      if (at === end) break;
      if (end - at < 2) fail('truncated match offset');
      const offset = (part[at] as number) | ((part[at + 1] as number) << 8);
      if (offset === 0 || offset > made) fail(`match offset ${offset} outside the ${made} bytes made so far`);
      at += 2;
      let match = (token & 15) + 4;
      if ((token & 15) === 15) {
        let more: number;
        do {
          if (at >= end) fail('truncated match length');
          more = part[at++] as number;
          match += more;
          if (made + match > size) fail(`a match past the declared ${size} bytes`);
        } while (more === 255);
      }
      made += match;
      if (made > size) break;
    }
    if (made !== size) {
      throw new WireFormatError(
        `${this.what}: lz4 part declares ${size} bytes but decompresses to ${made > size ? 'more' : made}`,
      );
    }
    return true;
  }
}
