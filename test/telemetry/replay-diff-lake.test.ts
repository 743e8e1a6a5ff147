import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Analytics } from '../../src/analytics.js';
import { IngestionService } from '../../src/ingestion.js';
import {
  DIVERGENCES_TAG,
  divergencesBlock,
  divergencesStreamInfo,
  recordDiff,
  type StoredDiff,
} from '../../src/telemetry/persist/replay-diff.js';
import { TelemetrySink } from '../../src/telemetry/sink/sink.js';
import { gatherReport } from '../../src/telemetry/views/report-data.js';
import { compressPart, formatRfc3339Ns } from '../../src/telemetry/wire/index.js';
import { makeProcess, tempDir } from './fixtures.js';

/** A replay's diff kept in a real embedded lake, and read back by the analytics. */

const DIFF: StoredDiff = {
  recording: 'original-process',
  diverged: 2,
  limit: 5,
  streams: [{ stream: 'orders', matched: 3, differing: 1, onlyRecorded: 0, onlyReplayed: 1 }],
  divergences: [
    {
      kind: 'differs',
      stream: 'orders',
      place: 'ticks:4/books:0/orders:0',
      recordedSeq: 7,
      replayedSeq: 7,
      fields: [{ field: 'note', recorded: "it's", replayed: { nested: [1, 'two'] } }],
    },
    {
      kind: 'only-replayed',
      stream: 'orders',
      place: 'ticks:5/books:0/orders:1',
      recordedSeq: null,
      replayedSeq: 12,
      fields: [],
    },
  ],
};

