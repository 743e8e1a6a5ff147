import { Encoder, encode, Tag } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import type { LayoutDescription } from '../../src/index.js';
import { answerFor, MAX_ERROR_MESSAGE } from '../../src/telemetry/ingestion/status.js';
import {
  decodeBlock,
  decodeProcessInfo,
  decodeStreamInfo,
  encodeBlock,
  encodeProcessInfo,
  encodeStreamInfo,
  validateProcessInfo,
  WireFormatError,
} from '../../src/wire.js';
import { makeBlock, makeProcess, makeStream } from './fixtures.js';

/** Plain CBOR as dorsal writes it (no typed-array tags, no records). */
const plain = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true });
const cbor = (value: unknown): Uint8Array => plain.encode(value);

const process = makeProcess();
const stream = makeStream(process.processId);
const { block } = makeBlock(stream, 64);

/** A layout of `n` one-byte fields. */
function wideLayout(n: number): LayoutDescription {
  return {
    name: `Wide${n}`,
    size: n,
    fields: Array.from({ length: n }, (_, i) => ({ name: `f${i}`, type: 'u8' as const, offset: i })),
  };
}

/** Runs `decode` and returns the message of the WireFormatError it must throw. */
function refusal(decode: () => unknown): string {
  try {
    decode();
  } catch (error) {
    expect(error).toBeInstanceOf(WireFormatError);
    return (error as WireFormatError).message;
  }
  throw new Error('decoded without an error');
}

