import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { POSTGRES_URL } from './services.js';

/** An insert time older than any retention period a test uses. */
export const LONG_AGO = '2000-01-01T00:00:00.000000000Z';

/** Sets `insert_time` of some rows to long ago, through the database itself. */
export type Age = (
  table: 'processes' | 'streams' | 'blocks' | 'sink_drops',
  ids: readonly string[],
) => Promise<void>;

const ID_COLUMN = {
  processes: 'process_id',
  streams: 'stream_id',
  blocks: 'block_id',
  sink_drops: 'report_id',
};

/** Ages rows of the embedded lake in `data`. */
export function sqliteAge(data: string): Age {
  return async (table, ids) => {
    const db = new Database(join(data, 'lake.sqlite'));
    try {
      const update = db.prepare(`UPDATE ${table} SET insert_time = ? WHERE ${ID_COLUMN[table]} = ?`);
      for (const id of ids) update.run(LONG_AGO, id);
    } finally {
      db.close();
    }
  };
}

/** Ages rows of the PostgreSQL lake at `url` (its `?schema=`). */
export function postgresAge(url: string): Age {
  const schema = new URL(url).searchParams.get('schema') as string;
  return async (table, ids) => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(
        `UPDATE "${schema}".${table} SET insert_time = $1 WHERE ${ID_COLUMN[table]} = ANY($2)`,
        [LONG_AGO, [...ids]],
      );
    } finally {
      await client.end();
    }
  };
}
