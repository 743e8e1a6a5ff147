import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import pg from 'pg';
import S3rver from 's3rver';
import type { LakeLocation } from '../../src/lake.js';
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
export function uniqueSchema(prefix = 'dorsal_test_'): { url: string; drop: () => Promise<void> } {
  const schema = `${prefix}${randomBytes(6).toString('hex')}`;
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

interface KoaContext {
  readonly method: string;
  readonly path: string;
  readonly store: { existsObject(bucket: string, key: string): Promise<boolean> };
  get(header: string): string;
  status: number;
  type: string;
  body: unknown;
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

/**
 * s3rver honours `If-None-Match` on GET only. S3 (since 2024) and MinIO refuse a PUT with
 * `If-None-Match: *` over an existing object with 412, and the lake's create-only blob writes
 * rely on it: this adds that to the stand-in, ahead of its routes. Conditional PUTs of one key
 * run one after the other, so that of two at once exactly one creates the object.
 */
function honourIfNoneMatch(server: S3rver): void {
  const last = new Map<string, Promise<void>>();
  const conditionalPut: KoaMiddleware = async (ctx, next) => {
    if (ctx.method !== 'PUT' || ctx.get('if-none-match') !== '*') return next();
    const [, bucket = '', ...key] = decodeURIComponent(ctx.path).split('/');
    const id = `${bucket}/${key.join('/')}`;
    const before = last.get(id) ?? Promise.resolve();
    const mine = before.then(async () => {
      if (await ctx.store.existsObject(bucket, key.join('/'))) {
        ctx.status = 412;
        ctx.type = 'application/xml';
        ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code></Error>';
        return;
      }
      await next();
    });
    const settled = mine.catch(() => undefined);
    last.set(id, settled);
    void settled.then(() => {
      if (last.get(id) === settled) last.delete(id);
    });
    return mine;
  };
  (server as unknown as { middleware: KoaMiddleware[] }).middleware.unshift(conditionalPut);
}

/**
 * Holds the stand-in's object reads (GETs of a key, not listings) while held, as a blob store that
 * stops answering does, and counts the reads it answered.
 */
export class ReadGate {
  /** Object reads answered so far. */
  served = 0;
  /** Object reads held now. */
  waiting = 0;
  private held = false;
  private opened: Promise<void> = Promise.resolve();
  private open: () => void = () => {};

  /** Holds the reads from now (once: holding again while held changes nothing). */
  hold(): void {
    if (this.held) return;
    this.held = true;
    this.opened = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  release(): void {
    this.held = false;
    this.open();
  }

  readonly middleware: KoaMiddleware = async (ctx, next) => {
    const [, , ...key] = decodeURIComponent(ctx.path).split('/');
    if (ctx.method !== 'GET' || key.join('/') === '') return next();
    this.waiting++;
    try {
      await this.opened;
    } finally {
      this.waiting--;
    }
    await next();
    this.served++;
  };
}

/** A local S3-compatible server on loopback with one bucket, `lake`; `gate` holds its object reads when asked. */
export async function startS3(gate?: ReadGate): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const { dir, cleanup } = tempDir('dorsal-s3-');
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: [{ name: 'lake' }],
  });
  honourIfNoneMatch(server);
  if (gate !== undefined)
    (server as unknown as { middleware: KoaMiddleware[] }).middleware.unshift(gate.middleware);
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      await server.close();
      cleanup();
    },
  };
}

/** A lake location on PostgreSQL + s3rver; `query`: options of the `s3://` URL, e.g. `?conditionalWrites=false`. */
export function scaleOutLocation(dbUrl: string, endpoint: string, prefix: string, query = ''): LakeLocation {
  return {
    db: dbUrl,
    blobs: `s3://lake/${prefix}${query}`,
    s3: { endpoint, credentials: S3RVER_CREDENTIALS },
  };
}
