import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';

/**
 * Runs `work` with an ingestion service and an analytics sharing one lake object, as `dorsal
 * serve` shares them; a look is reused for a minute here, not a second.
 */
async function withSharedLake(
  work: (shared: {
    dir: string;
    lake: Lake;
    service: IngestionService;
    analytics: Analytics;
  }) => Promise<void>,
): Promise<void> {
  const { dir, cleanup } = tempDir('dorsal-own-writes-');
  const lake = Lake.open({ data: dir });
  const service = new IngestionService(lake);
  const analytics = await Analytics.open({ lake, cacheDir: join(dir, 'analytics'), freshnessMs: 60_000 });
  try {
    await service.ready();
    await work({ dir, lake, service, analytics });
  } finally {
    await analytics.close();
    await service.close();
    cleanup();
  }
}

it('an analytics sharing its lake with an ingestion service reads what was just ingested, and keeps its looks at other processes', () =>
  withSharedLake(async ({ dir, lake, service, analytics }) => {
    const count = async (sql: string, process?: string) =>
      Number((await analytics.query(sql, process === undefined ? {} : { process })).rows[0]![0]);
    const first = makeProcess({ startTime: '2026-12-06T10:00:00.000000000Z' });
    await service.ingestProcess(first);
    expect(await count('SELECT count(*) FROM processes')).toBe(1);

    // A process ingested since the look at the whole lake: in the next answer, not a minute later.
    const second = makeProcess({ startTime: '2026-12-06T10:00:01.000000000Z' });
    await service.ingestProcess(second);
    expect(await count('SELECT count(*) FROM processes')).toBe(2);

    // A look at one process, then a stream and a block of it ingested: read at once.
    // Its id in capitals: the same process, and the same look.
    const shouted = second.processId.toUpperCase();
    expect(await count('SELECT count(*) FROM blocks', shouted)).toBe(0);
    const stream = makeStream(second.processId);
    await service.ingestStream(stream);
    const block = makeBlock(stream, 16).block;
    await service.ingestBlock(block);
    expect(await count('SELECT count(*) FROM blocks', shouted)).toBe(1);
    // A block stored past this lake object (another server on the same lake) is not seen until
    // it is sent again through this one (a sink's retry): answered as stored, and told.
    const elsewhere = new IngestionService(Lake.open({ data: dir }));
    try {
      const again = makeBlock(stream, 16, 5).block;
      await elsewhere.ingestBlock(again);
      expect(await count('SELECT count(*) FROM blocks', second.processId)).toBe(1);
      expect(await service.ingestBlock(again)).toEqual({ inserted: false });
      expect(await count('SELECT count(*) FROM blocks', second.processId)).toBe(2);
    } finally {
      await elsewhere.close();
    }

    // A look at the first process is kept while only the second is written: a block of the first
    // written past the service (not told to this lake object) is seen at the next look only.
    expect(await count('SELECT count(*) FROM blocks', first.processId)).toBe(0);
    const untold = makeStream(first.processId);
    await lake.metadata.insertStream(untold);
    const hidden = makeBlock(untold, 8).block;
    await lake.metadata.insertBlock(hidden, 1, `untold/${hidden.blockId}`);
    await service.ingestBlock(makeBlock(stream, 4, 2).block);
    expect(await count('SELECT count(*) FROM blocks', first.processId)).toBe(0);
    // Once something of the first is ingested, its look is taken again, and finds both.
    await service.ingestBlock(makeBlock(untold, 4, 3).block);
    expect(await count('SELECT count(*) FROM blocks', first.processId)).toBe(2);
  }));

it('queries asked between writes, without waiting for each other, each see every write made before they were asked', () =>
  withSharedLake(async ({ service, analytics }) => {
    const process = makeProcess();
    await service.ingestProcess(process);
    const stream = makeStream(process.processId);
    await service.ingestStream(stream);
    // Looks taken, shared and waited for while blocks keep coming (two scopes: the process's,
    // and the whole lake's).
    const asked: { blocks: number; answer: Promise<readonly number[]> }[] = [];
    for (let i = 0; i < 24; i++) {
      await service.ingestBlock(makeBlock(stream, 8, i + 1).block);
      const answer = Promise.all([
        analytics.query('SELECT count(*) FROM blocks', { process: process.processId }),
        analytics.query('SELECT sum(object_count) FROM blocks'),
      ]).then((results) => results.map((r) => Number(r.rows[0]![0])));
      asked.push({ blocks: i + 1, answer });
    }
    for (const { blocks, answer } of asked) {
      const [rows, events] = await answer;
      expect(rows, `asked after block ${blocks}`).toBeGreaterThanOrEqual(blocks);
      expect(events, `asked after block ${blocks}`).toBeGreaterThanOrEqual(8 * blocks);
    }
  }));

it('a lake object says what was written through it since a mark, per process, and counts any write for a look at the whole lake', () => {
  const { dir, cleanup } = tempDir('dorsal-write-marks-');
  // Opening connects to nothing: marks are this object's own.
  const lake = Lake.open({ data: dir });
  const mark = lake.writeMark;
  expect(lake.writtenSince(mark)).toBe(false);
  lake.noteWritten('a');
  expect(lake.writtenSince(mark)).toBe(true);
  expect(lake.writtenSince(mark, ['a'])).toBe(true);
  expect(lake.writtenSince(mark, ['b'])).toBe(false);
  const later = lake.writeMark;
  lake.noteWritten('b');
  expect(lake.writtenSince(later, ['a'])).toBe(false);
  expect(lake.writtenSince(later, ['a', 'b'])).toBe(true);
  // Past 4,096 processes the oldest are forgotten: a mark from before then counts as written since.
  for (let i = 0; i < 4096; i++) lake.noteWritten(`p${i}`);
  expect(lake.writtenSince(later, ['a'])).toBe(true);
  const recent = lake.writeMark;
  expect(lake.writtenSince(recent, ['a'])).toBe(false);
  cleanup();
});
