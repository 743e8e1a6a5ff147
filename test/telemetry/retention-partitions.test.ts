import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { lakeCacheDir } from '../../src/telemetry/analytics/lake-cache-dir.js';
import { LocalPartitionStore } from '../../src/telemetry/analytics/local-partitions.js';
import { LakeNotFoundError } from '../../src/telemetry/errors.js';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { LakeLocation } from '../../src/telemetry/lake/open.js';
import { applyRetention } from '../../src/telemetry/lake/retention.js';
import { type PartitionRow, partitionBlobPaths } from '../../src/telemetry/lake/types.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { runDorsal } from './cli-helpers.js';
import { tempDir } from './fixtures.js';
import { type Age, postgresAge, sqliteAge } from './lake-age.js';
import { scaleOutLocation, startS3, uniqueSchema } from './services.js';

const TICKS = 200;

/** What a retention pass deleted, as the tests compare it. */
interface Deleted {
  readonly blocks: number;
  readonly blobs: number;
  readonly processes: number;
  readonly partitions: number;
}

/** A lake with two persisted runs in it, and a retention pass over it. */
interface Backend {
  readonly location: LakeLocation;
  /** Persists one pipeline run into the lake. */
  run(): Promise<void>;
  readonly age: Age;
  /** One retention pass keeping the last 7 days. */
  retain(lake: Lake): Promise<Deleted>;
  close(): Promise<void>;
}

/** The embedded lake, and `dorsal retention` as a user runs it: what it prints is what it deleted. */
async function sqliteBackend(dir: string): Promise<Backend> {
  const data = join(dir, 'lake');
  return {
    location: { data },
    run: async () => {
      await runPersistedPipeline({ data, blockMs: 50, blockBytes: 4096 }, TICKS);
    },
    age: sqliteAge(data),
    retain: async () => {
      const run = await runDorsal([
        'retention',
        '--days',
        '7',
        '--data',
        data,
        '--batch',
        '3',
        '--pause-ms',
        '0',
      ]);
      expect(run).toMatchObject({ code: 0, stderr: '' });
      const said =
        /^retention: deleted (\d+) blocks?, (\d+) blobs?, \d+ streams?, (\d+) process(?:es)?, 0 drop reports, (\d+) partitions? inserted before \S+Z\n$/.exec(
          run.stdout,
        );
      expect(said, run.stdout).not.toBeNull();
      const [blocks, blobs, processes, partitions] = said!.slice(1).map(Number) as [
        number,
        number,
        number,
        number,
      ];
      return { blocks, blobs, processes, partitions };
    },
    close: async () => {},
  };
}

/** PostgreSQL + S3, written through an ingestion server; retention through the API. */
async function postgresBackend(): Promise<Backend> {
  const schema = uniqueSchema();
  const s3 = await startS3();
  const location = scaleOutLocation(schema.url, s3.endpoint, 'retention-partitions');
  const server = await startIngestionServer({ port: 0, lake: location });
  return {
    location,
    run: async () => {
      await runPersistedPipeline({ url: server.url, blockMs: 50, blockBytes: 4096 }, TICKS);
    },
    age: postgresAge(schema.url),
    retain: (lake) => applyRetention(lake, { days: 7, batchSize: 3, pauseMs: 0 }),
    close: async () => {
      await server.close();
      await schema.drop();
      await s3.stop();
    },
  };
}

/** The process ids of the `views/*\/process_id=…` directories under `root`. */
function cachedProcesses(root: string): string[] {
  const views = join(root, 'views');
  if (!existsSync(views)) return [];
  const ids = readdirSync(views).flatMap((view) =>
    readdirSync(join(views, view))
      .filter((entry) => entry.startsWith('process_id='))
      .map((entry) => entry.slice('process_id='.length)),
  );
  return [...new Set(ids)].sort();
}

