import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { expect, it } from 'vitest';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { lakeCacheDir } from '../../src/telemetry/analytics/lake-cache-dir.js';
import { runPersistedPipeline } from './analytics-checks.js';
import { tempDir } from './fixtures.js';

/** The Parquet files under `dir`. */
function parquetFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.parquet'))
    .map((e) => join(e.parentPath, e.name));
}

it('a session whose views cannot be made (a partition file removed since the look) closes its connection, and the query looks again', async () => {
  const { dir, cleanup } = tempDir('dorsal-sessions-');
  try {
    await runPersistedPipeline({ data: dir }, 200);
    const cacheDir = join(dir, 'analytics');
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir, freshnessMs: 0 });
    // The connections the analytics opened and has not closed, counted on its query database.
    const db = (analytics as unknown as { queryDb: DuckDBInstance }).queryDb;
    const connect = db.connect.bind(db);
    let open = 0;
    /**
     * Removes the cached partition files at the next connections: a query's session's (its text
     * asked before, its parse is kept: it opens no parser's connection).
     */
    let removals = 0;
    db.connect = async (): Promise<DuckDBConnection> => {
      const connection = await connect();
      open++;
      const close = connection.closeSync.bind(connection);
      connection.closeSync = () => {
        open--;
        close();
      };
      if (removals > 0) {
        removals--;
        // As another analytics sharing the cache does when it merged them away.
        for (const file of parquetFiles(join(lakeCacheDir(cacheDir, analytics.lake.identity), 'views')))
          rmSync(file);
      }
      return connection;
    };
    try {
      const count = (end: string) => analytics.query('SELECT count(*) FROM stream_ticks', { end });
      const all = Number((await count('2100-01-01T00:00:00Z')).rows[0]![0]);
      expect(all).toBe(200);
      const sessions = open;
      // Each in a scope of its own (a session made anew), its files removed after the look.
      for (const end of ['2100-01-02T00:00:00Z', '2100-01-03T00:00:00Z']) {
        removals = 1;
        expect(Number((await count(end)).rows[0]![0])).toBe(all);
      }
      expect(open).toBe(sessions + 2);
      // Removed at every look: the query fails, saying the file, and leaves no connection open.
      removals = Number.POSITIVE_INFINITY;
      await expect(count('2100-01-04T00:00:00Z')).rejects.toThrow(/\.parquet/);
      removals = 0;
      expect(open).toBe(sessions + 2);
    } finally {
      await analytics.close();
    }
    expect(open).toBe(0);
  } finally {
    cleanup();
  }
}, 120_000);
