import { join } from 'node:path';
import { expect, it } from 'vitest';
import { writeBenchRun } from '../../bench/analytics/data.js';
import { defineSystem } from '../../src/actors/define-system.js';
import { fieldDifferences } from '../../src/cli/replay-diff.js';
import { playOrderSql } from '../../src/cli/replay-pages.js';
import { playlistOf, recordedColumn } from '../../src/cli/replay-recording.js';
import { defineMessage, Layout } from '../../src/queues/index.js';
import { defineSpine } from '../../src/spine/index.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { parseFields } from '../../src/telemetry/analytics/questions.js';
import { fieldColumnNames } from '../../src/telemetry/analytics/source-tables.js';
import { tempDir } from './fixtures.js';

// DuckDB's names ignore case and end at a NUL: runs that spell a stream differently, or a writer
// (through ingestion) that puts a NUL in a stream's name, made views that could not be created,
// and every query of the lake's processes failed.
it('reads streams whose names differ in case only across runs, or hold a NUL, each process with its own spelling', async () => {
  const { dir, cleanup } = tempDir('dorsal-stream-names-');
  try {
    // DuckDB folds ASCII letters only: 'Éticks' and 'éticks' are two names to it.
    const spellings = ['Ticks', 'ticks', 'ti\0cks', 'Éticks', 'éticks'];
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
      for (const name of ['stream_Éticks', 'stream_éticks']) {
        const own = await analytics.query(`SELECT count(*), min(stream) FROM "${name}"`);
        expect(own.rows).toEqual([['10', name.slice('stream_'.length)]]);
      }
      for (const [i, run] of runs.entries()) {
        const tree = await analytics.tree({ process: run.processId, stream: spellings[i]!, seq: 3 });
        expect([tree.root.stream, tree.nodes]).toEqual([spellings[i], 5]);
        // Another run's spelling names no message of this one.
        await expect(
          analytics.tree({ process: run.processId, stream: spellings[(i + 1) % spellings.length]!, seq: 3 }),
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
      // A tree shows them as `messages` holds them: by the fields' own names, not the columns'
      // made up for SQL, a double that is no number included (DuckDB writes it bare in JSON,
      // which is then no JSON).
      const tree = await analytics.tree({ ...scope, stream: 'ticks', seq: 3 });
      expect(tree.root.fields).toEqual({ price: 103, PRICE: Number.NaN, n: 3, Seq: 0 });
      expect(typed.unreadable).toEqual({ blocks: 0, records: 0 });
      // Another run whose layout differs from a third's in its fields' case only: read together
      // in `stream_ticks`, and apart in `messages`, each run's fields with its own names.
      const lower = await writeBenchRun({ data: dir }, 10, 0);
      const upper = await writeBenchRun({ data: dir }, 10, 0, undefined, {
        ticksLayout: Layout.fromDescription({
          name: 'Tick',
          size: 16,
          fields: [
            { name: 'Price', type: 'f64', offset: 0 },
            { name: 'N', type: 'i32', offset: 8 },
          ],
        }),
      });
      const keys = await analytics.query(
        "SELECT process_id, json_keys(fields) FROM messages WHERE stream = 'ticks' AND seq = 3",
      );
      const keysOf = new Map(keys.rows.map((r) => [r[0], r[1]]));
      expect(keysOf.get(lower.processId)).toEqual(['price', 'n']);
      expect(keysOf.get(upper.processId)).toEqual(['Price', 'N']);
      expect(keysOf.get(run.processId)).toEqual(['price', 'PRICE', 'n', 'Seq']);
    } finally {
      await analytics.close();
    }
  } finally {
    cleanup();
  }
}, 60_000);

it("keeps each run's own field names in `fields` where one column holds two runs' differently named fields (seq as field_seq, and a field named field_seq)", async () => {
  const { dir, cleanup } = tempDir('dorsal-field-keys-');
  try {
    const layout = (name: string) =>
      Layout.fromDescription({
        name: 'Tick',
        size: 16,
        fields: [
          { name, type: 'f64', offset: 0 },
          { name: 'n', type: 'i32', offset: 8 },
        ],
      });
    const a = await writeBenchRun({ data: dir }, 3, 0, undefined, { ticksLayout: layout('seq') });
    const b = await writeBenchRun({ data: dir }, 3, 0, undefined, { ticksLayout: layout('field_seq') });
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const { rows } = await analytics.query(
        "SELECT process_id, json_keys(fields) FROM messages WHERE stream = 'ticks' AND seq = 1",
        { processes: [a.processId, b.processId] },
      );
      const keysOf = new Map(rows.map((r) => [r[0], r[1]]));
      // Both are column field_seq: read as one layout, the second run's field was called seq.
      expect(keysOf.get(a.processId)).toEqual(['seq', 'n']);
      expect(keysOf.get(b.processId)).toEqual(['field_seq', 'n']);
    } finally {
      await analytics.close();
    }
  } finally {
    cleanup();
  }
}, 60_000);

