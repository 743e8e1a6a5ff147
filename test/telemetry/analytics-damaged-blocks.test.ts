import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Encoder } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { LocalPartitionStore } from '../../src/telemetry/analytics/local-partitions.js';
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
    });
  };
  const ticksBlocks = async (a: Analytics) => {
    const streams = await a.lake.streams();
    const stream = streams.find((s) => s.tags.includes('messages') && s.properties.name === 'ticks')!;
    return a.lake.blocks({ streamId: stream.streamId });
  };

  it('a blob whose formatVersion is damaged is left out and listed', async () => {
    analytics = await open();
    try {
      const [, block] = await ticksBlocks(analytics);
      const path = join(dir, block!.blobPath);
      const whole = readFileSync(path);
      const parts = decodePayloadBlob(whole);
      const encoder = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true });
      writeFileSync(path, encoder.encode({ formatVersion: 3, kind: 'payload', ...parts }));
      try {
        const result = await analytics.query('SELECT count(*) FROM stream_ticks');
        expect(n(result.rows[0]![0])).toBe(500 - block!.objectCount);
        expect(result.unreadableBlocks.map((b) => b.blockId)).toEqual([block!.blockId]);
        expect(result.unreadableBlocks[0]!.error).toMatch(new RegExp(`^block ${block!.blockId}`));
        // `losses` reads the other blocks' coverage.
        await analytics.query('SELECT * FROM losses');
      } finally {
        writeFileSync(path, whole);
      }
      // Whole again: read at the next look, once.
      const again = await analytics.query('SELECT count(*), count(DISTINCT seq) FROM stream_ticks');
      expect(again.rows[0]!.map(n)).toEqual([500, 500]);
      expect(again.unreadableBlocks).toEqual([]);
    } finally {
      await analytics.close();
    }
  });

  it('a block whose dependencies decompress but hold a NaN coverage is left out and listed', async () => {
    analytics = await open();
    try {
      const [, , block] = await ticksBlocks(analytics);
      const path = join(dir, block!.blobPath);
      const whole = readFileSync(path);
      const parts = decodePayloadBlob(whole);
      const deps = decompressPart(parts.dependencies, 'deps');
      const damaged = new Uint8Array(deps);
      // Bit rot in first_seq's exponent: an f64 NaN.
      new DataView(damaged.buffer).setFloat64(0, Number.NaN, true);
      writeFileSync(path, encodePayloadBlob({ dependencies: compressPart(damaged), objects: parts.objects }));
      try {
        const result = await analytics.query('SELECT count(*) FROM stream_ticks');
        expect(n(result.rows[0]![0])).toBe(500 - block!.objectCount);
        expect(result.unreadableBlocks.map((b) => b.blockId)).toEqual([block!.blockId]);
        expect(result.unreadableBlocks[0]!.error).toMatch(new RegExp(`^block ${block!.blockId}`));
        // `losses` reads the other blocks' coverage.
        await analytics.query('SELECT * FROM losses');
      } finally {
        writeFileSync(path, whole);
      }
      // Whole again: read at the next look, once.
      const again = await analytics.query('SELECT count(*), count(DISTINCT seq) FROM stream_ticks');
      expect(again.rows[0]!.map(n)).toEqual([500, 500]);
      expect(again.unreadableBlocks).toEqual([]);
    } finally {
      await analytics.close();
    }
  });

  it('a block whose dependencies part is empty is left out and listed', async () => {
    analytics = await open();
    try {
      const [, , , block] = await ticksBlocks(analytics);
      const path = join(dir, block!.blobPath);
      const whole = readFileSync(path);
      const parts = decodePayloadBlob(whole);
      writeFileSync(
        path,
        encodePayloadBlob({ dependencies: compressPart(new Uint8Array(0)), objects: parts.objects }),
      );
      try {
        const result = await analytics.query('SELECT count(*) FROM stream_ticks');
        expect(n(result.rows[0]![0])).toBe(500 - block!.objectCount);
        expect(result.unreadableBlocks.map((b) => b.blockId)).toEqual([block!.blockId]);
        expect(result.unreadableBlocks[0]!.error).toMatch(new RegExp(`^block ${block!.blockId}`));
        // `losses` reads the other blocks' coverage.
        await analytics.query('SELECT * FROM losses');
      } finally {
        writeFileSync(path, whole);
      }
      // Whole again: read at the next look, once.
      const again = await analytics.query('SELECT count(*), count(DISTINCT seq) FROM stream_ticks');
      expect(again.rows[0]!.map(n)).toEqual([500, 500]);
      expect(again.unreadableBlocks).toEqual([]);
    } finally {
      await analytics.close();
    }
  });
});