describe('strict CBOR decoding of the wire format', () => {
  it('still decodes what dorsal writes', () => {
    expect(decodeBlock(encodeBlock(block)).blockId).toBe(block.blockId);
    expect(decodeStreamInfo(encodeStreamInfo(stream)).streamId).toBe(stream.streamId);
  });

  it('refuses a block carrying a tag-2 bignum of 512 KiB in an unknown key, without decoding it', () => {
    const bytes = cbor({
      formatVersion: 1,
      kind: 'block',
      ...block,
      extra: new Tag(Buffer.alloc(512 * 1024, 0xff), 2),
    });
    expect(bytes.length).toBeGreaterThan(512 * 1024);
    expect(refusal(() => decodeBlock(bytes))).toMatch(
      /^block: CBOR tag 2 at byte \d+: tags are not accepted$/,
    );
  });

  it('refuses shared references (tags 28/29): one 4,096-field layout referenced 16,384 times', () => {
    const layout = wideLayout(4096);
    const sharing = new Encoder({ useRecords: false, tagUint8Array: false, structuredClone: true });
    const refs = (n: number) => Array.from({ length: n }, () => layout);
    const attack = sharing.encode({
      formatVersion: 1,
      kind: 'stream',
      ...stream,
      objectsLayouts: refs(16_384),
    });
    // The attack's whole point: the bytes are small, what they describe is not.
    expect(attack.length).toBeLessThan(300_000);
    expect(refusal(() => decodeStreamInfo(attack))).toContain('stream: ');
    // Within the array limit, the references themselves are refused.
    const within = sharing.encode({
      formatVersion: 1,
      kind: 'stream',
      ...stream,
      dependenciesLayouts: refs(4096),
      objectsLayouts: refs(4096),
    });
    expect(within.length).toBeLessThan(300_000);
    expect(refusal(() => decodeStreamInfo(within))).toMatch(
      /^stream: CBOR tag 2[89] at byte \d+: tags are not accepted$/,
    );
  });

  it('refuses a record whose properties repeat a key or hold __proto__, and accepts one key per map', () => {
    const record = cbor({ ...process, formatVersion: 1, kind: 'process', properties: { version: '1.2.3' } });
    const at = Buffer.from(record).indexOf('version');
    // The same record with `properties` {"version": …} spelt {"__proto__": …}, then {"a": 1, "a": 2}.
    const proto = Buffer.concat([
      record.subarray(0, at - 1),
      Buffer.from([0x69]),
      Buffer.from('__proto__'),
      record.subarray(at + 7),
    ]);
    expect(refusal(() => decodeProcessInfo(proto))).toMatch(
      /^process: map key "__proto__" at byte \d+ is not accepted$/,
    );
    const twice = cbor({ ...process, formatVersion: 1, kind: 'process', properties: { a: 1, b: 2 } });
    const b = Buffer.from(twice).lastIndexOf('b');
    twice[b] = 'a'.charCodeAt(0);
    expect(refusal(() => decodeProcessInfo(twice))).toMatch(
      /map key "a" at byte \d+ appears twice in its map$/,
    );
    // Keys equal in other maps are fine.
    expect(
      decodeProcessInfo(cbor({ ...process, formatVersion: 1, kind: 'process', properties: { host: 'x' } }))
        .properties,
    ).toEqual({ host: 'x' });
  });

  it('refuses cbor-x records, typed-array tags and dates', () => {
    const records = new Encoder({ useRecords: true }).encode({ formatVersion: 1, kind: 'block', ...block });
    expect(refusal(() => decodeBlock(records))).toContain('tags are not accepted');
    // cbor-x's default encoder tags a Uint8Array (tag 64).
    const typed = encode({
      formatVersion: 1,
      kind: 'block',
      ...block,
      payload: { dependencies: new Uint8Array(block.payload.dependencies), objects: new Uint8Array(8) },
    });
    expect(refusal(() => decodeBlock(typed))).toContain('CBOR tag 64');
    const dated = cbor({ ...process, formatVersion: 1, kind: 'process', when: new Date(0) });
    expect(refusal(() => decodeProcessInfo(dated))).toContain('tags are not accepted');
  });

  it.each([
    [
      'an indefinite-length map',
      [0xbf, 0x61, 0x61, 0x01, 0xff],
      'indefinite-length CBOR item at byte 0 is not accepted',
    ],
    [
      'an indefinite-length string',
      [0x7f, 0x61, 0x61, 0xff],
      'indefinite-length CBOR item at byte 0 is not accepted',
    ],
    ['a reserved head', [0x1c], 'malformed CBOR (reserved head at byte 0)'],
    ['an unassigned simple value', [0xf0], 'CBOR simple value 16 at byte 0 is not accepted'],
    ['a one-byte simple value', [0xf8, 0x20], 'CBOR simple value 24 at byte 0 is not accepted'],
    ['a map with an integer key', [0xa1, 0x01, 0x02], 'map key at byte 1 is not a text string'],
    ['bytes after the item', [0xa0, 0x00], 'malformed CBOR (1 bytes after the end of the item)'],
    ['a truncated float', [0xfb, 0x00, 0x00], 'malformed CBOR (truncated float at byte 0)'],
    [
      'a key twice in one map',
      [0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02],
      'map key "a" at byte 4 appears twice in its map',
    ],
    [
      'the key __proto__',
      [0xa1, 0x69, ...Buffer.from('__proto__'), 0xa0],
      'map key "__proto__" at byte 1 is not accepted',
    ],
  ])('refuses %s', (_name, bytes, message) => {
    expect(refusal(() => decodeProcessInfo(Uint8Array.from(bytes)))).toBe(`process: ${message}`);
  });

  it('checks declared lengths against the limits and the bytes left before allocating', () => {
    // A map declaring 2^32 - 1 entries, an array declaring 2^32 - 1 items, a string of 2^40 bytes.
    const hugeMap = Uint8Array.from([0xba, 0xff, 0xff, 0xff, 0xff]);
    expect(refusal(() => decodeProcessInfo(hugeMap))).toBe(
      'process: map of 4294967295 entries at byte 0 is over the limit of 1024',
    );
    const hugeArray = Uint8Array.from([0xa1, 0x61, 0x61, 0x9a, 0xff, 0xff, 0xff, 0xff]);
    expect(refusal(() => decodeStreamInfo(hugeArray))).toBe(
      'stream: array of 4294967295 entries at byte 3 is over the limit of 4096',
    );
    const longText = Uint8Array.from([0xa1, 0x61, 0x61, 0x7b, 0, 0, 1, 0, 0, 0, 0, 0]);
    expect(refusal(() => decodeProcessInfo(longText))).toBe(
      'process: text string of 1099511627776 bytes at byte 3 is over the limit of 262144',
    );
    // Within the limits, but longer than what is there.
    const lying = Uint8Array.from([0xa1, 0x61, 0x61, 0x99, 0x01, 0x00, 0x01]);
    expect(refusal(() => decodeProcessInfo(lying))).toBe(
      'process: malformed CBOR (array at byte 3 declares 256 entries, past the end)',
    );
    const lyingBytes = Uint8Array.from([0xa1, 0x61, 0x61, 0x5a, 0x00, 0x10, 0x00, 0x00, 0x01]);
    expect(refusal(() => decodeBlock(lyingBytes))).toBe(
      'block: malformed CBOR (byte string at byte 3 declares 1048576 bytes, past the end)',
    );
  });

  it('caps nesting depth and the number of items', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 9; i++) deep = [deep];
    expect(refusal(() => decodeProcessInfo(cbor({ ...process, x: deep })))).toMatch(
      /^process: CBOR nested deeper than 8 levels at byte \d+$/,
    );
    const many = Array.from({ length: 50 }, () => Array.from({ length: 4096 }, () => 0));
    expect(refusal(() => decodeProcessInfo(cbor({ ...process, x: many })))).toBe(
      'process: more than 200000 CBOR items',
    );
    const blockItems = Array.from({ length: 60 }, () => [1, 2, 3, 4, 5]);
    expect(
      refusal(() => decodeBlock(cbor({ formatVersion: 1, kind: 'block', ...block, x: blockItems }))),
    ).toBe('block: more than 256 CBOR items');
  });

  it('caps layouts per stream and fields across them', () => {
    const tooMany = cbor({
      ...stream,
      formatVersion: 1,
      kind: 'stream',
      objectsLayouts: Array.from({ length: 1025 }, (_, i) => ({ ...wideLayout(1), name: `L${i}` })),
    });
    expect(refusal(() => decodeStreamInfo(tooMany))).toBe(
      'stream: field "objectsLayouts" must be an array of at most 1024 items, got array(1025)',
    );
    const wide = cbor({
      ...stream,
      formatVersion: 1,
      kind: 'stream',
      dependenciesLayouts: [wideLayout(4096), wideLayout(4096)],
      objectsLayouts: [wideLayout(4096), wideLayout(4096), wideLayout(1)],
    });
    expect(refusal(() => decodeStreamInfo(wide))).toBe(
      'stream: its layouts have 16385 fields, over the limit of 16384',
    );
    expect(
      decodeStreamInfo(
        cbor({ ...stream, formatVersion: 1, kind: 'stream', objectsLayouts: [wideLayout(4096)] }),
      ).objectsLayouts[0]?.fields,
    ).toHaveLength(4096);
  });

  it('refuses text a database column cannot hold as sent: U+0000, a lone surrogate', () => {
    // Over CBOR: PostgreSQL's text refuses U+0000 (the record was answered 503, retried for ever).
    expect(() => decodeProcessInfo(encodeProcessInfo({ ...process, exe: 'a\u0000b' }))).toThrow(
      /^process: field "exe" must be text without U\+0000, got "a\\u0000b"$/,
    );
    expect(() => decodeProcessInfo(encodeProcessInfo({ ...process, host: '\u0000' }))).toThrow(
      WireFormatError,
    );
    // In-process (cbor-x makes U+FFFD of one over the wire): stored as U+FFFD, the same record
    // sent again clashed with itself.
    expect(() => validateProcessInfo({ ...process, username: 'x\ud800' })).toThrow(
      /^process: field "username" must be well-formed Unicode \(no lone surrogate\)/,
    );
    // A pair is a character like any other; U+0000 in a property is JSON's to carry.
    const fine = { ...process, exe: 'run \u{1F600}', properties: { note: 'a\u0000b' } };
    expect(validateProcessInfo(fine)).toMatchObject({
      exe: 'run \u{1F600}',
      properties: { note: 'a\u0000b' },
    });
  });

  it('keeps error messages short whatever the client sent', () => {
    const key = 'k'.repeat(1000);
    const message = refusal(() =>
      decodeProcessInfo(cbor({ ...process, formatVersion: 1, kind: 'process', properties: { [key]: 1 } })),
    );
    expect(message).toBe(`process: field "properties.${'k'.repeat(60)}…" must be a string, got 1`);
    const long = new WireFormatError('x'.repeat(100_000));
    const answer = answerFor(long);
    expect(answer.status).toBe(400);
    expect(answer.body.error.message.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE);
    expect(answer.body.error.message.endsWith('…')).toBe(true);
  });
});
