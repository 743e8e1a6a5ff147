import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitSql } from '../../src/cli/replay-fit.js';
import { playOrderSql, rowValue } from '../../src/cli/replay-pages.js';
import type { Playlist } from '../../src/cli/replay-recording.js';
import { defineMessage } from '../../src/index.js';
import { viewsOf } from '../../src/queues/codec.js';
import type { FieldDescription, FieldSpec } from '../../src/queues/field-types.js';
import type { Layout } from '../../src/queues/layout.js';

/**
 * `dorsal replay` refuses up front a retyped field some recorded value of which does not fit
 * (`fitSql`, one query over the recording), rather than stop mid-run at the first such value
 * (the player: `selectField`'s text, `fieldValue`, the layout's check). The two must agree: a
 * value the check passes that the player refuses stops a replay mid-run, and one it refuses that
 * the player takes refuses a replay that would play. Here every recorded type, at its extremes
 * and odd values, is put to every replayed type, in a real DuckDB. One exception, on purpose: a
 * float into bytes is refused whatever the player would make of it (DuckDB's `hex` of a double
 * is no bytes of it).
 */

/** Recorded types and values (SQL literals), as the stream tables type them. */
const RECORDED: readonly [FieldSpec, string, readonly string[]][] = [
  [
    'f64',
    'DOUBLE',
    [
      '0.0',
      "'-0.0'",
      '1.0',
      '0.5',
      "'nan'",
      "'inf'",
      "'-inf'",
      '1e20',
      '-3.0',
      '70000.0',
      '5e-324',
      '1.7976931348623157e308',
    ],
  ],
  ['f32', 'FLOAT', ['1.0', '0.5', "'nan'", '300.0', '1e10', '-128.0']],
  ['i8', 'TINYINT', ['-128', '127', '0', '-1']],
  ['u8', 'UTINYINT', ['0', '255']],
  ['i16', 'SMALLINT', ['-32768', '32767']],
  ['u16', 'USMALLINT', ['65535', '7']],
  ['i32', 'INTEGER', ['-2147483648', '2147483647', '70000']],
  ['u32', 'UINTEGER', ['4294967295', '300']],
  ['i64', 'BIGINT', ['-9223372036854775808', '9223372036854775807', '5', '-5']],
  ['u64', 'UBIGINT', ['18446744073709551615', '9007199254740993', '0']],
  ['bool', 'BOOLEAN', ['true', 'false']],
  [
    { type: 'string', bytes: 24 },
    'VARCHAR',
    [
      "''",
      "'12'",
      "'-3'",
      "'true'",
      "'abc'",
      "'twelve bytes'",
      "'ünï 😀'",
      "'1e3'",
      "'0.5'",
      "'9223372036854775808'",
      "'ab'",
      "'nan'",
      "' 5'",
      "'.5'",
      'NULL',
    ],
  ],
  [
    { type: 'bytes', bytes: 5 },
    'BLOB',
    ["'\\x01\\x02\\x03\\x04\\x05'::BLOB", "'12\\x00\\x00\\x00'::BLOB", "'12345'::BLOB"],
  ],
];

/** Replayed types. */
const REPLAYED: readonly FieldSpec[] = [
  'f64',
  'f32',
  'i8',
  'u8',
  'i16',
  'u16',
  'i32',
  'u32',
  'i64',
  'u64',
  'bool',
  { type: 'string', bytes: 4 },
  { type: 'string', bytes: 12 },
  { type: 'string', bytes: 40 },
  { type: 'bytes', bytes: 2 },
  { type: 'bytes', bytes: 5 },
  { type: 'bytes', bytes: 8 },
];

const fieldOf = (spec: FieldSpec): FieldDescription => defineMessage('X', { v: spec }).describe().fields[0]!;
const nameOf = (spec: FieldSpec) =>
  typeof spec === 'string' ? spec : `${spec.type}(${'bytes' in spec ? spec.bytes : ''})`;

describe('fitSql agrees with what the replay player takes', () => {
  let instance: DuckDBInstance;
  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
  });
  afterAll(() => instance.closeSync());

  it('for every recorded type and value into every replayed type', async () => {
    const connection = await instance.connect();
    const disagreements: string[] = [];
    let checked = 0;
    let refused = 0;
    for (const [recordedSpec, sqlType, values] of RECORDED) {
      const recorded = fieldOf(recordedSpec);
      for (const literal of values) {
        await connection.run(
          `CREATE OR REPLACE TABLE stream_x AS SELECT 0.0::DOUBLE AS publish_t, 0::BIGINT AS seq, 'a' AS actor, (${literal})::${sqlType} AS v`,
        );
        for (const replayedSpec of REPLAYED) {
          const layout = defineMessage('X', { v: replayedSpec }) as unknown as Layout;
          const replayed = layout.describe().fields[0]!;
          // What the player does with it: select, read back, check against the layout.
          const playlist: Playlist = {
            process: 'p',
            actors: ['a'],
            streams: ['x'],
            layouts: [layout],
            total: 1,
          };
          let takes: boolean;
          try {
            const rows = (await connection.runAndReadAll(playOrderSql(playlist, undefined, 10))).getRows();
            layout.bind(viewsOf(new ArrayBuffer(layout.size))).check(rowValue([replayed], rows[0]!));
            takes = true;
          } catch {
            takes = false;
          }
          const sql = fitSql('"v"', recorded, replayed);
          const fits =
            sql === undefined ||
            (await connection.runAndReadAll(`SELECT ${sql} FROM stream_x`)).getRows()[0]![0] === true;
          checked++;
          if (!takes) refused++;
          if (recorded.type.startsWith('f') && replayed.type === 'bytes') {
            if (fits)
              disagreements.push(`${nameOf(recordedSpec)} ${literal} into ${nameOf(replayedSpec)} fits`);
            continue;
          }
          if (fits !== takes) {
            disagreements.push(
              `${nameOf(recordedSpec)} ${literal} into ${nameOf(replayedSpec)}: the player ${takes ? 'takes' : 'refuses'} it, fitSql ${sql === undefined ? 'says every value fits' : `says ${fits}`}`,
            );
          }
        }
      }
    }
    expect(disagreements).toEqual([]);
    // Both answers were given many times.
    expect(refused).toBeGreaterThan(100);
    expect(checked - refused).toBeGreaterThan(100);
  }, 60_000);
});
