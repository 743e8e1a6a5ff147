import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import pg from 'pg';
import S3rver from 's3rver';
import type { LakeLocation } from '../../src/telemetry/lake/open.js';
import { tempDir } from './fixtures.js';

/**
 * Real protocol peers for the scale-out lake: the machine's PostgreSQL (a fresh schema per test
 * file, dropped afterwards, so parallel files never collide) and s3rver on loopback.
 */

/** The PostgreSQL server the tests use (`DORSAL_TEST_POSTGRES_URL` overrides it). */
export const POSTGRES_URL =
  process.env.DORSAL_TEST_POSTGRES_URL ??
  `postgres://${encodeURIComponent(userInfo().username)}@127.0.0.1:5432/test`;

/** A unique schema name; the lake creates it on first use. */
export function uniqueSchema(): { url: string; drop: () => Promise<void> } {
  const schema = `dorsal_test_${randomBytes(6).toString('hex')}`;
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('schema', schema);
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

/** The credentials s3rver accepts. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** A local S3-compatible server on loopback with one bucket, `lake`. */
export async function startS3(): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const { dir, cleanup } = tempDir('dorsal-s3-');
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: [{ name: 'lake' }],
  });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      await server.close();
      cleanup();
    },
  };
}

/** A lake location on PostgreSQL + s3rver. */
export function scaleOutLocation(dbUrl: string, endpoint: string, prefix: string): LakeLocation {
  return {
    db: dbUrl,
    blobs: `s3://lake/${prefix}`,
    s3: { endpoint, credentials: S3RVER_CREDENTIALS },
  };
}
