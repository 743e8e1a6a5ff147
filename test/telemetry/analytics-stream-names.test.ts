import { join } from 'node:path';
import { expect, it } from 'vitest';
import { writeBenchRun } from '../../bench/analytics/data.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { tempDir } from './fixtures.js';

// DuckDB's names ignore case and end at a NUL: runs that spell a stream differently, or a writer
// (through ingestion) that puts a NUL in a stream's name, made views that could not be created,
// and every query of the lake's processes failed.
it('reads streams whose names differ in case only across runs, or hold a NUL, each process with its own spelling', async () => {
  const { dir, cleanup } = tempDir('dorsal-stream-names-');
  try {
    const spellings = ['Ticks', 'ticks', 'ti\0cks'];
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
      for (const [i, run] of runs.entries()) {
        const tree = await analytics.tree({ process: run.processId, stream: spellings[i]!, seq: 3 });
        expect([tree.root.stream, tree.nodes]).toEqual([spellings[i], 5]);
        // Another run's spelling names no message of this one.
        await expect(
          analytics.tree({ process: run.processId, stream: spellings[(i + 1) % 3]!, seq: 3 }),
        ).rejects.toThrow('tree: no message');
      }
    } finally {
      await analytics.close();
    }
  } finally {
    cleanup();
  }
}, 60_000);
