import { join } from 'node:path';
import { expect, it } from 'vitest';
import { writeBenchRun } from '../../bench/analytics/data.js';
import { defineMessage, Layout } from '../../src/queues/index.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { parseFields } from '../../src/telemetry/analytics/questions.js';
import { tempDir } from './fixtures.js';

// DuckDB's names ignore case and end at a NUL: runs that spell a stream differently, or a writer
// (through ingestion) that puts a NUL in a stream's name, made views that could not be created,
// and every query of the lake's processes failed.
it('reads streams whose names differ in case only across runs, or hold a NUL, each process with its own spelling', async () => {
  const { dir, cleanup } = tempDir('dorsal-stream-names-');
  try {
    const spellings = ['Ticks', 'ticks', 'ti\0cks'];
    const runs = [];
    for (const ticksName of spellings)
      runs.push(await writeBenchRun({ data: dir }, 10, 0, undefined, { ticksName }));
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const counted = await analytics.query(
        "SELECT process_id, stream, count(*) FROM messages WHERE stream NOT IN ('orders', 'fills') GROUP BY ALL ORDER BY stream",
      );
      expect(counted.rows).toEqual(
        runs.map((run, i) => [run.processId, spellings[i], '10']).sort((a, b) => (a[1]! < b[1]! ? -1 : 1)),
      );
      // The typed view of the name, in any of its spellings, holds every run's.
      const typed = await analytics.query('SELECT count(*), count(DISTINCT stream) FROM stream_TICKS');
      expect(typed.rows).toEqual([['20', '2']]);
      for (const [i, run] of runs.entries()) {
        const tree = await analytics.tree({ process: run.processId, stream: spellings[i]!, seq: 3 });
        expect([tree.root.stream, tree.nodes]).toEqual([spellings[i], 5]);
        // Another run's spelling names no message of this one.
        await expect(
          analytics.tree({ process: run.processId, stream: spellings[(i + 1) % 3]!, seq: 3 }),
        ).rejects.toThrow('tree: no message');
      }
    } finally {
      await analytics.close();
    }
  } finally {
    cleanup();
  }
}, 60_000);

it("reads a stream whose layout's fields are one name to SQL (they differ in case only, or from the envelope's names in case only)", async () => {
  const { dir, cleanup } = tempDir('dorsal-field-names-');
  try {
    // As a writer other than a spine may describe it: a spine's own refuses such fields.
    const fields = [
      { name: 'price', type: 'f64', offset: 0 },
      { name: 'PRICE', type: 'f64', offset: 8 },
      { name: 'n', type: 'i32', offset: 16 },
      { name: 'Seq', type: 'i32', offset: 20 },
    ] as const;
    expect(() => defineMessage('Tick', { price: 'f64', PRICE: 'f64' })).toThrow(
      "message 'Tick': fields 'price' and 'PRICE' differ in case only",
    );
    const ticksLayout = Layout.fromDescription({ name: 'Tick', size: 24, fields: [...fields] });
    const run = await writeBenchRun({ data: dir }, 10, 0, undefined, { ticksLayout });
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const scope = { process: run.processId };
      const typed = await analytics.query(
        'SELECT seq, price, PRICE_2, n, field_Seq FROM stream_ticks WHERE seq = 3',
        scope,
      );
      expect(typed.rows.map((r) => r.map(String))).toEqual([['3', '103', 'NaN', '3', '0']]);
      // A tree shows them as `messages` holds them, a double that is no number included (DuckDB
      // writes it bare in JSON, which is then no JSON).
      const tree = await analytics.tree({ ...scope, stream: 'ticks', seq: 3 });
      expect(tree.root.fields).toEqual({ price: 103, PRICE_2: Number.NaN, n: 3, field_Seq: 0 });
      expect(typed.unreadable).toEqual({ blocks: 0, records: 0 });
    } finally {
      await analytics.close();
    }
  } finally {
    cleanup();
  }
}, 60_000);

it("reads a message's fields from DuckDB's JSON, doubles that are no number included, and nothing else changed", () => {
  const text = String.raw`{"a":NaN,"b":-Infinity,"c":Infinity,"d":"NaN","e":"say \"Infinity\", NaN","f":[1,NaN],"g":{"h":-Infinity},"i":"\u0000x"}`;
  expect(parseFields(text)).toEqual({
    a: Number.NaN,
    b: Number.NEGATIVE_INFINITY,
    c: Number.POSITIVE_INFINITY,
    d: 'NaN',
    e: 'say "Infinity", NaN',
    f: [1, Number.NaN],
    g: { h: Number.NEGATIVE_INFINITY },
    i: '\0x',
  });
  expect(parseFields('{"a":1}')).toEqual({ a: 1 });
  expect(parseFields('not json')).toEqual({});
});
