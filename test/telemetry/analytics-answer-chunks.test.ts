import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ANSWER_CHUNK_CHARS,
  csvAnswer,
  jsonAnswer,
  sliced,
} from '../../src/telemetry/analytics/answer-chunks.js';
import type { QueryResult } from '../../src/telemetry/analytics/query.js';
import { analyticsQueryRoute } from '../../src/telemetry/analytics/route.js';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { tempDir } from './fixtures.js';

const result = (rows: unknown[][], more: Partial<QueryResult> = {}): QueryResult => ({
  columns: [
    { name: 'a', type: 'INTEGER' },
    { name: 'b "quoted", with\ncomma', type: 'VARCHAR' },
  ],
  rows,
  truncated: false,
  decodedBlocks: 3,
  unreadable: { blocks: 1, records: 20 },
  unreadableBlocks: [{ processId: 'p', streamId: 's', blockId: 'b', objectCount: 20, error: 'gone' }],
  ...more,
});

const results: [string, QueryResult][] = [
  ['no rows', result([])],
  ['one row', result([[1, 'x']])],
  [
    'values of every JSON kind',
    result([
      [null, 'é"\\\n\u2028\u0000'],
      [-1.5e300, { nested: [1, { deeper: 'yes' }], empty: {} }],
      [true, [null, false, '']],
      [0, '12345678901234567890'],
    ]),
  ],
  [
    'many chunks of rows',
    result(
      Array.from({ length: 3000 }, (_, i) => [i, `${'x'.repeat(i % 97)},"${i}"\r\n`]),
      { truncated: true },
    ),
  ],
  [
    'rows larger than a chunk',
    result([
      [1, 'y'.repeat(3 * ANSWER_CHUNK_CHARS)],
      [2, 'z'],
    ]),
  ],
  // An answer of another shape (an older server's, relayed): every field as JSON.stringify has it.
  [
    'fields in another order, one undefined',
    {
      rows: [[1]],
      columns: [{ name: 'n', type: 'INTEGER' }],
      decodedBlocks: 0,
      truncated: false,
      unreadable: undefined,
      unreadableBlocks: [],
    } as unknown as QueryResult,
  ],
];

/**
 * The CSV of an answer as the server made it before answers came in chunks (the whole text at
 * once): the reference the chunks must join into.
 */
function toCsv(result: QueryResult): string {
  const cell = (value: unknown): string => {
    if (value === null || value === undefined) return '';
    const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const lines = [result.columns.map((c) => cell(c.name)).join(',')];
  for (const row of result.rows) lines.push(row.map(cell).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

describe('a query answer, chunk by chunk', () => {
  it('is, joined, exactly the JSON of the whole answer', () => {
    for (const [what, answer] of results) {
      expect([...jsonAnswer(answer)].join(''), what).toBe(JSON.stringify(answer));
    }
  });

  it('is, joined, exactly the CSV of the whole answer', () => {
    for (const [what, answer] of results) {
      expect([...csvAnswer(answer)].join(''), what).toBe(toCsv(answer));
    }
    expect(
      toCsv(
        result([
          [1, 'a,b'],
          [null, { k: 'v' }],
        ]),
      ),
    ).toBe('a,"b ""quoted"", with\ncomma"\r\n1,"a,b"\r\n,"{""k"":""v""}"\r\n');
  });

  it('comes in chunks of ANSWER_CHUNK_CHARS at most, a row longer than that in slices', () => {
    for (const chunks of [jsonAnswer, csvAnswer].map((f) => [...f(results[3]![1])])) {
      expect(chunks.length).toBeGreaterThan(2);
      for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(ANSWER_CHUNK_CHARS);
    }
    for (const chunks of [jsonAnswer, csvAnswer].map((f) => [...f(results[4]![1])])) {
      expect(chunks.length).toBeGreaterThan(3);
      for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(ANSWER_CHUNK_CHARS);
    }
  });

  it('never slices a row between the two halves of a surrogate pair', () => {
    // '😀' is two UTF-16 characters: after one 'a', every slice boundary falls inside one.
    const row = `a${'😀'.repeat(ANSWER_CHUNK_CHARS)}`;
    for (const answer of [jsonAnswer, csvAnswer].map((f) => [...f(result([[1, row]]))])) {
      expect(answer.length).toBeGreaterThan(2);
      for (const chunk of answer) {
        expect(chunk.length).toBeLessThanOrEqual(ANSWER_CHUNK_CHARS);
        // Each is well-formed on its own: UTF-8 round-trips it.
        expect(Buffer.from(chunk, 'utf8').toString('utf8')).toBe(chunk);
      }
    }
    const slices = [...sliced(row)];
    expect(slices.join('')).toBe(row);
    for (const slice of slices) expect(Buffer.from(slice, 'utf8').toString('utf8')).toBe(slice);
  });

  it('is sent by the server as the same bytes as before: the JSON of the answer, and the CSV', async () => {
    const { dir, cleanup } = tempDir('dorsal-analytics-wire-');
    const lake = Lake.open({ data: dir });
    const server = await startIngestionServer({
      port: 0,
      lake,
      routes: [analyticsQueryRoute({ lake, cacheDir: join(dir, 'analytics') })],
    });
    try {
      const sql = `SELECT 42 AS answer, 'é"' || chr(10) AS t, NULL AS n, [1, 2] AS l`;
      const ask = (format: string) =>
        fetch(`${server.url}/analytics/query`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ sql, format }),
        });
      const json = await ask('json');
      expect([json.status, json.headers.get('content-type')]).toEqual([200, 'application/json']);
      expect(await json.text()).toBe(
        '{"columns":[{"name":"answer","type":"INTEGER"},{"name":"t","type":"VARCHAR"},{"name":"n","type":"INTEGER"},{"name":"l","type":"INTEGER[]"}],' +
          '"rows":[[42,"é\\"\\n",null,[1,2]]],"truncated":false,"decodedBlocks":0,"unreadable":{"blocks":0,"records":0},"unreadableBlocks":[]}',
      );
      const csv = await ask('csv');
      expect([csv.status, csv.headers.get('content-type'), csv.headers.get('x-dorsal-truncated')]).toEqual([
        200,
        'text/csv; charset=utf-8',
        'false',
      ]);
      expect(await csv.text()).toBe('answer,t,n,l\r\n42,"é""\n",,"[1,2]"\r\n');
    } finally {
      await server.close();
      await lake.close();
      cleanup();
    }
  });
});