describe('a replay diff in the lake', () => {
  const { dir, cleanup } = tempDir('dorsal-replay-diff-');
  afterAll(cleanup);

  it('is read back as replay_diffs, replay_diff_streams and replay_divergences; a block that does not read says so', async () => {
    // Started now: the blocks are timed now, in ns since the start.
    const now = { startTime: formatRfc3339Ns(BigInt(Date.now()) * 1_000_000n), startTicks: 0 };
    const replay = makeProcess({ ...now, properties: { 'dorsal.replay_of': 'original-process' } });
    const broken = makeProcess({ ...now, properties: { 'dorsal.replay_of': 'original-process' } });
    const service = new IngestionService({ data: dir });
    try {
      await recordDiff({ service }, replay, DIFF);
      // A divergences block that holds something else.
      const sink = new TelemetrySink({ target: service, process: broken });
      const stream = divergencesStreamInfo(broken.processId, DIFF);
      sink.addStream(stream);
      const block = divergencesBlock(broken, stream, DIFF);
      sink.push({
        ...block,
        payload: { ...block.payload, objects: compressPart(new TextEncoder().encode('[1, 2]')) },
      });
      expect((await sink.close({ timeoutMs: 10_000 })).sent).toBe(1);
    } finally {
      await service.close();
    }
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const rows = async (sql: string, process: string) => (await analytics.query(sql, { process })).rows;
      expect(
        await rows(
          `SELECT s.name, d.replay_of, d.diverged::INTEGER, d.divergences_limit::INTEGER, d.error FROM replay_diffs d JOIN streams s ON list_contains(s.tags::VARCHAR[], '${DIVERGENCES_TAG}')`,
          replay.processId,
        ),
      ).toEqual([['divergences', 'original-process', 2, 5, null]]);
      expect(
        await rows(
          'SELECT stream, matched::INTEGER, differing::INTEGER, only_recorded::INTEGER, only_replayed::INTEGER FROM replay_diff_streams',
          replay.processId,
        ),
      ).toEqual([['orders', 3, 1, 0, 1]]);
      const divergences = await rows(
        'SELECT n, kind, place, recorded_seq::INTEGER, replayed_seq::INTEGER, fields::VARCHAR FROM replay_divergences ORDER BY n',
        replay.processId,
      );
      expect(divergences.map((r) => [...r.slice(0, 5), JSON.parse(String(r[5]))])).toEqual(
        DIFF.divergences.map((d, i) => [i + 1, d.kind, d.place, d.recordedSeq, d.replayedSeq, d.fields]),
      );
      const [unreadable] = await rows('SELECT diverged, error FROM replay_diffs', broken.processId);
      expect(unreadable![0]).toBeNull();
      expect(String(unreadable![1])).toMatch(
        /^block [0-9a-f-]+: a divergences block holds no replay diff: not an object$/,
      );
      expect(await rows('SELECT count(*)::INTEGER FROM replay_divergences', broken.processId)).toEqual([[0]]);
    } finally {
      await analytics.close();
    }
  });

  it('a report of a replay that kept more divergences than it lists shows the first, not an error', async () => {
    const now = { startTime: formatRfc3339Ns(BigInt(Date.now()) * 1_000_000n), startTicks: 0 };
    const replay = makeProcess({ ...now, properties: { 'dorsal.replay_of': 'original-process' } });
    const many: StoredDiff = {
      ...DIFF,
      diverged: 6,
      limit: 10,
      divergences: Array.from({ length: 6 }, (_, i) => ({
        kind: 'only-replayed' as const,
        stream: 'orders',
        place: `ticks:${i}/books:0/orders:0`,
        recordedSeq: null,
        replayedSeq: i,
        fields: [],
      })),
    };
    const service = new IngestionService({ data: dir });
    try {
      await recordDiff({ service }, replay, many);
    } finally {
      await service.close();
    }
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      // Cut at what the report lists (10,000 by default; it says how many diverged), it was
      // refused as an answer cut.
      const report = await gatherReport(analytics, replay.processId, { divergences: 5 });
      expect(report.process.diff?.diverged).toBe(6);
      expect(report.process.diff?.divergences.map((d) => d.replayedSeq)).toEqual([0, 1, 2, 3, 4]);
    } finally {
      await analytics.close();
    }
  }, 120_000);

  it('a diff document whose parts are not what a diff holds is its replay_diffs error, and every other query answers', async () => {
    const now = { startTime: formatRfc3339Ns(BigInt(Date.now()) * 1_000_000n), startTicks: 0 };
    const lying: unknown[] = [
      { ...DIFF, diverged: 1e300 },
      { ...DIFF, streams: [{ stream: 5, matched: 'three' }] },
      { ...DIFF, divergences: [{ ...DIFF.divergences[0], recordedSeq: 2 ** 70 }] },
      { ...DIFF, divergences: [{ ...DIFF.divergences[0], kind: null, place: ['x'] }] },
      { ...DIFF, divergences: [null] },
    ];
    const good = makeProcess({ ...now, properties: { 'dorsal.replay_of': 'original-process' } });
    const bad = lying.map(() =>
      makeProcess({ ...now, properties: { 'dorsal.replay_of': 'original-process' } }),
    );
    const data = join(dir, 'lying');
    const service = new IngestionService({ data });
    try {
      await recordDiff({ service }, good, DIFF);
      for (const [i, document] of lying.entries()) {
        // Sent as it is, past the checks of the writer's types: any client of a server can.
        await recordDiff({ service }, bad[i]!, document as StoredDiff);
      }
    } finally {
      await service.close();
    }
    const analytics = await Analytics.open({ lake: { data }, cacheDir: join(data, 'analytics') });
    try {
      const all = await analytics.query(
        'SELECT process_id, diverged::DOUBLE, error FROM replay_diffs ORDER BY process_id',
        {},
      );
      const byProcess = new Map(all.rows.map((r) => [String(r[0]), r.slice(1)]));
      expect(byProcess.get(good.processId)).toEqual([2, null]);
      for (const p of bad) {
        const [diverged, error] = byProcess.get(p.processId)!;
        expect(diverged, p.processId).toBeNull();
        expect(String(error)).toMatch(/^block [0-9a-f-]+: a divergences block holds no replay diff: /);
      }
      const streams = await analytics.query('SELECT count(*)::INTEGER FROM replay_diff_streams', {});
      expect(streams.rows).toEqual([[1]]);
    } finally {
      await analytics.close();
    }
  }, 60_000);

  it('a diff that cannot reach the lake is an error, not a silence', async () => {
    await expect(
      recordDiff({ url: 'http://127.0.0.1:9' }, makeProcess(), DIFF, { timeoutMs: 1000 }),
    ).rejects.toThrow(/^the diff did not reach the lake/);
  });
});
