import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Encoder } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { LocalPartitionStore } from '../../src/telemetry/analytics/local-partitions.js';
import { RemoteAnalytics } from '../../src/telemetry/analytics/remote.js';
import { analyticsQueryRoute } from '../../src/telemetry/analytics/route.js';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import {
  compressPart,
  decodePayloadBlob,
  decompressPart,
  encodePayloadBlob,
} from '../../src/telemetry/wire/payload.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { tempDir } from './fixtures.js';

const n = (value: unknown) => Number(value);

describe('blocks damaged past what lz4 and CBOR see', () => {
  const { dir, cleanup } = tempDir('dorsal-damaged-blocks-');
  let analytics: Analytics;
  beforeAll(async () => {
    await runPersistedPipeline({ data: dir, blockMs: 50, blockBytes: 2048 }, 500);
  }, 120_000);
  afterAll(() => cleanup());

  let opened = 0;
  /** Partitions of its own: each test's analytics decodes every block again. */
  const open = () => {
    const cache = join(dir, `analytics-${opened++}`);
    return Analytics.open({
      lake: { data: dir },
      cacheDir: cache,
      partitions: new LocalPartitionStore(join(cache, 'partitions')),
      freshnessMs: 0,
      unreadableRetryMs: 0,
    });
  };
  const ticksBlocks = async (a: Analytics | Lake) => {
    const lake = a instanceof Lake ? a : a.lake;
    const streams = await lake.streams();
    const stream = streams.find((s) => s.tags.includes('messages') && s.properties.name === 'ticks')!;
    return lake.blocks({ streamId: stream.streamId });
  };

  /**
   * Damages the `index`-th block of ticks with `damage` (given its blob's bytes, returns the damaged
   * ones): the block is left out and listed, and the other blocks' coverage still reads; restored,
   * it is read at the next look, once.
   */
  const leftOutThenBack = async (index: number, damage: (whole: Buffer) => Uint8Array) => {
    analytics = await open();
    try {
      const block = (await ticksBlocks(analytics))[index]!;
      const path = join(dir, block.blobPath);
      const whole = readFileSync(path);
      writeFileSync(path, damage(whole));
      try {
        const result = await analytics.query('SELECT count(*) FROM stream_ticks');
        expect(n(result.rows[0]![0])).toBe(500 - block.objectCount);
        expect(result.unreadableBlocks.map((b) => b.blockId)).toEqual([block.blockId]);
        expect(result.unreadableBlocks[0]!.error).toMatch(new RegExp(`^block ${block.blockId}`));
        // `losses` reads the other blocks' coverage.
        await analytics.query('SELECT * FROM losses');
      } finally {
        writeFileSync(path, whole);
      }
      const again = await analytics.query('SELECT count(*), count(DISTINCT seq) FROM stream_ticks');
      expect(again.rows[0]!.map(n)).toEqual([500, 500]);
      expect(again.unreadableBlocks).toEqual([]);
    } finally {
      await analytics.close();
    }
  };

  it('a blob whose formatVersion is damaged is left out and listed', () =>
    leftOutThenBack(1, (whole) => {
      const parts = decodePayloadBlob(whole);
      const encoder = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true });
      return encoder.encode({ formatVersion: 3, kind: 'payload', ...parts });
    }));

  it('a block whose dependencies decompress but hold a NaN coverage is left out and listed', () =>
    leftOutThenBack(2, (whole) => {
      const parts = decodePayloadBlob(whole);
      const damaged = new Uint8Array(decompressPart(parts.dependencies, 'deps'));
      // Bit rot in first_seq's exponent: an f64 NaN.
      new DataView(damaged.buffer).setFloat64(0, Number.NaN, true);
      return encodePayloadBlob({ dependencies: compressPart(damaged), objects: parts.objects });
    }));

  it('a block whose dependencies part is empty is left out and listed', () =>
    leftOutThenBack(3, (whole) => {
      const parts = decodePayloadBlob(whole);
      return encodePayloadBlob({ dependencies: compressPart(new Uint8Array(0)), objects: parts.objects });
    }));

  it('over HTTP: JSON answers carry the totals and the list, CSV answers say them in headers', async () => {
    const lake = Lake.open({ data: dir });
    const server = await startIngestionServer({
      port: 0,
      lake,
      insecure: true,
      routes: [analyticsQueryRoute({ lake, cacheDir: join(dir, `analytics-${opened++}`), freshnessMs: 0 })],
    });
    try {
      const block = (await ticksBlocks(lake))[5]!;
      const path = join(dir, block.blobPath);
      renameSync(path, `${path}.away`);
      try {
        const remote = await new RemoteAnalytics({ url: server.url }).query(
          'SELECT count(*) FROM stream_ticks',
        );
        expect(remote.unreadable).toEqual({ blocks: 1, records: block.objectCount });
        expect(remote.unreadableBlocks.map((b) => b.blockId)).toEqual([block.blockId]);
        const csv = await fetch(`${server.url}/analytics/query`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ sql: 'SELECT count(*) AS n FROM stream_ticks', format: 'csv' }),
        });
        expect(await csv.text()).toBe(`n\r\n${500 - block.objectCount}\r\n`);
        expect(csv.headers.get('x-dorsal-unreadable-blocks')).toBe('1');
        expect(csv.headers.get('x-dorsal-unreadable-records')).toBe(String(block.objectCount));
        expect(csv.headers.get('x-dorsal-truncated')).toBe('false');
      } finally {
        renameSync(`${path}.away`, path);
      }
    } finally {
      await server.close();
      await lake.close();
    }
  });

  it('a block found unreadable is not read again before unreadableRetryMs: answers list it as found', async () => {
    const cache = join(dir, `analytics-${opened++}`);
    const patient = await Analytics.open({
      lake: { data: dir },
      cacheDir: cache,
      partitions: new LocalPartitionStore(join(cache, 'partitions')),
      freshnessMs: 0,
      unreadableRetryMs: 3_600_000,
    });
    try {
      const block = (await ticksBlocks(patient))[4]!;
      const path = join(dir, block.blobPath);
      renameSync(path, `${path}.away`);
      try {
        const first = await patient.query('SELECT count(*) FROM stream_ticks');
        expect(first.unreadableBlocks.map((b) => b.blockId)).toEqual([block.blockId]);
      } finally {
        renameSync(`${path}.away`, path);
      }
      // Back in the lake, but not read yet: still left out, listed as it was found.
      const later = await patient.query('SELECT count(*) FROM stream_ticks');
      expect(n(later.rows[0]![0])).toBe(500 - block.objectCount);
      expect(later.unreadableBlocks.map((b) => b.error)).toEqual([expect.stringContaining('no blob at')]);
      expect(patient.held().unreadable).toBe(1);
    } finally {
      await patient.close();
    }
  });
});
