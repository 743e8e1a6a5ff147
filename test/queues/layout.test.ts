import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, defineMessage, Layout, LayoutError, SeqlockQueue } from '../../src/index.js';

const Everything = defineMessage('Everything', {
  f64: 'f64',
  f32: 'f32',
  i8: 'i8',
  u8: 'u8',
  i16: 'i16',
  u16: 'u16',
  i32: 'i32',
  u32: 'u32',
  i64: 'i64',
  u64: 'u64',
  flag: 'bool',
  name: { type: 'string', bytes: 12 },
  blob: { type: 'bytes', bytes: 5 },
});
type Everything = ReturnType<typeof Everything.create>;

/** Publishes one message through a real queue and reads it back. */
function roundTrip(value: Everything): Everything {
  const queue = SeqlockQueue.create(Everything, { capacity: 4 });
  const producer = queue.producer();
  const consumer = queue.consumer();
  producer.publish(value);
  const out = Everything.create();
  expect(consumer.poll(out)).toBe(true);
  return out;
}

const base: Everything = {
  f64: 0,
  f32: 0,
  i8: 0,
  u8: 0,
  i16: 0,
  u16: 0,
  i32: 0,
  u32: 0,
  i64: 0n,
  u64: 0n,
  flag: false,
  name: '',
  blob: new Uint8Array(5),
};

describe('field types round-trip', () => {
  it('f64 keeps NaN, -0, ±Infinity and the extremes exactly', () => {
    for (const f64 of [
      Number.NaN,
      -0,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      -Number.MAX_VALUE,
      0.1,
    ]) {
      expect(Object.is(roundTrip({ ...base, f64 }).f64, f64)).toBe(true);
    }
  });

  it('f32 stores the nearest float32', () => {
    for (const f32 of [
      Number.NaN,
      -0,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      3.4028234663852886e38,
      0.1,
    ]) {
      expect(Object.is(roundTrip({ ...base, f32 }).f32, Math.fround(f32))).toBe(true);
    }
  });

  it('integers keep their minimum and maximum', () => {
    const extremes = {
      i8: [-128, 127],
      u8: [0, 255],
      i16: [-32768, 32767],
      u16: [0, 65535],
      i32: [-2147483648, 2147483647],
      u32: [0, 4294967295],
    } as const;
    for (const [field, values] of Object.entries(extremes)) {
      for (const v of values) {
        expect(roundTrip({ ...base, [field]: v })[field as keyof typeof extremes]).toBe(v);
      }
    }
  });

  it('i64 and u64 keep bigint extremes', () => {
    for (const i64 of [-(2n ** 63n), 2n ** 63n - 1n, -1n, 0n])
      expect(roundTrip({ ...base, i64 }).i64).toBe(i64);
    for (const u64 of [0n, 2n ** 64n - 1n, 2n ** 63n]) expect(roundTrip({ ...base, u64 }).u64).toBe(u64);
  });

  it('bool, bytes (zero-padded) and strings at the byte limit with multi-byte characters', () => {
    const out = roundTrip({ ...base, flag: true, name: 'é€😀ab', blob: new Uint8Array([1, 2, 3]) });
    expect(Buffer.byteLength('é€😀ab')).toBe(11);
    expect(out.flag).toBe(true);
    expect(out.name).toBe('é€😀ab');
    expect([...out.blob]).toEqual([1, 2, 3, 0, 0]);
    const exact = '€€€€'; // 12 bytes, exactly the limit
    expect(roundTrip({ ...base, name: exact }).name).toBe(exact);
    expect(roundTrip({ ...base, name: '' }).name).toBe('');
  });

  it('decoding reuses the string object while the bytes do not change', () => {
    const queue = SeqlockQueue.create(Everything, { capacity: 8 });
    const producer = queue.producer();
    const consumer = queue.consumer();
    const out = Everything.create();
    producer.publish({ ...base, name: `AB${'C'}` });
    producer.publish({ ...base, name: `A${'BC'}` });
    producer.publish({ ...base, name: 'XYZ' });
    expect(consumer.poll(out)).toBe(true);
    const first = out.name;
    expect(consumer.poll(out)).toBe(true);
    expect(out.name).toBe(first);
    expect(consumer.poll(out)).toBe(true);
    expect(out.name).toBe('XYZ');
  });
});

