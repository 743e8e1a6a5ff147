import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyticsCacheDir } from '../../src/cli/analytics-cache-dir.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import {
  forgetGoneProcesses,
  GoneProcessSweep,
  type SweptLake,
} from '../../src/telemetry/analytics/gone-processes.js';
import { lakeCacheDir } from '../../src/telemetry/analytics/lake-cache-dir.js';
import { LakePartitionStore } from '../../src/telemetry/analytics/lake-partitions.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { makeProcess, tempDir } from './fixtures.js';
import { uniqueSchema } from './services.js';

/** Cached partition files of a process, as the cache lays them out: `files` in each of two views. */
function cache(root: string, processId: string, files = 1): void {
  for (const view of ['stream_ticks', 'log']) {
    const dir = join(root, 'views', view, `process_id=${processId}`);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < files; i++) writeFileSync(join(dir, `${i}.parquet`), 'PAR1');
  }
}

/** The process ids the cache under `root` holds files of. */
function cached(root: string): string[] {
  const dir = join(root, 'views', 'stream_ticks');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((entry) => entry.slice('process_id='.length))
    .sort();
}

describe('the sweep of the processes retention deleted', () => {
  it.each([
    ['SQLite', (dir: string) => ({ lake: Lake.open({ data: dir }), drop: async () => {} })],
    [
      'PostgreSQL',
      (dir: string) => {
        const schema = uniqueSchema();
        return { lake: Lake.open({ db: schema.url, blobs: dir }), drop: schema.drop };
      },
    ],
  ] as const)(
    'asks the lake (%s) about the cached ids only, and removes a bounded number of files per sweep',
    async (_name, open) => {
      const { dir, cleanup } = tempDir('dorsal-gone-');
      const { lake, drop } = open(join(dir, 'lake'));
      try {
        const kept = makeProcess();
        await lake.metadata.insertProcess(kept);
        const root = join(dir, 'cache');
        const gone = Array.from({ length: 4 }, () => makeProcess().processId).sort();
        for (const id of gone) cache(root, id, 3);
        cache(root, kept.processId, 3);
        expect(await lake.processIdsIn([...gone, kept.processId.toUpperCase()])).toEqual([kept.processId]);
        // 6 files a process, 10 at most a sweep: two processes a sweep (whole processes).
        expect(await forgetGoneProcesses(root, lake, undefined, 10)).toEqual(gone.slice(0, 2));
        expect(cached(root)).toEqual([...gone.slice(2), kept.processId].sort());
        expect(await forgetGoneProcesses(root, lake, undefined, 10)).toEqual(gone.slice(2));
        expect(await forgetGoneProcesses(root, lake, undefined, 10)).toEqual([]);
        expect(cached(root)).toEqual([kept.processId]);
      } finally {
        await lake.close();
        await drop();
        cleanup();
      }
    },
  );

  it('runs in the background at the first look, then at its own interval, not at every look', async () => {
    const { dir, cleanup } = tempDir('dorsal-gone-interval-');
    const lake = Lake.open({ data: join(dir, 'lake') });
    const cacheDir = join(dir, 'cache');
    const process = makeProcess();
    const goneId = makeProcess().processId;
    const analytics = await Analytics.open({ lake, cacheDir, freshnessMs: 0 });
    try {
      await lake.metadata.insertProcess(process);
      for (let i = 0; i < 3; i++)
        await analytics.query('SELECT count(*) FROM processes', { process: process.processId });
      expect(analytics.goneProcessSweeps).toBe(1);
      // Cached since the first sweep: kept by the looks until the next one.
      const own = lakeCacheDir(cacheDir, lake.identity);
      cache(own, goneId);
      for (let i = 0; i < 3; i++)
        await analytics.query('SELECT count(*) FROM processes', { process: process.processId });
      expect(analytics.goneProcessSweeps).toBe(1);
      expect(cached(own)).toEqual([goneId]);
      expect(await analytics.sweepGoneProcesses()).toEqual([goneId]);
      expect(analytics.goneProcessSweeps).toBe(2);
      expect(cached(own)).toEqual([]);
    } finally {
      await analytics.close();
      await lake.close();
      cleanup();
    }
  });

  it("keeps each lake's copies apart in a shared cache directory, and leaves an older version's alone", async () => {
    const { dir, cleanup } = tempDir('dorsal-gone-shared-');
    const cacheDir = join(dir, 'cache');
    const a = Lake.open({ data: join(dir, 'a') });
    const b = Lake.open({ data: join(dir, 'b') });
    const p = makeProcess();
    const q = makeProcess();
    // Copies a previous version wrote in the cache directory itself (no 'lakes' mark), of lake B's
    // live process: another lake's to lake A.
    const legacy = makeProcess().processId;
    cache(cacheDir, q.processId);
    cache(cacheDir, legacy);
    const analyticsA = await Analytics.open({ lake: a, cacheDir });
    const analyticsB = await Analytics.open({ lake: b, cacheDir });
    try {
      await a.metadata.insertProcess(p);
      await b.metadata.insertProcess(q);
      await analyticsA.query('SELECT count(*) FROM processes', { process: p.processId });
      await analyticsB.query('SELECT count(*) FROM processes', { process: q.processId });
      const [ownA, ownB] = [lakeCacheDir(cacheDir, a.identity), lakeCacheDir(cacheDir, b.identity)];
      expect(ownA).not.toBe(ownB);
      const [goneA, goneB] = [makeProcess().processId, makeProcess().processId];
      cache(ownA, p.processId);
      cache(ownA, goneA);
      cache(ownB, q.processId);
      cache(ownB, goneB);
      // Each lake's sweep lets go of its own gone processes, and sees nothing else.
      expect(await analyticsA.sweepGoneProcesses()).toEqual([goneA]);
      expect(await analyticsB.sweepGoneProcesses()).toEqual([goneB]);
      expect(cached(ownA)).toEqual([p.processId]);
      expect(cached(ownB)).toEqual([q.processId]);
      expect(cached(cacheDir)).toEqual([q.processId, legacy].sort());
    } finally {
      await analyticsA.close();
      await analyticsB.close();
      await a.close();
      await b.close();
      cleanup();
    }
  });

  it('lets go of nothing in a directory marked as serving two lakes', async () => {
    const { dir, cleanup } = tempDir('dorsal-gone-marked-');
    const root = join(dir, 'cache');
    const a = Lake.open({ data: join(dir, 'a') });
    const b = Lake.open({ data: join(dir, 'b') });
    try {
      const gone = makeProcess().processId;
      cache(root, gone);
      expect(await forgetGoneProcesses(root, b)).toEqual([gone]);
      cache(root, gone);
      await expect(forgetGoneProcesses(root, a)).rejects.toThrow(/serves several lakes/);
      await expect(forgetGoneProcesses(root, b)).rejects.toThrow(/serves several lakes/);
      expect(cached(root)).toEqual([gone]);
    } finally {
      await a.close();
      await b.close();
      cleanup();
    }
  });

  it('tells a sweep that failed or was refused to onSweepFailed', async () => {
    const { dir, cleanup } = tempDir('dorsal-gone-failed-');
    const lake = Lake.open({ data: join(dir, 'lake') });
    const cacheDir = join(dir, 'cache');
    const failures: string[] = [];
    const analytics = await Analytics.open({
      lake,
      cacheDir,
      onSweepFailed: (error) => failures.push(error.message),
    });
    try {
      const own = lakeCacheDir(cacheDir, lake.identity);
      const gone = makeProcess().processId;
      cache(own, gone);
      // Another lake named in this lake's directory (two identities whose digests collide).
      writeFileSync(join(own, 'lakes'), 'another lake\n');
      expect(await analytics.sweepGoneProcesses()).toEqual([]);
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatch(/serves several lakes/);
      expect(cached(own)).toEqual([gone]);
    } finally {
      await analytics.close();
      await lake.close();
      cleanup();
    }
  });

  it('runs one sweep at a time, begins none once closed, and closes after the last', async () => {
    const { dir, cleanup } = tempDir('dorsal-gone-serial-');
    const lake = Lake.open({ data: join(dir, 'lake') });
    const store = new LakePartitionStore(lake, join(dir, 'cache'));
    let asking = 0;
    let most = 0;
    let answered = 0;
    // The lake, answering slowly (a busy database), and counting the sweeps that ask it at once.
    const slow: SweptLake = {
      identity: lake.identity,
      processIdsIn: async (ids) => {
        asking += 1;
        most = Math.max(most, asking);
        try {
          await new Promise((resolve) => setTimeout(resolve, 20));
          return await lake.processIdsIn(ids);
        } finally {
          asking -= 1;
          answered += 1;
        }
      },
    };
    const sweep = new GoneProcessSweep(store, slow, 60_000);
    try {
      const gone = makeProcess().processId;
      cache(store.cacheDir, gone);
      let firstDone = false;
      const first = sweep.sweep().then((ids) => {
        firstDone = true;
        return ids;
      });
      const second = sweep.sweep();
      const third = sweep.sweep();
      await sweep.close();
      // Closed while the others waited for the first: close waited for it, and neither began.
      expect(firstDone).toBe(true);
      expect(most).toBe(1);
      expect(answered).toBe(1);
      expect(await first).toEqual([gone]);
      expect(await second).toEqual([]);
      expect(await third).toEqual([]);
      cache(store.cacheDir, gone);
      expect(await sweep.sweep()).toEqual([]);
      sweep.poke();
      expect(sweep.sweeps).toBe(1);
      expect(cached(store.cacheDir)).toEqual([gone]);
    } finally {
      await lake.close();
      cleanup();
    }
  });
});

