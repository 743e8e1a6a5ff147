import { describe, expect, it } from 'vitest';
import { abridge } from '../../src/cli/format.js';
import { duration, seconds, short } from '../../src/telemetry/views/format.js';
import { SCRIPT } from '../../src/telemetry/views/page-assets.js';

/** What the commands and the pages print of numbers: never in exponent notation, integers exactly. */
describe('numbers as the commands and pages print them', () => {
  it('duration rounds, then picks the unit: no exponent at the edge of a unit', () => {
    expect(duration(999.4)).toBe('999 ns');
    expect(duration(999.6)).toMatch(/^(?:1\.00|0\.999|1\.000) µs$/);
    expect(duration(999_700)).toBe('1.00 ms');
    expect(duration(999_800_000)).toBe('1.00 s');
    expect(duration(999_500_000_000)).toBe('1,000 s');
    expect(duration(1_500_000_000_000)).toBe('1,500 s');
    expect(duration(12_400)).toBe('12.4 µs');
    expect(duration(3_070_000)).toBe('3.07 ms');
    expect(duration(1_200_000_000)).toBe('1.20 s');
    expect(duration(-999_700)).toBe('-1.00 ms');
    expect(duration(Number.NaN)).toBe('—');
  });

  it('short rounds, then picks the unit: no exponent at the edge of a unit', () => {
    expect(short(950)).toBe('950');
    expect(short(9_999.6)).toBe('10.0k');
    expect(short(12_345)).toBe('12.3k');
    expect(short(999_950)).toBe('1.00M');
    expect(short(999_950_000)).toBe('1.00G');
    expect(short(4_560_000)).toBe('4.56M');
    expect(short(1.5e12)).toBe('1,500G');
  });

  it('seconds on an axis: no exponent past 1000 s', () => {
    expect(seconds(0)).toBe('0.00 s');
    expect(seconds(2.5)).toBe('2.50 s');
    expect(seconds(999.7)).toBe('1,000 s');
    expect(seconds(1500)).toBe('1,500 s');
  });

  it("the page's script writes times with the same duration", () => {
    // Its definition: the script's lines from it to the next one's.
    const defined = /\n {2}const fmtNs = [\s\S]*?\n(?= {2}const )/.exec(SCRIPT)![0];
    const fmtNs = new Function(`${defined}; return fmtNs;`)() as (ns: number) => string;
    for (const ns of [830, 999.7, 999_700, 999_800_000, 1_500_000_000_000])
      expect(fmtNs(ns)).toBe(duration(ns));
    expect(fmtNs(999_700)).toBe('1.00 ms');
  });

  it("abridge prints a message's integer fields exactly, fractions to 6 digits", () => {
    expect(abridge({ n: 1_039_399, big: 2 ** 53 - 1, price: 100.0123456 }, 200)).toBe(
      '{n: 1039399, big: 9007199254740991, price: 100.012}',
    );
  });
});
