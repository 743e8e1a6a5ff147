import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { fieldValue, playOrderPages, playTimeOf } from '../../src/cli/replay-pages.js';
import { LayoutError } from '../../src/errors.js';
import { defineMessage } from '../../src/index.js';
import type { FieldDescription } from '../../src/queues/field-types.js';
import type { Layout } from '../../src/queues/layout.js';

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

/**
 * The analytics' `query` over a DuckDB connection as a server answers it: `limit` rows at most
 * (and the scope's `maxRows`), through JSON when `json` (where NaN and ±inf become null, and a
 * BIGINT a number). `onQuery` sees each statement first.
 */
function answering(
  c: DuckDBConnection,
  limit = Number.POSITIVE_INFINITY,
  json = false,
  onQuery: (sql: string) => void = () => {},
): never {
  return {
    async query(sql: string, scope: { maxRows: number }) {
      onQuery(sql);
      const rows = (await c.runAndReadAll(sql)).getRowsJS();
      const cut = Math.min(scope.maxRows, limit);
      const answer = { rows: rows.slice(0, cut), truncated: rows.length > cut };
      return json
        ? JSON.parse(JSON.stringify(answer, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)))
        : answer;
    },
  } as never;
}

describe('playOrderPages: the play order (play time, stream, seq) in keyset pages', () => {
  /**
   * Two stream tables with ties within and across streams, -0 and a negative time, ±inf and NaNs,
   * times that go back within a stream (as two producers of one stream may stamp them), and a
   * stream whose first time is not a number.
   */
  async function lake(): Promise<DuckDBConnection> {
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    await c.run(`CREATE TABLE stream_alpha AS SELECT * FROM (VALUES
      (-5::DOUBLE, 0, 'feed', 0), (0::DOUBLE, 1, 'feed', 1), ('-0'::DOUBLE, 2, 'feed', 2), (0::DOUBLE, 3, 'feed', 3),
      (7::DOUBLE, 4, 'feed', 4), (7::DOUBLE, 5, 'feed', 5), (7::DOUBLE, 6, 'feed', 6), (1e300::DOUBLE, 7, 'feed', 7),
      ('inf'::DOUBLE, 8, 'feed', 8), ('nan'::DOUBLE, 9, 'feed', 9), ('nan'::DOUBLE, 10, 'feed', 10),
      (1::DOUBLE, 11, 'other', 11)) t(publish_t, seq, actor, v)`);
    await c.run(`CREATE TABLE stream_beta AS SELECT * FROM (VALUES
      ('nan'::DOUBLE, 0, 'feed', 100), (7::DOUBLE, 1, 'feed', 101), (7::DOUBLE, 2, 'feed', 102),
      ('-inf'::DOUBLE, 3, 'feed', 103), ('nan'::DOUBLE, 4, 'feed', 104)) t(publish_t, seq, actor, v)`);
    return c;
  }
  // Each stream in seq order, merged by play time: the greatest finite time of the stream so far
  // (-inf before the first), whatever its own (beta #3 at -inf plays after beta #2 at 7).
  const EXPECTED = '1:0 0:0 0:1 0:2 0:3 0:4 0:5 0:6 1:1 1:2 1:3 1:4 0:7 0:8 0:9 0:10'.split(' ');

  it('every message once, in order, whatever the server row limit (1 to all) and through JSON (where NaN and inf are null)', async () => {
    const c = await lake();
    const V = defineMessage('V', { v: 'u32' }) as unknown as Layout;
    for (const limit of [1, 2, 3, 5, 100]) {
      for (const json of [false, true]) {
        let queries = 0;
        const analytics = answering(c, limit, json, () => {
          if (++queries > 100) throw new Error('the paging goes round');
        });
        const playlist = {
          process: 'p',
          actors: ['feed'],
          streams: ['alpha', 'beta'],
          layouts: [V, V],
          total: 16,
        };
        const played: string[] = [];
        const times: number[] = [];
        for await (const page of playOrderPages(analytics, playlist)) {
          for (const row of page) {
            played.push(`${row[1]}:${row[2]}`);
            times.push(playTimeOf(row));
          }
        }
        expect(played, `limit ${limit}, json ${json}`).toEqual(EXPECTED);
        expect(times.slice(0, 2)).toEqual([-Infinity, -5]);
        // (A -0 comes back as 0 or -0, as DuckDB's sort has it: equal doubles, the order holds.)
        expect(times[3]).toBe(0);
        expect(times.slice(5, 12)).toEqual(new Array(7).fill(7));
        expect(times.slice(12)).toEqual(new Array(4).fill(1e300));
      }
    }
  });

  it('every message once, in order, read in windows (pages of 1 to 5: ties, -0, ±inf and NaNs at and past their ends), whatever the total the playlist says', async () => {
    const c = await lake();
    const V = defineMessage('V', { v: 'u32' }) as unknown as Layout;
    for (const page of [1, 2, 3, 5]) {
      for (const limit of new Set([1, page])) {
        for (const total of [16, 160, 5]) {
          for (const json of [false, true]) {
            const analytics = answering(c, limit, json);
            const playlist = {
              process: 'p',
              actors: ['feed'],
              streams: ['alpha', 'beta'],
              layouts: [V, V],
              total,
            };
            const played: string[] = [];
            for await (const rows of playOrderPages(analytics, playlist, page)) {
              for (const row of rows) played.push(`${row[1]}:${row[2]}`);
            }
            expect(played, `page ${page}, limit ${limit}, total ${total}, json ${json}`).toEqual(EXPECTED);
          }
        }
      }
    }
  });

  it('cuts 1 M messages into 2,000 windows of 500 from one sort of their times (the cost of quantile_disc of 2,000 fractions, rows times windows, is in the commit that left it: 12 s here)', async () => {
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    await c.run(
      `CREATE TABLE stream_alpha AS SELECT (i * 1000 + i % 7)::DOUBLE AS publish_t, i AS seq, 'feed' AS actor, i AS v FROM range(1000000) r(i)`,
    );
    const V = defineMessage('V', { v: 'u32' }) as unknown as Layout;
    const playlist = { process: 'p', actors: ['feed'], streams: ['alpha'], layouts: [V], total: 1_000_000 };
    const queries: string[] = [];
    const analytics = answering(c, undefined, false, (sql) => queries.push(sql));
    const pages = playOrderPages(analytics, playlist, 500);
    const first = await pages.next();
    await pages.return(undefined);
    // 2,000 windows of 500 rows: the first page is the first window's, cut at its end (the
    // 501st message), where every window ends asked in one query whose SQL does not grow with
    // the windows (2,000 ends as literals passed a server's 64 KiB of SQL).
    expect(queries).toHaveLength(2);
    expect(queries[0]!.length).toBeLessThan(2000);
    expect(queries[1]).toContain('seq < 500');
    expect(first.value).toHaveLength(500);
    expect(queries[0]).not.toContain('quantile');
  });

  it('reads each stream from where it stands, a page at most per query, in windows of play time, whatever the bursts and gaps (keyset pages alone sorted every row after their start)', async () => {
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    // 2,000 messages a ms apart, then a gap of 10 s, a burst of 600 at one instant, 400 more.
    const times = [
      ...Array.from({ length: 2000 }, (_, i) => i * 1e6),
      ...Array.from({ length: 600 }, () => 12e9),
      ...Array.from({ length: 400 }, (_, i) => 12e9 + (i + 1) * 1e6),
    ];
    await c.run(
      `CREATE TABLE stream_alpha AS SELECT t::DOUBLE AS publish_t, seq, 'feed' AS actor, seq AS v FROM (SELECT unnest([${times.join(', ')}]) AS t, unnest(range(${times.length})) AS seq)`,
    );
    const V = defineMessage('V', { v: 'u32' }) as unknown as Layout;
    const playlist = {
      process: 'p',
      actors: ['feed'],
      streams: ['alpha'],
      layouts: [V],
      total: times.length,
    };
    const page = 50;
    for (const limit of [page, 20]) {
      const pages: string[] = [];
      const analytics = answering(c, limit, false, (sql) => {
        if (sql.includes('ORDER BY seq LIMIT')) pages.push(sql);
      });
      const played: number[] = [];
      for await (const rows of playOrderPages(analytics, playlist, page)) {
        for (const row of rows) played.push(Number(row[2]));
      }
      expect(played, `limit ${limit}`).toEqual(times.map((_, i) => i));
      // Every page's query reads the stream from the seq it stands at, a page of it at most (no
      // sort of the rows after it), bounded by its window's end but in the last window.
      expect(pages.slice(1).every((sql) => /seq > \d+/.test(sql))).toBe(true);
      expect(pages.every((sql) => sql.includes(`ORDER BY seq LIMIT ${page})`))).toBe(true);
      // Bounded by a constant seq, not by a query of the rest of the stream at each page (which
      // made reading a recording cost the square of its length again).
      expect(pages.filter((sql) => /seq < \d+/.test(sql)).length).toBeGreaterThan(10);
      expect(pages.some((sql) => sql.includes('min(seq)'))).toBe(false);
      // Windows all the way, the burst at one instant too (cut by seq).
      const windows = new Set(pages.map((sql) => /seq < (\d+)/.exec(sql)?.[1]).filter(Boolean)).size + 1;
      expect(windows).toBeGreaterThan(times.length / (page * 0.8) - 2);
      expect(pages.length).toBeLessThan(times.length / limit + windows + 10);
    }
  });

  it('asks nothing a server would refuse for its length, however many windows and streams (2,000 windows of 50 streams)', async () => {
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    const streams = Array.from({ length: 50 }, (_, i) => `s${String(i).padStart(2, '0')}`);
    for (const [i, name] of streams.entries()) {
      await c.run(
        `CREATE TABLE stream_${name} AS SELECT (seq * 50 + ${i})::DOUBLE AS publish_t, seq, 'feed' AS actor, seq AS v FROM range(2000) r(seq)`,
      );
    }
    const V = defineMessage('V', { v: 'u32' }) as unknown as Layout;
    // A playlist that says a million messages: 2,000 windows.
    const playlist = {
      process: 'p',
      actors: ['feed'],
      streams,
      layouts: streams.map(() => V),
      total: 1_000_000,
    };
    const lengths: number[] = [];
    const analytics = answering(c, undefined, false, (sql) => lengths.push(sql.length));
    const pages = playOrderPages(analytics, playlist, 500);
    const first = await pages.next();
    await pages.return(undefined);
    expect(first.value).toHaveLength(50);
    expect(lengths.length).toBeGreaterThanOrEqual(2);
    // A server refuses SQL past 64 KiB (the ends of 2,000 windows written into it went past).
    expect(Math.max(...lengths)).toBeLessThan(64 * 1024);
  }, 60_000);
});
