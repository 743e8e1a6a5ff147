import { encode } from 'cbor-x';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodePayloadBlob, MAX_EPOCH_NS, MIN_EPOCH_NS } from '../../src/telemetry/wire/index.js';
import {
  decodeBlock,
  decodePayload,
  decodeProcessInfo,
  decodeStreamInfo,
  decompressPart,
  encodeBlock,
  encodeProcessInfo,
  encodeStreamInfo,
  formatRfc3339Ns,
  normalizeRfc3339,
  rfc3339ToEpochNs,
  validateLayout,
  WIRE_FORMAT_VERSION,
  WireFormatError,
  WireVersionError,
} from '../../src/wire.js';
import { makeBlock, makeProcess, makeStream } from './fixtures.js';

const raw = (value: unknown): Uint8Array => encode(value);

describe('wire format', () => {
  it('round-trips a process, a stream and a block', () => {
    const process = makeProcess({ parentProcessId: makeProcess().processId });
    expect(decodeProcessInfo(encodeProcessInfo(process))).toEqual(process);
    const stream = makeStream(process.processId, { tags: ['messages', 'timings'] });
    expect(decodeStreamInfo(encodeStreamInfo(stream))).toEqual(stream);
    const { block, dependencies, objects } = makeBlock(stream, 100);
    const decoded = decodeBlock(encodeBlock(block));
    expect({ ...decoded, payload: undefined }).toEqual({ ...block, payload: undefined });
    const payload = decodePayload(encodePayloadBlob(decoded.payload));
    expect(Buffer.from(payload.dependencies)).toEqual(Buffer.from(dependencies));
    expect(Buffer.from(payload.objects)).toEqual(Buffer.from(objects));
  });

  it('lowercases ids and normalizes times to UTC with nine fraction digits', () => {
    const process = makeProcess();
    const sent = {
      ...process,
      processId: process.processId.toUpperCase(),
      startTime: '2025-01-02T05:04:05.5+02:00',
    };
    const got = decodeProcessInfo(encodeProcessInfo(sent));
    expect(got.processId).toBe(process.processId);
    expect(got.startTime).toBe('2025-01-02T03:04:05.500000000Z');
  });

  it('refuses an unknown format version with a clear error', () => {
    const bytes = raw({ ...makeProcess(), formatVersion: 99, kind: 'process' });
    expect(() => decodeProcessInfo(bytes)).toThrow(WireVersionError);
    expect(() => decodeProcessInfo(bytes)).toThrow(
      `unsupported telemetry wire format version 99 (this reader knows version ${WIRE_FORMAT_VERSION})`,
    );
    // A version no String() can print (the fuzzer's { toString: '' }) is refused all the same.
    for (const [version, shown] of [
      [{ toString: '' }, 'an object'],
      [[1], 'an array'],
      ['1', '"1"'],
    ] as const) {
      const odd = raw({ ...makeProcess(), formatVersion: version, kind: 'process' });
      expect(() => decodeProcessInfo(odd)).toThrow(WireVersionError);
      expect(() => decodeProcessInfo(odd)).toThrow(`wire format version ${shown} (this reader`);
    }
  });

  it.each([
    ['malformed CBOR', Buffer.from([0xa2, 0x61]), 'process: malformed CBOR'],
    ['an empty body', new Uint8Array(0), 'process: empty body'],
    ['a CBOR array', raw([1, 2]), 'process must be a CBOR map with string keys, got array(2)'],
    ['no version', raw({ kind: 'process' }), 'process: missing field "formatVersion"'],
    ['another kind', raw({ formatVersion: 1, kind: 'block' }), 'expected a process record, got kind "block"'],
    [
      'a missing field',
      raw({ ...makeProcess(), exe: undefined, formatVersion: 1, kind: 'process' }),
      'process: missing field "exe"',
    ],
    [
      'a bad UUID',
      raw({ ...makeProcess(), processId: 'nope', formatVersion: 1, kind: 'process' }),
      'field "processId" must be a UUID, got "nope"',
    ],
    [
      'a bad time',
      raw({ ...makeProcess(), startTime: '2025-02-30T00:00:00Z', formatVersion: 1, kind: 'process' }),
      'field "startTime" must be an RFC 3339 time',
    ],
    [
      'fractional ticks',
      raw({ ...makeProcess(), startTicks: 1.5, formatVersion: 1, kind: 'process' }),
      'field "startTicks" must be an integer',
    ],
  ])('rejects %s', (_name, bytes, message) => {
    expect(() => decodeProcessInfo(bytes)).toThrow(WireFormatError);
    expect(() => decodeProcessInfo(bytes)).toThrow(message);
  });

  it('validates layouts as data', () => {
    const base = { name: 'M', size: 8, fields: [{ name: 'a', type: 'f64', offset: 0 }] };
    expect(validateLayout(base, 'l')).toEqual(base);
    expect(() => validateLayout({ ...base, fields: [{ name: 'a', type: 'f128', offset: 0 }] }, 'l')).toThrow(
      '"type" must be one of',
    );
    expect(() => validateLayout({ ...base, fields: [{ name: 'a', type: 'f64', offset: 4 }] }, 'l')).toThrow(
      'overruns the message size 8',
    );
    expect(() =>
      validateLayout(
        {
          ...base,
          size: 16,
          fields: [
            { name: 'a', type: 'f64', offset: 0 },
            { name: 'b', type: 'u32', offset: 4 },
          ],
        },
        'l',
      ),
    ).toThrow('overlaps field "a"');
    expect(() =>
      validateLayout({ ...base, fields: [{ name: 's', type: 'string', offset: 0 }] }, 'l'),
    ).toThrow('missing field "bytes"');
    const stream = makeStream(makeProcess().processId);
    const bad = raw({
      ...stream,
      objectsLayouts: [{ name: 'X', size: -1, fields: [] }],
      formatVersion: 1,
      kind: 'stream',
    });
    expect(() => decodeStreamInfo(bad)).toThrow('stream.objectsLayouts[0]: field "size" must be an integer');
  });

  it('rejects block times that go backwards', () => {
    const { block } = makeBlock(makeStream(makeProcess().processId));
    const bytes = encodeBlock({ ...block, endTime: formatRfc3339Ns(1n) });
    expect(() => decodeBlock(bytes)).toThrow('endTime 1970-01-01T00:00:00.000000001Z is before beginTime');
  });

  it('refuses truncated lz4 and a huge declared size before allocating', () => {
    const { block } = makeBlock(makeStream(makeProcess().processId), 1000);
    const part = block.payload.objects;
    expect(() => decompressPart(part.subarray(0, part.length - 5), 'objects')).toThrow(
      'objects: corrupt or truncated lz4 data',
    );
    expect(() => decompressPart(part.subarray(0, 2), 'objects')).toThrow('truncated (no size prefix)');
    const huge = Buffer.from(part);
    huge.writeUInt32LE(0xfffffff0, 0);
    expect(() => decompressPart(huge, 'objects', 1 << 20)).toThrow(
      'declares 4294967280 decompressed bytes, over the limit of 1048576',
    );
    const lying = Buffer.from(part);
    lying.writeUInt32LE(64_000, 0);
    expect(() => decompressPart(lying, 'objects')).toThrow('declares 64000 bytes but decompresses to 32000');
  });

  it('parses and formats RFC 3339 times exactly to the nanosecond', () => {
    expect(rfc3339ToEpochNs('1970-01-01T00:00:01.000000001Z')).toBe(1_000_000_001n);
    expect(formatRfc3339Ns(-1n)).toBe('1969-12-31T23:59:59.999999999Z');
    expect(normalizeRfc3339('2024-02-29T23:59:59-00:30')).toBe('2024-03-01T00:29:59.000000000Z');
    expect(rfc3339ToEpochNs('2261-12-31T23:59:59.999999999Z')).toBe(MAX_EPOCH_NS);
    expect(rfc3339ToEpochNs('1678-01-01T00:00:00Z')).toBe(MIN_EPOCH_NS);
    for (const bad of [
      '2023-02-29T00:00:00Z',
      '2025-01-01T24:00:00Z',
      '2025-01-01T00:00:00',
      '2025-01-01 00:00:00Z',
      '0000-01-01T00:00:00+01:00',
      // Past the years 1678 to 2261 (the analytics' times are 64-bit nanoseconds).
      '2262-01-01T00:00:00Z',
      '1677-12-31T23:59:59.999999999Z',
      '2300-01-01T00:00:00Z',
    ]) {
      expect(normalizeRfc3339(bad), bad).toBeUndefined();
    }
  });

  it('normalizes an already normalized time to itself, and still refuses bad times of the same day', () => {
    const day = '2025-03-04';
    expect(normalizeRfc3339(`${day}T05:06:07+00:00`)).toBe(`${day}T05:06:07.000000000Z`);
    // The same day again, normalized: the fast path; out-of-range fields must still be refused.
    for (const bad of ['T24:00:00.000000000Z', 'T23:60:00.000000000Z', 'T23:59:60.000000000Z']) {
      expect(normalizeRfc3339(`${day}${bad}`), bad).toBeUndefined();
    }
    expect(normalizeRfc3339(`${day}T23:59:59.5Z`)).toBe(`${day}T23:59:59.500000000Z`);
    // A day past the range, of a valid form: refused however often it is asked.
    expect(normalizeRfc3339('2262-01-01T00:00:00.000000000Z')).toBeUndefined();
    expect(normalizeRfc3339('2262-01-01T00:00:00.000000000Z')).toBeUndefined();
    fc.assert(
      fc.property(fc.bigInt({ min: MIN_EPOCH_NS, max: MAX_EPOCH_NS }), (ns) => {
        const text = formatRfc3339Ns(ns);
        // Twice: once maybe the long way, then on a day it has just validated.
        expect(normalizeRfc3339(text)).toBe(text);
        expect(normalizeRfc3339(text)).toBe(text);
        expect(rfc3339ToEpochNs(text)).toBe(ns);
      }),
    );
  });
});