describe('bad layouts and values get a clear error naming the culprit', () => {
  it('an unknown field type', () => {
    expect(() => defineMessage('Bad', { x: 'f128' as never })).toThrow(
      /field 'x' of message 'Bad': unknown field type 'f128'/,
    );
    expect(() => defineMessage('Bad', { x: 'constructor' as never })).toThrow(
      /unknown field type 'constructor'/,
    );
  });

  it('a string without a valid size', () => {
    expect(() => defineMessage('Bad', { s: { type: 'string', bytes: 0 } })).toThrow(LayoutError);
    expect(() => defineMessage('Bad', { s: { type: 'string' } as never })).toThrow(/field 's'.*'bytes'/);
  });

  it('a message without fields, or with a field name that is not an identifier', () => {
    expect(() => defineMessage('Empty', {})).toThrow(/no fields/);
    expect(() => defineMessage('Bad', { 'a-b': 'u8' })).toThrow(/field 'a-b'/);
  });

  const Small = defineMessage('Small', { n: 'u8', s: { type: 'string', bytes: 4 }, big: 'i64', ok: 'bool' });
  const good = { n: 1, s: 'abcd', big: 1n, ok: true };
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      'a string over its size',
      { s: 'abcde' },
      /field 's' of message 'Small': expected a string of at most 4 UTF-8 bytes/,
    ],
    [
      'a multi-byte string over its size',
      { s: 'ab€' },
      /field 's'.*at most 4 UTF-8 bytes \(this one has 5\)/,
    ],
    ['a number that is not an integer', { n: 1.5 }, /field 'n'.*an integer from 0 to 255/],
    ['an integer out of range', { n: 256 }, /field 'n'.*an integer from 0 to 255, got 256/],
    ['a number where a bigint belongs', { big: 1 }, /field 'big'.*a bigint/],
    ['a bigint out of range', { big: 2n ** 63n }, /field 'big'.*-2\^63 to 2\^63-1/],
    ['a string where a boolean belongs', { ok: 'yes' }, /field 'ok'.*a boolean, got "yes"/],
    ['a missing field', { n: undefined }, /field 'n'.*got undefined/],
  ];
  for (const [what, patch, message] of cases) {
    it(`${what} is refused and the queue is left untouched`, () => {
      const queue = SeqlockQueue.create(Small, { capacity: 4 });
      const producer = queue.producer();
      const consumer = queue.consumer();
      expect(() => producer.publish({ ...good, ...patch } as typeof good)).toThrow(message);
      producer.publish(good);
      const out = Small.create();
      expect(consumer.poll(out)).toBe(true);
      expect(out).toEqual(good);
      expect(consumer.poll(out)).toBe(false);
      expect(consumer.lost).toBe(0);
    });
  }

  it('a capacity that is not a power of two names the option', () => {
    expect(() => SeqlockQueue.create(Small, { capacity: 1000 })).toThrow(ConfigError);
    expect(() => SeqlockQueue.create(Small, { capacity: 1000 })).toThrow(
      /capacity must be a power of two.*got 1000/,
    );
    expect(() => SeqlockQueue.create(Small, { capacity: 0 })).toThrow(/capacity/);
  });
});