describe.each([
  ['SQLite + directory', sqliteBackend],
  ['PostgreSQL + S3', async (_dir: string) => postgresBackend()],
] as const)('retention and the analytics partitions (%s)', (_name, make) => {
  it('deletes the partitions made of the blocks it deletes, with their files, counts them, and the caches let go of the deleted processes', async () => {
    const { dir, cleanup } = tempDir('dorsal-retention-partitions-');
    const backend = await make(dir);
    const lake = Lake.open(backend.location);
    try {
      // Two runs: one all old, one new but for the first block of its ticks.
      await backend.run();
      const [old] = await lake.processes();
      await backend.run();
      const kept = (await lake.processes()).find((p) => p.processId !== old!.processId)!;
      const oldStreams = await lake.streams({ processId: old!.processId });
      const oldBlocks = await lake.blocks({ processId: old!.processId });
      const ticks = (await lake.streams({ processId: kept.processId })).find(
        (s) => s.properties.name === 'ticks',
      )!;
      const [firstTick] = await lake.blocks({ streamId: ticks.streamId });
      await backend.age('processes', [old!.processId]);
      await backend.age(
        'streams',
        oldStreams.map((s) => s.streamId),
      );
      await backend.age('blocks', [...oldBlocks.map((b) => b.blockId), firstTick!.blockId]);

      // Both runs looked at now (months after the old one arrived, say): partitions of both, in
      // the lake and in two caches, one keeping them in the lake and one on its own.
      const cacheDir = join(dir, 'cache');
      const ownCache = join(dir, 'own-cache');
      const ownDir = join(ownCache, 'partitions');
      const analytics = await Analytics.open({ lake, cacheDir, freshnessMs: 0 });
      const own = await Analytics.open({
        lake,
        cacheDir: ownCache,
        freshnessMs: 0,
        partitions: new LocalPartitionStore(ownDir),
      });
      try {
        const count = async (on: Analytics, process?: string) =>
          Number(
            (await on.query('SELECT count(*) FROM stream_ticks', process === undefined ? {} : { process }))
              .rows[0]![0],
          );
        expect(await count(analytics, old!.processId)).toBe(TICKS);
        expect(await count(own, old!.processId)).toBe(TICKS);
        expect(await count(analytics)).toBe(2 * TICKS);
        expect(await count(own)).toBe(2 * TICKS);
        const bothIds = [old!.processId, kept.processId].sort();
        expect(cachedProcesses(lakeCacheDir(cacheDir, lake.identity))).toEqual(bothIds);
        expect(cachedProcesses(ownDir)).toEqual(bothIds);
        const oldPartitions = await lake.metadata.listPartitions(old!.processId);
        expect(oldPartitions.length).toBeGreaterThanOrEqual(5);
        const keptBefore = await lake.metadata.listPartitions(kept.processId);
        const covers = (p: PartitionRow) => p.blockIds.includes(firstTick!.blockId);
        expect(keptBefore.filter(covers)).toHaveLength(1);

        const deleted = await backend.retain(lake);

        // The old run's partitions went with its blocks: rows and files. So did the one of the
        // new run that held its first tick block; the new run's others stay.
        expect(deleted.blocks).toBe(oldBlocks.length + 1);
        expect(deleted.processes).toBe(1);
        expect(deleted.partitions).toBe(oldPartitions.length + 1);
        expect(deleted.blobs).toBe(deleted.blocks + 2 * deleted.partitions);
        expect(await lake.metadata.listPartitions(old!.processId)).toEqual([]);
        const gone = [...oldPartitions, ...keptBefore.filter(covers)];
        for (const path of gone.flatMap((p) => Object.values(partitionBlobPaths(p))))
          await expect(lake.blobs.get(path)).rejects.toThrow(LakeNotFoundError);
        expect((await lake.metadata.listPartitions(kept.processId)).map((p) => p.partitionId).sort()).toEqual(
          keptBefore
            .filter((p) => !covers(p))
            .map((p) => p.partitionId)
            .sort(),
        );
        expect(await lake.metadata.listGarbage(100)).toEqual([]);

        // The caches' next sweep (in the background of a look, or asked for) lets go of the
        // deleted run; the rest answers as the lake now holds it.
        const left = TICKS - firstTick!.objectCount;
        expect(await count(analytics, kept.processId)).toBe(left);
        expect(await count(own, kept.processId)).toBe(left);
        expect(await analytics.sweepGoneProcesses()).toEqual([old!.processId]);
        expect(await own.sweepGoneProcesses()).toEqual([old!.processId]);
        expect(cachedProcesses(lakeCacheDir(cacheDir, lake.identity))).toEqual([kept.processId]);
        expect(cachedProcesses(ownDir)).toEqual([kept.processId]);
        expect(existsSync(join(ownDir, 'partitions', `${old!.processId}.json`))).toBe(false);
        expect(await count(analytics)).toBe(left);
        expect(await count(own)).toBe(left);
      } finally {
        await analytics.close();
        await own.close();
      }
    } finally {
      await lake.close();
      await backend.close();
      cleanup();
    }
  }, 180_000);
});
