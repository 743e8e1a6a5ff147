import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { BlockRow, ProcessRow, StreamRow } from '../../src/telemetry/lake/types.js';
import { RecordProperty } from '../../src/telemetry/persist/records.js';
import {
  compressPart,
  decodePayloadBlob,
  decompressPart,
  encodeBlock,
  encodeProcessInfo,
  encodeStreamInfo,
  type StreamInfo,
} from '../../src/telemetry/wire/index.js';
import { runPersistedPipeline } from './analytics-checks.js';
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

const TICKS = 20;

/**
 * What any client of an ingestion server can send, that the wire format lets through, and that
 * the analytics make tables of: each is refused at ingestion, or left out of the tables, and every
 * other query over the lake still answers.
 */
describe('records a client could send that no query may fail on', () => {
  const { dir, cleanup } = tempDir('dorsal-hostile-');
  let recorded: ProcessRow;
  let ticks: StreamRow;
  let block: BlockRow;
  let objects: Uint8Array;
  let dependencies: Uint8Array;

  beforeAll(async () => {
    await runPersistedPipeline({ data: dir }, TICKS);
    const lake = Lake.open({ data: dir });
    try {
      [recorded] = (await lake.processes()) as [ProcessRow];
      ticks = (await lake.streams({ processId: recorded.processId })).find(
        (s) => s.properties.name === 'ticks',
      )!;
      [block] = (await lake.blocks()).filter((b) => b.streamId === ticks.streamId) as [BlockRow];
      const parts = decodePayloadBlob(await lake.readBlob(block));
      dependencies = parts.dependencies;
      objects = decompressPart(parts.objects, 'objects');
    } finally {
      await lake.close();
    }
  }, 120_000);
  afterAll(cleanup);

  /** The ticks' layouts with the price typed as 8 bytes: as a replay into a system changed so records it. */
  function priceAsBytes(): StreamInfo['objectsLayouts'] {
    const [envelope, tracking, message] = ticks.objectsLayouts;
    return [
      envelope!,
      tracking!,
      {
        ...message!,
        fields: message!.fields.map((f) =>
          f.name === 'price' ? { ...f, type: 'bytes' as const, bytes: 8 } : f,
        ),
      },
    ];
  }

  /** Sends a copy of the ticks stream, and of its first block with `records`, as a new process. */
  async function sendCopy(
    service: IngestionService,
    records: Uint8Array,
    properties: Readonly<Record<string, string>> = {},
    objectsLayouts: StreamInfo['objectsLayouts'] = ticks.objectsLayouts,
    process = makeProcess({ startTime: recorded.startTime, startTicks: recorded.startTicks }),
    blocks = 1,
  ): Promise<string> {
    await service.insertProcess(encodeProcessInfo(process));
    const { insertTime: _, ...info } = ticks as StreamRow & { insertTime?: string };
    const stream: StreamInfo = {
      ...info,
      streamId: randomUUID(),
      processId: process.processId,
      properties: { ...ticks.properties, ...properties },
      objectsLayouts,
    };
    await service.insertStream(encodeStreamInfo(stream));
    if (blocks > 0)
      await service.insertBlock(
        encodeBlock({
          blockId: randomUUID(),
          streamId: stream.streamId,
          processId: process.processId,
          beginTime: block.beginTime,
          beginTicks: block.beginTicks,
          endTime: block.endTime,
          endTicks: block.endTicks,
          objectCount: block.objectCount,
          payload: { dependencies, objects: compressPart(records) },
        }),
      );
    return process.processId;
  }

  it('a process that starts past the years 1678 to 2261 is refused at ingestion, saying so', async () => {
    const service = new IngestionService({ data: join(dir, 'future') });
    try {
      await expect(
        service.insertProcess(encodeProcessInfo(makeProcess({ startTime: '2300-01-01T00:00:00Z' }))),
      ).rejects.toThrow(/field "startTime" must be an RFC 3339 time .*, in the years 1678 to 2261/);
    } finally {
      await service.close();
    }
  });

  it('a record whose time 64 bits do not hold has no time; windowed queries over the lake answer', async () => {
    const offsets = ticks.properties[RecordProperty.LAYOUT_OFFSETS]!.split(',').map(Number);
    const publishT =
      offsets[1]! + ticks.objectsLayouts[1]!.fields.find((f) => f.name === 'publish_t')!.offset;
    const records = new Uint8Array(objects);
    new DataView(records.buffer).setFloat64(publishT, 1e300, true);
    const service = new IngestionService({ data: dir });
    let far: string;
    try {
      far = await sendCopy(service, records);
    } finally {
      await service.close();
    }
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics-far') });
    try {
      const windowed = await analytics.query(
        'SELECT process_id, count(*)::INTEGER FROM stream_ticks GROUP BY ALL ORDER BY 2',
        { begin: '2000-01-01T00:00:00Z' },
      );
      expect(windowed.rows).toEqual([
        [far, block.objectCount - 1],
        [recorded.processId, TICKS],
      ]);
      const timeless = await analytics.query(
        'SELECT count(*)::INTEGER FROM messages WHERE publish_time IS NULL',
        { process: far },
      );
      expect(timeless.rows).toEqual([[1]]);
    } finally {
      await analytics.close();
    }
  }, 60_000);

  it('a block whose records take more bytes than it counts is listed unreadable, not held', async () => {
    // Its records three times over, the same count: a client's lie the batch sizes trusted.
    const swollen = new Uint8Array(objects.length * 3);
    for (let i = 0; i < 3; i++) swollen.set(objects, i * objects.length);
    const service = new IngestionService({ data: dir });
    let lying: string;
    try {
      lying = await sendCopy(service, swollen);
    } finally {
      await service.close();
    }
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics-swollen') });
    try {
      const result = await analytics.query('SELECT count(*)::INTEGER FROM messages', { process: lying });
      expect(result.rows).toEqual([[0]]);
      expect(result.unreadableBlocks.map((b) => b.error)).toEqual([
        expect.stringMatching(
          new RegExp(
            `its records take ${swollen.length} bytes, not those of its ${block.objectCount} records of`,
          ),
        ),
      ]);
    } finally {
      await analytics.close();
    }
  }, 60_000);

  it('a block whose records take fewer bytes than it counts is listed unreadable, not read short', async () => {
    // Half its records, the same count: the records it lacks were in no table and no count.
    const short = objects.slice(0, (objects.length / block.objectCount) * Math.floor(block.objectCount / 2));
    const service = new IngestionService({ data: dir });
    let lying: string;
    try {
      lying = await sendCopy(service, short);
    } finally {
      await service.close();
    }
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics-short') });
    try {
      const result = await analytics.query('SELECT count(*)::INTEGER FROM messages', { process: lying });
      expect(result.rows).toEqual([[0]]);
      expect(result.unreadable).toEqual({ blocks: 1, records: block.objectCount });
      expect(result.unreadableBlocks.map((b) => b.error)).toEqual([
        expect.stringMatching(
          new RegExp(`its records take ${short.length} bytes, not those of its ${block.objectCount} records`),
        ),
      ]);
    } finally {
      await analytics.close();
    }
  }, 60_000);

  it('a field typed as bytes in one process and as a number in another is text in their stream view', async () => {
    const data = join(dir, 'types');
    const service = new IngestionService({ data });
    let bytes: string;
    let number: string;
    try {
      number = await sendCopy(service, objects);
      bytes = await sendCopy(service, objects, {}, priceAsBytes());
    } finally {
      await service.close();
    }
    const analytics = await Analytics.open({ lake: { data }, cacheDir: join(data, 'analytics') });
    try {
      const prices = await analytics.query(
        'SELECT process_id, typeof(price), count(*)::INTEGER FROM stream_ticks GROUP BY ALL ORDER BY 1',
        {},
      );
      expect(prices.rows).toEqual(
        [
          [number, 'VARCHAR', block.objectCount],
          [bytes, 'VARCHAR', block.objectCount],
        ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      );
      // A number's text is the number's.
      const [first] = (
        await analytics.query('SELECT price, seq FROM stream_ticks ORDER BY seq LIMIT 1', { process: number })
      ).rows;
      expect(Number(first![0])).toBeGreaterThan(0);
    } finally {
      await analytics.close();
    }
  }, 60_000);

  it('times at the ends of the years 1678 to 2261 print, and past them are no time; ids no record holds name no actor', async () => {
    const data = join(dir, 'ends');
    const service = new IngestionService({ data });
    const at = (startTime: string, properties: Record<string, string> = {}) =>
      makeProcess({ startTime, startTicks: recorded.startTicks, properties });
    let late: string;
    try {
      // A run that began a moment before 2262: its records fall past it; one a minute before.
      late = await sendCopy(service, objects, {}, ticks.objectsLayouts, at('2261-12-31T23:59:59.999999999Z'));
      await sendCopy(service, objects, {}, ticks.objectsLayouts, at('2261-12-31T23:59:00Z'));
      await sendCopy(service, objects, {}, ticks.objectsLayouts, at('1678-01-01T00:00:00Z'));
      // Actor ids past a record's 16 bits, as a client may send them: they name no actor.
      await sendCopy(
        service,
        objects,
        { actor_id: '1e12' },
        ticks.objectsLayouts,
        at(recorded.startTime, { 'dorsal.actors': JSON.stringify([{ id: 3e9, name: 'far' }]) }),
      );
    } finally {
      await service.close();
    }
    const analytics = await Analytics.open({ lake: { data }, cacheDir: join(data, 'analytics') });
    try {
      const all = await analytics.query(
        'SELECT count(*)::INTEGER, count(publish_time)::INTEGER, min(publish_time)::VARCHAR, max(publish_time)::VARCHAR FROM messages',
        {},
      );
      const [rows, timed, first, last] = all.rows[0]!;
      expect(rows).toBe(4 * block.objectCount);
      expect(timed).toBeLessThan(rows as number);
      expect(String(first)).toMatch(/^1678-01-01 /);
      expect(String(last)).toMatch(/^2261-12-31 23:59:/);
      const actors = await analytics.query('SELECT count(*)::INTEGER FROM _actors', {});
      expect(actors.rows).toEqual([[0]]);
      const untimed = await analytics.query(
        'SELECT count(*)::INTEGER FROM messages WHERE publish_time IS NULL',
        {
          process: late,
        },
      );
      expect(untimed.rows[0]![0]).toBeGreaterThan(0);
    } finally {
      await analytics.close();
    }
  }, 60_000);

  it("a stream record with no block types none of its view's fields", async () => {
    const data = join(dir, 'blockless');
    const service = new IngestionService({ data });
    try {
      await sendCopy(service, objects);
      await sendCopy(service, objects, {}, priceAsBytes(), undefined, 0);
    } finally {
      await service.close();
    }
    const analytics = await Analytics.open({ lake: { data }, cacheDir: join(data, 'analytics') });
    try {
      const prices = await analytics.query('SELECT DISTINCT typeof(price) FROM stream_ticks', {});
      expect(prices.rows).toEqual([['DOUBLE']]);
    } finally {
      await analytics.close();
    }
  }, 60_000);

  it('a stream whose layout offsets run past its records is left out; queries over the lake answer', async () => {
    const recordBytes = Number(ticks.properties[RecordProperty.RECORD_BYTES]);
    const service = new IngestionService({ data: dir });
    let lying: string;
    try {
      lying = await sendCopy(service, objects, {
        [RecordProperty.LAYOUT_OFFSETS]: `0,8,${recordBytes}`,
      });
    } finally {
      await service.close();
    }
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics-offsets') });
    try {
      const all = await analytics.query('SELECT process_id, count(*)::INTEGER FROM timings GROUP BY ALL', {});
      expect(all.rows.map((r) => r[0])).toContain(recorded.processId);
      const ofLying = await analytics.query('SELECT count(*)::INTEGER FROM messages', { process: lying });
      expect(ofLying.rows).toEqual([[0]]);
    } finally {
      await analytics.close();
    }
  }, 60_000);
});