describe('layouts as data', () => {
  it('fields are placed largest alignment first, and the plan is pinned', () => {
    expect(Everything.describe()).toEqual({
      name: 'Everything',
      size: 64,
      fields: [
        { name: 'f64', type: 'f64', offset: 0 },
        { name: 'i64', type: 'i64', offset: 8 },
        { name: 'u64', type: 'u64', offset: 16 },
        { name: 'f32', type: 'f32', offset: 24 },
        { name: 'i32', type: 'i32', offset: 28 },
        { name: 'u32', type: 'u32', offset: 32 },
        { name: 'i16', type: 'i16', offset: 36 },
        { name: 'u16', type: 'u16', offset: 38 },
        { name: 'name', type: 'string', offset: 40, bytes: 12 },
        { name: 'i8', type: 'i8', offset: 54 },
        { name: 'u8', type: 'u8', offset: 55 },
        { name: 'flag', type: 'bool', offset: 56 },
        { name: 'blob', type: 'bytes', offset: 57, bytes: 5 },
      ],
    });
  });

  it('a description rebuilds an equivalent layout that decodes the same bytes', () => {
    const copy = Layout.fromDescription(JSON.parse(JSON.stringify(Everything.describe())));
    expect(copy.fingerprint).toBe(Everything.fingerprint);
    expect(copy.size).toBe(Everything.size);
    const queue = SeqlockQueue.create(Everything, { capacity: 4 });
    const same = SeqlockQueue.attach(copy, queue.buffer);
    const consumer = same.consumer();
    queue.producer().publish({ ...base, u32: 7, name: 'x' });
    const out = copy.create();
    expect(consumer.poll(out)).toBe(true);
    expect(out).toMatchObject({ u32: 7, name: 'x' });
  });

  it('strings of odd sizes are padded so every length word stays aligned', () => {
    const Odd = defineMessage('Odd', {
      a: { type: 'string', bytes: 3 },
      b: { type: 'string', bytes: 1 },
      c: 'u8',
    });
    expect(Odd.describe().fields.map((f) => [f.name, f.offset])).toEqual([
      ['a', 0],
      ['b', 6],
      ['c', 9],
    ]);
    const queue = SeqlockQueue.create(Odd, { capacity: 2 });
    const consumer = queue.consumer();
    queue.producer().publish({ a: 'xé', b: 'y', c: 7 });
    const out = Odd.create();
    expect(consumer.poll(out)).toBe(true);
    expect(out).toEqual({ a: 'xé', b: 'y', c: 7 });
  });

  it('a layout named with a reserved word works; a field named __proto__ and a size past 16 MiB are refused', () => {
    // Its class once took the name as it was: a SyntaxError from generated code.
    for (const name of ['class', 'eval', 'delete', 'let', 'yield', '7up']) {
      const layout = defineMessage(name, { n: 'u32' });
      const queue = SeqlockQueue.create(layout, { capacity: 2 });
      queue.producer().publish({ n: 7 });
      const out = layout.create();
      expect(queue.consumer({ from: 0 }).poll(out)).toBe(true);
      expect(out.n).toBe(7);
      expect(Layout.fromDescription(layout.describe()).name).toBe(name);
    }
    // `o.__proto__ = v` sets a prototype: the field was never read back.
    // An own key '__proto__' (a literal would set the prototype), as JSON.parse makes it.
    const fields = JSON.parse('{ "n": "u8", "__proto__": "u8" }') as Record<string, 'u8'>;
    expect(() => defineMessage('Proto', fields)).toThrow(/'__proto__' cannot name a field/);
    expect(() =>
      Layout.fromDescription({
        name: 'Proto',
        size: 8,
        fields: [{ name: '__proto__', type: 'u8', offset: 0 }],
      }),
    ).toThrow(LayoutError);
    // A description read back from a lake cannot make this process allocate what it says.
    expect(() =>
      Layout.fromDescription({ name: 'Huge', size: 2 ** 40, fields: [{ name: 'a', type: 'u8', offset: 0 }] }),
    ).toThrow(/size must be a multiple of 8 from 0 to 16777216/);
  });

  it('a description with overlapping fields is refused', () => {
    expect(() =>
      Layout.fromDescription({
        name: 'Overlap',
        size: 8,
        fields: [
          { name: 'a', type: 'u32', offset: 0 },
          { name: 'b', type: 'u32', offset: 2 },
        ],
      }),
    ).toThrow(/field 'b'/);
  });

  it('a description whose field names are not strings is refused, not read as their String()', () => {
    // Both named ['a']: each passed as 'a', and both decoded into o.a.
    const twice = () =>
      Layout.fromDescription({
        name: 'Twice',
        size: 16,
        fields: [
          { name: ['a'] as never, type: 'f64', offset: 0 },
          { name: ['a'] as never, type: 'f64', offset: 8 },
        ],
      });
    expect(twice).toThrow(LayoutError);
    expect(twice).toThrow("layout 'Twice': a field's name must be a string, got an array");
    expect(() => Layout.fromDescription({ name: 'Null', size: 8, fields: [null as never] })).toThrow(
      "layout 'Null': a field must be { name, type, offset }, got null",
    );
    expect(() =>
      Layout.fromDescription({
        name: 'Same',
        size: 16,
        fields: [
          { name: 'a', type: 'f64', offset: 0 },
          { name: 'a', type: 'f64', offset: 8 },
        ],
      }),
    ).toThrow("layout 'Same': field 'a' appears twice");
  });
});

