import { describe, expect, it } from 'vitest';
import { fieldValue } from '../../src/cli/replay-pages.js';
import { LayoutError } from '../../src/errors.js';
import type { FieldDescription } from '../../src/queues/field-types.js';

const field = (type: string, bytes?: number) =>
  ({ name: 'x', type, offset: 0, ...(bytes ? { bytes } : {}) }) as FieldDescription;

describe('fieldValue: a recorded value, as text, back as the replayed layout takes it', () => {
  it('reads back every type exactly', () => {
    expect(Object.is(fieldValue(field('f64'), '-0.0'), -0)).toBe(true);
    expect(fieldValue(field('f64'), 'nan')).toBeNaN();
    expect(fieldValue(field('f64'), '-inf')).toBe(-Infinity);
    expect(fieldValue(field('f64'), '1.7976931348623157e+308')).toBe(1.7976931348623157e308);
    expect(fieldValue(field('f64'), '5e-324')).toBe(5e-324);
    expect(fieldValue(field('f32'), '0.3333333432674408')).toBe(Math.fround(1 / 3));
    expect(fieldValue(field('i64'), '-9223372036854775808')).toBe(-(2n ** 63n));
    expect(fieldValue(field('u64'), '18446744073709551615')).toBe(2n ** 64n - 1n);
    expect(fieldValue(field('i32'), '-2147483648')).toBe(-(2 ** 31));
    expect(fieldValue(field('bool'), 'true')).toBe(true);
    expect(fieldValue(field('bool'), 'false')).toBe(false);
    expect(fieldValue(field('bytes', 3), '00FF07')).toEqual(Uint8Array.from([0, 255, 7]));
    expect(fieldValue(field('string', 8), 'ünï 😀')).toBe('ünï 😀');
    expect(fieldValue(field('string', 8), null)).toBe('');
  });

  it('refuses, naming the field, a recorded value that is none of the replayed type (instead of a made-up 0 or false)', () => {
    const refused: [string, unknown][] = [
      ['i64', 'nan'],
      ['i64', '1.5'],
      ['u64', 'inf'],
      ['bool', '1'],
      ['bool', 'ok'],
      ['u8', ''],
      ['i32', '0x10'],
      ['i32', 'true'],
      ['f64', null],
      ['bytes', 'xyz'],
    ];
    for (const [type, text] of refused) {
      expect(() => fieldValue(field(type, 4), text), `${type} ← ${String(text)}`).toThrow(LayoutError);
    }
    expect(() => fieldValue(field('i64'), 'nan')).toThrow(
      "field 'x' is an i64 in the replayed layout: the recorded 'nan' is none",
    );
    expect(() => fieldValue(field('bool'), '1')).toThrow(
      "field 'x' is a bool in the replayed layout: the recorded '1' is none",
    );
  });
});