it('reads a stream whose layout has a field of no name (as a writer other than a spine may describe it) as field_', async () => {
  const { dir, cleanup } = tempDir('dorsal-field-names-');
  try {
    // A layout no spine makes (its fields are JavaScript names): described to the lake with a
    // field of no name, which ingestion takes.
    const real = Layout.fromDescription({
      name: 'Tick',
      size: 16,
      fields: [
        { name: 'x', type: 'f64', offset: 0 },
        { name: 'n', type: 'i32', offset: 8 },
      ],
    });
    const described = real.describe();
    const ticksLayout = Object.create(real, {
      describe: {
        value: () => ({
          ...described,
          fields: described.fields.map((f) => (f.name === 'x' ? { ...f, name: '' } : f)),
        }),
      },
    }) as typeof real;
    const run = await writeBenchRun({ data: dir }, 10, 0, undefined, { ticksLayout });
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const typed = await analytics.query('SELECT seq, field_, n FROM stream_ticks WHERE seq = 3', {
        process: run.processId,
      });
      expect(typed.rows.map((r) => r.map(String))).toEqual([['3', 'NaN', '3']]);
      // Nor does it fail the questions of every process that never read that stream.
      const timings = await analytics.query('SELECT count(*) FROM timings');
      expect(timings.rows.length).toBe(1);
    } finally {
      await analytics.close();
    }
  } finally {
    cleanup();
  }
}, 60_000);

it("names the columns of fields that SQL would take for one name apart from every field's own", () => {
  expect(fieldColumnNames(['price', 'PRICE', 'PRICE_2'])).toEqual(['price', 'PRICE_3', 'PRICE_2']);
  expect(fieldColumnNames(['seq', 'field_seq', 'Seq'])).toEqual(['field_seq', 'field_seq_2', 'field_Seq_3']);
  // Only ASCII letters are folded, as DuckDB folds them.
  expect(fieldColumnNames(['É', 'é', 'E', 'e'])).toEqual(['É', 'é', 'E', 'e_2']);
});

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

it('replays each field from its own column, and compares fields that hold a double that is no number', () => {
  // 'seq' is stored as field_seq (the envelope has a seq): the field named field_seq, as field_seq_2.
  const M = defineMessage('M', { seq: 'f64', field_seq: 'f64' });
  const definition = defineSystem({
    spine: defineSpine({ m: { message: M, capacity: 8 } }),
    actors: [{ module: new URL('./feed.js', import.meta.url), ingress: true }],
  });
  const recorded = {
    processId: 'p',
    exe: 'x',
    startTime: '2026-12-06T00:00:00Z',
    properties: { 'dorsal.spine': JSON.stringify([{ name: 'm', layout: M.describe() }]) },
  };
  const playlist = playlistOf(recorded, ['feed'], new Map([['m', 1]]), definition, 'system.js');
  expect([recordedColumn(playlist, 0, 'seq'), recordedColumn(playlist, 0, 'field_seq')]).toEqual([
    'field_seq',
    'field_seq_2',
  ]);
  expect(playOrderSql(playlist, undefined, 10)).toContain('"field_seq_2"');
  // A spine too wide for its description's property is described without layouts: its fields
  // are taken as the replayed layout names them, none refused as not recorded.
  const described = { ...recorded, properties: { 'dorsal.spine': JSON.stringify([{ name: 'm' }]) } };
  const unlaid = playlistOf(described, ['feed'], new Map([['m', 1]]), definition, 'system.js');
  expect([recordedColumn(unlaid, 0, 'seq'), recordedColumn(unlaid, 0, 'field_seq')]).toEqual([
    'field_seq',
    'field_seq_2',
  ]);
  // DuckDB writes such a double bare in JSON: the fields compare all the same, one by one.
  expect(fieldDifferences('{"price":NaN,"n":1}', '{"price":NaN,"n":2}')).toEqual([
    { field: 'n', recorded: 1, replayed: 2 },
  ]);
  // As their texts: JSON (the diff stored in the lake, --json) has no NaN and would write null.
  expect(fieldDifferences('{"price":NaN}', '{"price":Infinity}')).toEqual([
    { field: 'price', recorded: 'NaN', replayed: 'Infinity' },
  ]);
});
