import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { abridge } from '../../src/cli/format.js';
import { parseFields as diffFields, fieldDifferences } from '../../src/cli/replay-diff.js';
import { parseDuckJson } from '../../src/telemetry/analytics/duck-json.js';
import { runDorsal } from './cli-helpers.js';
import { tempDir } from './fixtures.js';

describe('numbers of recorded fields, shown as they were recorded', () => {
  it('parseDuckJson keeps an integer past 2^53 exactly, as its text; the rest as before', () => {
    const text =
      '{"u":18446744073709551615,"i":-9223372036854775808,"safe":9007199254740991,"past":9007199254740993,"big":1.8446744073709552e19,"frac":12345678901234567.5,"nan":NaN,"inf":-Infinity,"s":"18446744073709551615","a":[12345678901234567890,1]}';
    expect(parseDuckJson(text)).toEqual({
      u: '18446744073709551615',
      i: '-9223372036854775808',
      safe: 9007199254740991,
      past: '9007199254740993',
      big: 18446744073709552000,
      frac: 12345678901234568,
      nan: Number.NaN,
      inf: Number.NEGATIVE_INFINITY,
      s: '18446744073709551615',
      a: ['12345678901234567890', 1],
    });
    // What it gives is JSON still (a BigInt would not be).
    expect(JSON.parse(JSON.stringify(parseDuckJson(text)))).toMatchObject({ u: '18446744073709551615' });
    // Not JSON stays not JSON.
    expect(() => parseDuckJson('{"a":012345678901234567890}')).toThrow(SyntaxError);
  });

  it("a replay's diff compares and shows such integers as it did: exactly, as text", () => {
    expect(diffFields('{"u":18446744073709551615,"n":1}')).toEqual({ u: '18446744073709551615', n: 1 });
    expect(fieldDifferences('{"u":18446744073709551615}', '{"u":18446744073709551614}')).toEqual([
      { field: 'u', recorded: '18446744073709551615', replayed: '18446744073709551614' },
    ]);
    expect(fieldDifferences('{"u":18446744073709551615}', '{"u":18446744073709551615}')).toEqual([]);
  });

  it('abridge shows a fraction with its integer part whole, never as an integer', () => {
    expect(abridge({ x: 123456789.5 })).toBe('{x: 123456789.5}');
    expect(abridge({ x: 1234567.123456789 })).toBe('{x: 1234567.1}');
    expect(abridge({ x: 999999.7 })).toBe('{x: 999999.7}');
    expect(abridge({ x: 12345.99999 })).toBe('{x: 12346.0}');
    expect(abridge({ x: -2.0000001 })).toBe('{x: -2.0}');
    // As before: 6 significant digits, the integers exactly.
    expect(abridge({ bid: 100.01, q: 1 / 3, tiny: 1.5e-7, n: 1039399 })).toBe(
      '{bid: 100.01, q: 0.333333, tiny: 1.5e-7, n: 1039399}',
    );
    expect(abridge({ nan: Number.NaN, inf: Number.NEGATIVE_INFINITY })).toBe('{nan: NaN, inf: -Infinity}');
  });
});

/**
 * The typed feed records `u64` and `i64` fields at their extremes: `tree` shows them as recorded
 * (18446744073709551615, not 18446744073709552000), in text and in JSON.
 */
describe('dorsal tree of a message with u64 and i64 extremes', () => {
  const { dir, cleanup } = tempDir('dorsal-cli-review-numbers-');

  beforeAll(async () => {
    const run = await runDorsal([
      'run',
      'test/fixtures/replay-stream/typed.system.ts',
      '--seconds',
      '1',
      '--data',
      dir,
    ]);
    expect(run.code, run.stderr).toBe(0);
  }, 120_000);
  afterAll(cleanup);

  it('tree --json and tree show them exactly', async () => {
    // The feed's message 1 (alpha's first): u = 2^64 - 1, i = 2^63 - 1.
    const json = await runDorsal(['tree', '--data', dir, '--message', 'alpha:0', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const trees = JSON.parse(json.stdout) as { root: { fields: Record<string, unknown> } }[];
    expect(trees[0]?.root.fields).toMatchObject({
      n: 1,
      u: '18446744073709551615',
      i: '9223372036854775807',
    });
    const text = await runDorsal(['tree', '--data', dir, '--message', 'alpha:0']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('u: 18446744073709551615');
  }, 60_000);
});