describe('the check before a publish (fast path and explanation agree)', () => {
  const RANGES: Record<string, readonly [number, number]> = {
    i8: [-128, 127],
    u8: [0, 255],
    i16: [-32768, 32767],
    u16: [0, 65535],
    i32: [-(2 ** 31), 2 ** 31 - 1],
    u32: [0, 2 ** 32 - 1],
  };
  let valueOfCalls = 0;
  const tricky = { valueOf: () => ++valueOfCalls };
  // Numbers near every range's edges, fractions, NaN, -0, infinities, and values of other types.
  const candidate = fc.oneof(
    fc.integer({ min: -(2 ** 33), max: 2 ** 33 }),
    fc.constantFrom(...Object.values(RANGES).flatMap(([lo, hi]) => [lo - 1, lo, hi, hi + 1])),
    fc.double(),
    fc.constantFrom(Number.NaN, -0, Number.POSITIVE_INFINITY, 0.5, '1', 1n, true, null, undefined, tricky),
  );

  it('an integer field takes exactly the integers of its range, and never runs valueOf', () => {
    const queue = SeqlockQueue.create(Everything, { capacity: 4 });
    const producer = queue.producer();
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(RANGES)), candidate, (field, value) => {
        const [lo, hi] = RANGES[field]!;
        const fits = typeof value === 'number' && Number.isInteger(value) && value >= lo && value <= hi;
        const message = { ...base, [field]: value } as Everything;
        if (fits) expect(() => producer.publish(message)).not.toThrow();
        else
          expect(() => producer.publish(message)).toThrow(
            new RegExp(`field '${field}' of message 'Everything': expected an integer from ${lo} to ${hi}`),
          );
      }),
      { numRuns: 2000 },
    );
    expect(valueOfCalls).toBe(0);
  });

  it('the other field types refuse what does not fit, naming the field', () => {
    const queue = SeqlockQueue.create(Everything, { capacity: 4 });
    const producer = queue.producer();
    const wrong: Array<[keyof Everything, unknown, RegExp]> = [
      ['f64', '1', /field 'f64'.*a number/],
      ['f32', 1n, /field 'f32'.*a number/],
      ['i64', 2n ** 63n, /field 'i64'.*-2\^63 to 2\^63-1/],
      ['u64', -1n, /field 'u64'.*0 to 2\^64-1/],
      ['u64', 1, /field 'u64'.*a bigint/],
      ['flag', 0, /field 'flag'.*a boolean/],
      ['name', 'x'.repeat(13), /field 'name'.*at most 12 UTF-8 bytes \(this one has 13\)/],
      ['blob', new Uint8Array(6), /field 'blob'.*a Uint8Array of at most 5 bytes/],
      ['blob', [1, 2], /field 'blob'.*a Uint8Array/],
    ];
    for (const [field, value, message] of wrong) {
      expect(() => producer.publish({ ...base, [field]: value } as Everything)).toThrow(message);
    }
    // The string measured last is cached: the same string passes again, a longer one does not.
    producer.publish({ ...base, name: 'x'.repeat(12) });
    producer.publish({ ...base, name: 'x'.repeat(12) });
    expect(() => producer.publish({ ...base, name: '€'.repeat(5) })).toThrow(/this one has 15/);
    expect(() => producer.publish(null as unknown as Everything)).toThrow(
      /message 'Everything': expected an object/,
    );
  });
});
