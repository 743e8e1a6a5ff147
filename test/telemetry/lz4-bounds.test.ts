import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { uncompressSync } from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { checkPayloadSizes, RATIO_FREE_BYTES, verifyPayload } from '../../src/telemetry/wire/index.js';
import { checkLz4Block, checkLz4BlockSliced } from '../../src/telemetry/wire/lz4-check.js';
import { compressPart, DEFAULT_MAX_BLOCK_BYTES, decompressPart, WireFormatError } from '../../src/wire.js';
import { eventBytes } from './fixtures.js';

const declared = (part: Uint8Array): number =>
  new DataView(part.buffer, part.byteOffset, 4).getUint32(0, true);

/** What lz4-napi makes of a part: decompresses to exactly its declared size, or not. */
function decompresses(part: Uint8Array): boolean {
  try {
    return uncompressSync(part).length === declared(part);
  } catch {
    return false;
  }
}

function walks(part: Uint8Array): boolean {
  try {
    checkLz4Block(part, declared(part), 'part');
    return true;
  } catch (error) {
    expect(error).toBeInstanceOf(WireFormatError);
    return false;
  }
}

describe('lz4 parts: sizes bounded, checked without decompressing', () => {
  it.each([
    ['an empty part', '0000000000', true],
    ['no token at all', '00000000', false],
    ['one literal', '010000001061', true],
    ['an end on a match', '0500000010610100', false],
    ['a stray byte after the last literals', '01000000106100', false],
    ['a zero offset', '0500000010610000', false],
    ['an offset past the bytes made', '0500000010610200', false],
    ['a declared size too large', '0a000000106101000f', false],
    ['a declared size too small', '0400000010610100', false],
    ['literals past the end', '03000000306162', false],
    ['a missing literal', '0100000010', false],
  ])('agrees with lz4-napi on %s', (_name, hex, ok) => {
    const part = Buffer.from(hex, 'hex');
    expect(decompresses(part)).toBe(ok);
    expect(walks(part)).toBe(ok);
  });

  it('agrees with lz4-napi on every corruption of real parts', () => {
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 4096 }),
      fc.integer({ min: 1, max: 2000 }).map((n) => eventBytes(n, n)),
      fc.integer({ min: 0, max: 65_536 }).map((n) => new Uint8Array(n)),
    );
    const change = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }));
    let checked = 0;
    fc.assert(
      fc.property(input, fc.array(change, { maxLength: 6 }), fc.nat(), (bytes, changes, cut) => {
        const part = Buffer.from(compressPart(bytes));
        expect(walks(part)).toBe(true);
        const corrupt = Buffer.from(part.subarray(0, cut % 3 === 0 ? part.length : 4 + (cut % part.length)));
        for (const [at, value] of changes) corrupt[at % corrupt.length] = value;
        // A corrupted size prefix may declare gigabytes, which lz4-napi would allocate.
        if (corrupt.length < 4 || declared(corrupt) > 1 << 20) return;
        checked += 1;
        expect(walks(corrupt)).toBe(decompresses(corrupt));
      }),
      { numRuns: 3000 },
    );
    expect(checked).toBeGreaterThan(2000);
  });

  it('refuses a part that declares more than 64 times its size once over 1 MiB, and a block over its limit', () => {
    const zeros = compressPart(new Uint8Array(4 * RATIO_FREE_BYTES));
    const small = compressPart(new Uint8Array(RATIO_FREE_BYTES));
    const events = compressPart(eventBytes(100_000));
    expect(zeros.length * 64).toBeLessThan(4 * RATIO_FREE_BYTES);
    expect(() => checkPayloadSizes({ dependencies: small, objects: zeros })).toThrow(
      `block.payload.objects: lz4 part of ${zeros.length} bytes declares ${4 * RATIO_FREE_BYTES} decompressed bytes, more than 64 times its size`,
    );
    // Up to 1 MiB the ratio does not matter; a higher ratio can be allowed.
    expect(checkPayloadSizes({ dependencies: small, objects: events })).toBe(RATIO_FREE_BYTES + 3_200_000);
    expect(checkPayloadSizes({ dependencies: small, objects: zeros }, { maxCompressionRatio: 256 })).toBe(
      5 * RATIO_FREE_BYTES,
    );
    expect(() =>
      checkPayloadSizes({ dependencies: events, objects: events }, { maxBlockBytes: 6_000_000 }),
    ).toThrow(
      'block.payload: its parts declare 6400000 decompressed bytes in all, over the limit of 6000000',
    );
    expect(() =>
      checkPayloadSizes({ dependencies: small, objects: events }, { maxBlockBytes: 3_000_000 }),
    ).toThrow(
      'block.payload.objects: lz4 part declares 3200000 decompressed bytes, over the limit of 3000000',
    );
    expect(DEFAULT_MAX_BLOCK_BYTES).toBe(64 * 1024 * 1024);
  });

  it('still reads back a part stored under the former limit of 256 MiB per part', () => {
    const part = compressPart(new Uint8Array(DEFAULT_MAX_BLOCK_BYTES + 1));
    expect(decompressPart(part, 'old').length).toBe(DEFAULT_MAX_BLOCK_BYTES + 1);
    expect(() => decompressPart(part, 'old', DEFAULT_MAX_BLOCK_BYTES)).toThrow('over the limit');
  });

  it('walks a large part in slices to the same verdict', async () => {
    const part = Buffer.from(compressPart(Buffer.concat([randomBytes(9 << 20), eventBytes(200_000)])));
    expect(part.length).toBeGreaterThan(8 * 1024 * 1024);
    await expect(checkLz4BlockSliced(part, declared(part), 'big')).resolves.toBeUndefined();
    for (const at of [part.length - 20, part.length - 21]) part.writeUInt8(part.readUInt8(at) ^ 0xff, at);
    const sliced = await checkLz4BlockSliced(part, declared(part), 'big').then(
      () => true,
      () => false,
    );
    expect(sliced).toBe(walks(part));
    expect(sliced).toBe(decompresses(part));
  });

  it('refuses a length made of 255 bytes once it passes the declared size, without reading on', () => {
    const size = 64 * 1024;
    // A literal length, then a match length, each followed by 8 MiB of 255 bytes.
    const literal = Buffer.alloc(8 << 20, 0xff);
    literal.writeUInt32LE(size, 0);
    literal[4] = 0xf0;
    const match = Buffer.alloc(8 << 20, 0xff);
    match.writeUInt32LE(size, 0);
    match.set([0x1f, 0x41, 1, 0], 4);
    // What was read is in the message: a length worth the declared size, no more.
    const stopsAt = (part: Buffer): number => {
      try {
        checkLz4Block(part, size, 'part');
      } catch (error) {
        const at = /past the declared 65536 bytes at byte (\d+)/.exec(String(error))?.[1];
        if (at !== undefined) return Number(at);
        throw error;
      }
      throw new Error('the part was accepted');
    };
    expect(stopsAt(literal)).toBe(5 + Math.ceil((size + 1 - 15) / 255));
    expect(stopsAt(match)).toBeLessThanOrEqual(8 + Math.ceil((size + 1) / 255));
    expect(decompresses(literal)).toBe(false);
  });

  it('walks a large part in slices, giving the event loop turns in between', async () => {
    // 3 million of the shortest sequences (a literal, then a match of 4), then a last literal:
    // 12 MB of input, three slices.
    const sequences = 3_000_000;
    const part = Buffer.alloc(4 + 4 * sequences + 2);
    part.writeUInt32LE(5 * sequences + 1, 0);
    for (let at = 4; at < part.length - 2; at += 4) part.set([0x10, 0x41, 1, 0], at);
    part.set([0x10, 0x41], part.length - 2);
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns += 1;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    try {
      await checkLz4BlockSliced(part, declared(part), 'big');
    } finally {
      ticking = false;
    }
    // A turn between each two slices of 4 MiB (the first tick may come before the walk).
    expect(turns).toBeGreaterThanOrEqual(2);
    expect(() => checkLz4Block(part, 5 * sequences + 1, 'big')).not.toThrow();
  });

  it('verifies a payload: a lying part is refused without being decompressed', async () => {
    const objects = Buffer.from(compressPart(eventBytes(1000)));
    const dependencies = compressPart(new Uint8Array(0));
    await expect(verifyPayload({ dependencies, objects })).resolves.toBeUndefined();
    objects.writeUInt32LE(64_000, 0);
    await expect(verifyPayload({ dependencies, objects })).rejects.toThrow(
      'block.payload.objects: lz4 part declares 64000 bytes but decompresses to 32000',
    );
  });
});
