import { Lake } from '../../src/telemetry/lake/lake.js';
import { tempDir } from './fixtures.js';
import { lakeSuite } from './lake-suite.js';

lakeSuite('SQLite + directory', async () => {
  const { dir, cleanup } = tempDir();
  return { open: async () => Lake.open({ data: dir }), cleanup: async () => cleanup() };
});
