import { describe, expect, it } from 'vitest';
import { Lake, PostgresMetadataStore } from '../../src/lake.js';
import { makeProcess } from './fixtures.js';
import { blockRowGroupSuite, lakeSuite } from './lake-suite.js';
import { scaleOutLocation, startS3, uniqueSchema } from './services.js';

lakeSuite('PostgreSQL + S3', async () => {
  const schema = uniqueSchema();
  const s3 = await startS3();
  return {
    open: async () => Lake.open(scaleOutLocation(schema.url, s3.endpoint, 'suite')),
    cleanup: async () => {
      await schema.drop();
      await s3.stop();
    },
  };
});

// For stores without conditional PUTs: HEAD, then PUT when absent.
lakeSuite('PostgreSQL + S3 without conditional writes', async () => {
  const schema = uniqueSchema();
  const s3 = await startS3();
  return {
    open: async () =>
      Lake.open(scaleOutLocation(schema.url, s3.endpoint, 'suite', '?conditionalWrites=false')),
    cleanup: async () => {
      await schema.drop();
      await s3.stop();
    },
  };
});

blockRowGroupSuite('PostgreSQL', async () => {
  const schema = uniqueSchema();
  return {
    open: () => new PostgresMetadataStore(schema.url),
    refusal: /inserting a block: .*null value in column "begin_time"/,
    cleanup: async () => schema.drop(),
  };
});

describe('a PostgreSQL lake in a schema named with capitals', () => {
  it('is made and read in that schema (PostgreSQL folds an unquoted search_path to lowercase)', async () => {
    const schema = uniqueSchema('Dorsal_Caps_');
    const store = new PostgresMetadataStore(schema.url);
    try {
      const process = makeProcess();
      expect(await store.insertProcess(process)).toBe(true);
      expect((await store.listProcesses()).map((p) => p.processId)).toEqual([process.processId]);
    } finally {
      await store.close();
      await schema.drop();
    }
  });
});
