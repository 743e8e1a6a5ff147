import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { makeProcess, makeStream, tempDir } from './fixtures.js';

it("records a client sent with hostile properties run no SQL of theirs and fail no one's query (an actor id was pasted into the views' SQL)", async () => {
  const { dir, cleanup } = tempDir('dorsal-hostile-records-');
  const lake = Lake.open({ data: dir });
  const service = new IngestionService(lake);
  const analytics = await Analytics.open({ lake, cacheDir: join(dir, 'analytics') });
  try {
    await service.ready();
    const code =
      "0, 'x')) AS t(a,b,c); CREATE OR REPLACE TABLE main.pwn AS SELECT 42 AS v; CREATE TEMP TABLE ignored AS SELECT * FROM (VALUES ('p', 0";
    const hostile = makeProcess({
      properties: {
        'dorsal.actors': JSON.stringify([
          { id: code, name: 'a' },
          null,
          { id: 1.5, name: 'b' },
          { id: 2, name: 'ok' },
        ]),
        'dorsal.spine': JSON.stringify([null, { name: 7 }, { name: 'ticks' }]),
      },
    });
    await service.ingestProcess(hostile);
    // An actor's timing stream whose actor id is no number (it made every query fail: 'NaN').
    await service.ingestStream(
      makeStream(hostile.processId, { tags: ['timings'], properties: { actor_id: 'x', actor: 'a' } }),
    );
    const honest = makeProcess();
    await service.ingestProcess(honest);

    expect((await analytics.query('SELECT 1')).rows).toEqual([[1]]);
    expect((await analytics.query('SELECT count(*) FROM processes')).rows.map((r) => r.map(Number))).toEqual([
      [2],
    ]);
    // Nothing of the pasted code ran: no table made in the shared database.
    const made = await analytics.query(
      "SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('pwn', 'ignored')",
      { process: hostile.processId },
    );
    expect(Number(made.rows[0]![0])).toBe(0);
    // What was whole in the records is still read: the actor with an integer id and a name.
    const actors = await analytics.query('SELECT actor_id, actor FROM _actors ORDER BY actor_id', {
      process: hostile.processId,
    });
    expect(actors.rows.map(([id, name]) => [Number(id), name])).toEqual([[2, 'ok']]);
  } finally {
    await analytics.close();
    await service.close();
    cleanup();
  }
});