describe("a server's default analytics cache directory", () => {
  it('is one per lake: relative paths resolved, --data counted', () => {
    const relative = { data: 'dorsal-data', db: 'lake.sqlite', blobs: 'blobs' };
    const absolute = { data: '/elsewhere', db: resolve('lake.sqlite'), blobs: resolve('blobs') };
    // The same lake named two ways: one directory (the relative paths are this directory's).
    expect(analyticsCacheDir(relative)).toBe(analyticsCacheDir(absolute));
    // Another directory's files: another lake.
    expect(analyticsCacheDir(relative)).not.toBe(
      analyticsCacheDir({ ...absolute, db: resolve('other', 'lake.sqlite') }),
    );
    // S3 blobs without --db: the metadata is --data's SQLite file.
    const s3 = 's3://bucket/lake?endpoint=http://127.0.0.1:9000';
    expect(analyticsCacheDir({ data: '/srv/a', blobs: s3 })).not.toBe(
      analyticsCacheDir({ data: '/srv/b', blobs: s3 }),
    );
    // A password is no part of the lake; the user is (the database defaults to its name).
    expect(
      analyticsCacheDir({ data: '/srv/a', db: 'postgres://u:secret@db:5432/lake?schema=x', blobs: s3 }),
    ).toBe(analyticsCacheDir({ data: '/srv/b', db: 'postgres://u@db/lake?schema=x', blobs: s3 }));
    expect(analyticsCacheDir({ data: '/srv/a', db: 'postgres://u@db/lake?schema=x', blobs: s3 })).not.toBe(
      analyticsCacheDir({ data: '/srv/a', db: 'postgres://v@db/lake?schema=x', blobs: s3 }),
    );
    expect(analyticsCacheDir({ data: '/srv/a', analyticsCache: '/cache' })).toBe('/cache');
  });
});
