import { join } from 'node:path';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { SqliteMetadataStore } from '../../src/telemetry/lake/sqlite-store.js';
import { tempDir } from './fixtures.js';
import { blockRowGroupSuite, lakeSuite } from './lake-suite.js';

lakeSuite('SQLite + directory', async () => {
  const { dir, cleanup } = tempDir();
  return { open: async () => Lake.open({ data: dir }), cleanup: async () => cleanup() };
});

blockRowGroupSuite('SQLite', async () => {
  const { dir, cleanup } = tempDir();
  return {
    open: () => new SqliteMetadataStore(join(dir, 'lake.sqlite')),
    refusal: /inserting a block: NOT NULL constraint failed: blocks\.stream_id/,
    cleanup: async () => cleanup(),
  };
});
