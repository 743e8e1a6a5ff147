import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { LakeConfigError, LakeUnavailableError } from '../../src/telemetry/errors.js';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { LakeLocation } from '../../src/telemetry/lake/open.js';
import { PostgresMetadataStore } from '../../src/telemetry/lake/postgres-store.js';
import { applyRetention } from '../../src/telemetry/lake/retention.js';
import { BLOCK_COLUMNS, blockParams } from '../../src/telemetry/lake/rows.js';
import { S3BlobStore } from '../../src/telemetry/lake/s3-blobs.js';
import { uniqueBlobPath } from '../../src/telemetry/lake/types.js';
import { nowRfc3339Ns } from '../../src/telemetry/wire/index.js';
import { until } from '../helpers/until.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { type Age, postgresAge, sqliteAge } from './lake-age.js';
import { POSTGRES_URL, scaleOutLocation, startS3, uniqueSchema } from './services.js';

const { dir, cleanup } = tempDir('dorsal-lake-edges-');
afterAll(cleanup);

/** A lake under test: how to open it, age its rows, read a stored total as text, and clean up. */
interface Made {
  readonly location: LakeLocation;
  readonly age: Age;
  /** The `total` column of a drop report, as the database holds it (text: no JS number between). */
  readonly storedTotal: (reportId: string) => Promise<string>;
  readonly cleanup: () => Promise<void>;
}

const lakes: [string, (name: string) => Promise<Made>][] = [
  [
    'SQLite',
    async (name) => {
      const data = join(dir, name);
      return {
        location: { data },
        age: sqliteAge(data),
        storedTotal: async (reportId) => {
          const db = new Database(join(data, 'lake.sqlite'), { readonly: true });
          try {
            const row = db
              .prepare<[string], { t: string }>(
                'SELECT CAST(total AS TEXT) AS t FROM sink_drops WHERE report_id = ?',
              )
              .get(reportId);
            return row!.t;
          } finally {
            db.close();
          }
        },
        cleanup: async () => {},
      };
    },
  ],
  [
    'PostgreSQL + S3',
    async (name) => {
      const schema = uniqueSchema();
      const s3 = await startS3();
      const schemaName = new URL(schema.url).searchParams.get('schema') as string;
      return {
        location: scaleOutLocation(schema.url, s3.endpoint, name),
        age: postgresAge(schema.url),
        storedTotal: async (reportId) => {
          const client = new pg.Client({ connectionString: POSTGRES_URL });
          await client.connect();
          try {
            const { rows } = await client.query<{ t: string }>(
              `SELECT total::text AS t FROM "${schemaName}".sink_drops WHERE report_id = $1`,
              [reportId],
            );
            return rows[0]!.t;
          } finally {
            await client.end();
          }
        },
        cleanup: async () => {
          await schema.drop();
          await s3.stop();
        },
      };
    },
  ],
];

for (const [name, make] of lakes) {
  describe(`${name}: drop reports`, () => {
    it('retention keeps a process whose streams went while it has drop reports: none is left referring to nothing', async () => {
      const made = await make('drops-keep');
      const service = new IngestionService(made.location);
      try {
        const process = makeProcess();
        await service.ingestProcess(process);
        await made.age('processes', [process.processId]);
        // A sink that lost everything still reports its drops: a recent report of an old process.
        const reportId = randomUUID();
        await service.ingestDrops({
          reportId,
          processId: process.processId,
          time: nowRfc3339Ns(),
          counts: { full: 5 },
        });
        const report = await applyRetention(service.lake, { days: 1, pauseMs: 0 });
        expect(report.processes).toBe(0);
        expect((await service.lake.processes()).map((p) => p.processId)).toEqual([process.processId]);
        expect((await service.lake.drops()).map((d) => d.reportId)).toEqual([reportId]);
        // Once its reports have expired too, the process goes with them, in one pass.
        await made.age('sink_drops', [reportId]);
        expect(await applyRetention(service.lake, { days: 1, pauseMs: 0 })).toMatchObject({
          processes: 1,
          dropReports: 1,
        });
        expect(await service.lake.drops()).toEqual([]);
        expect(await service.lake.processes()).toEqual([]);
      } finally {
        await service.close();
        await made.cleanup();
      }
    });

    it("a report's total is stored exactly, past 2^53 (each count may reach 2^53 - 1)", async () => {
      const made = await make('drops-total');
      const service = new IngestionService(made.location);
      try {
        const process = makeProcess();
        await service.ingestProcess(process);
        const reportId = randomUUID();
        const most = Number.MAX_SAFE_INTEGER;
        await service.ingestDrops({
          reportId,
          processId: process.processId,
          time: nowRfc3339Ns(),
          counts: { a: most, b: most, c: 3 },
        });
        expect(await made.storedTotal(reportId)).toBe((2n * BigInt(most) + 3n).toString());
      } finally {
        await service.close();
        await made.cleanup();
      }
    });
  });
}

/**
 * Whether a backend waits for a lock the backend $1 holds. From `pg_locks`, which is read live:
 * `pg_stat_activity`, asked in a transaction, answers from the snapshot of its first reading.
 */
const BLOCKED = 'SELECT 1 FROM pg_locks WHERE NOT granted AND $1::int = ANY(pg_blocking_pids(pid))';
const backendPid = async (client: pg.Client): Promise<number> =>
  (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

describe('PostgreSQL: a drop report and the deletion of its process', () => {
  it('a report inserted while retention deletes its process waits for it and finds the process gone', async () => {
    const schema = uniqueSchema();
    const schemaName = new URL(schema.url).searchParams.get('schema') as string;
    const store = new PostgresMetadataStore(schema.url);
    const retention = new pg.Client({ connectionString: POSTGRES_URL });
    await retention.connect();
    try {
      const process = makeProcess();
      await store.insertProcess(process);
      // Retention's deletion of the process, as `deleteEmpty` makes it, left uncommitted.
      await retention.query('BEGIN');
      await retention.query(
        `SELECT process_id FROM "${schemaName}".processes WHERE process_id = $1 FOR UPDATE`,
        [process.processId],
      );
      await retention.query(`DELETE FROM "${schemaName}".processes WHERE process_id = $1`, [
        process.processId,
      ]);
      let settled = false;
      const inserting = store
        .insertDropReport({
          reportId: randomUUID(),
          processId: process.processId,
          time: nowRfc3339Ns(),
          counts: { full: 1 },
        })
        .finally(() => {
          settled = true;
        });
      // The insert either went in past the uncommitted deletion, or waits for its lock.
      await until(
        async () => settled || (await retention.query(BLOCKED, [await backendPid(retention)])).rowCount! > 0,
        'the drop report insert to be done or to wait',
      );
      await retention.query('COMMIT');
      expect(await inserting).toBe(false);
      expect(await store.listDropReports()).toEqual([]);
    } finally {
      await retention.end();
      await store.close();
      await schema.drop();
    }
  });
});

describe('PostgreSQL: two servers inserting the same blocks in crossed orders', () => {
  it('the later group finds them there (inserted: false), not a deadlock', async () => {
    const schema = uniqueSchema();
    const schemaName = new URL(schema.url).searchParams.get('schema') as string;
    const store = new PostgresMetadataStore(schema.url);
    const other = new pg.Client({ connectionString: POSTGRES_URL });
    await other.connect();
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await store.insertProcess(process);
      await store.insertStream(stream);
      const blocks = [1, 2, 3].map((seed) => makeBlock(stream, 4, seed).block);
      // The database's order of their ids (its collation's).
      const { rows: order } = await other.query<{ id: string }>(
        'SELECT unnest($1::text[]) AS id ORDER BY 1',
        [blocks.map((b) => b.blockId)],
      );
      const [low, middle, high] = order.map(({ id }) => blocks.find((b) => b.blockId === id)!);
      const insertOne = (block: (typeof blocks)[number]) =>
        other.query(
          `INSERT INTO "${schemaName}".blocks (${BLOCK_COLUMNS}) VALUES (${BLOCK_COLUMNS.split(',')
            .map((_, i) => `$${i + 1}`)
            .join(',')})`,
          blockParams(
            block,
            10,
            nowRfc3339Ns(),
            uniqueBlobPath(block.processId, block.streamId, block.blockId),
          ),
        );
      // The other server's group, in id order, has inserted `low` and has yet to insert the others.
      await other.query('BEGIN');
      await insertOne(low!);
      // This server's group (in one turn of the event loop: one INSERT), `low` in the middle: in
      // arrival order or its reverse (as a hash join emits it), a block came before `low`.
      const arrived = [middle!, low!, high!];
      const settled = Promise.allSettled(
        arrived.map((b) => store.insertBlock(b, 10, uniqueBlobPath(b.processId, b.streamId, b.blockId))),
      );
      await until(
        async () => (await other.query(BLOCKED, [await backendPid(other)])).rowCount! > 0,
        'the group to wait for the other server',
      );
      await insertOne(middle!);
      await insertOne(high!);
      await other.query('COMMIT');
      const outcomes = await settled;
      expect(
        outcomes.map((o) =>
          o.status === 'fulfilled'
            ? o.value
            : `${(o.reason as Error).constructor.name}: ${(o.reason as Error).message}`,
        ),
      ).toEqual([false, false, false]);
    } finally {
      await other.query('ROLLBACK').catch(() => {});
      await other.end();
      await store.close();
      await schema.drop();
    }
  });
});

describe('S3 URL options', () => {
  const refused: [string, RegExp][] = [
    ['s3://lake/p?conditionalWrites=False', /'conditionalWrites' must be true or false, got "False"/],
    ['s3://lake/p?conditionalWrites=0', /'conditionalWrites' must be true or false, got "0"/],
    ['s3://lake/p?forcePathStyle=no', /'forcePathStyle' must be true or false, got "no"/],
    ['s3://lake/p?forcePathStyle=', /'forcePathStyle' must be true or false, got ""/],
    ['s3://lake/p?region=', /'region' must be a region name .*got ""/],
    ['s3://lake/p?region=us%20east', /'region' must be a region name .*got "us east"/],
    ['s3://lake/p?region=../../x', /'region' must be a region name/],
    ['s3://lake/p?endpoint=', /'endpoint' must be an http:\/\/ or https:\/\/ URL, got ""/],
    ['s3://lake/p?endpoint=ftp://127.0.0.1:9000', /'endpoint' must be an http:\/\/ or https:\/\/ URL/],
    ['s3://lake/p?endpoint=127.0.0.1:9000', /'endpoint' must be an http:\/\/ or https:\/\/ URL/],
  ];
  it.each(refused)('refuses %s at start, naming the option and its value', (url, message) => {
    expect(() => S3BlobStore.fromUrl(url)).toThrow(LakeConfigError);
    expect(() => S3BlobStore.fromUrl(url)).toThrow(message);
    // As the servers and `dorsal retention` open it: refused at start, not a crash or a 503.
    expect(() => Lake.open({ data: join(dir, 'refused'), blobs: url })).toThrow(LakeConfigError);
  });

  it.each([{ region: '' }, { region: 'us east' }, { endpoint: '' }, { endpoint: 'not a url' }])(
    'refuses the option %o given in code',
    (options) => {
      expect(() => new S3BlobStore('lake', 'p', options)).toThrow(LakeConfigError);
    },
  );

  it('takes exactly true and false, and a region and an endpoint that are one', async () => {
    const options = async (url: string) => {
      const store = S3BlobStore.fromUrl(url);
      const { client, conditional } = store as unknown as {
        client: { config: { forcePathStyle: boolean; region: () => Promise<string> } };
        conditional: boolean;
      };
      const taken = {
        conditional,
        pathStyle: client.config.forcePathStyle,
        region: await client.config.region(),
      };
      await store.close();
      return taken;
    };
    expect(await options('s3://lake/p?conditionalWrites=false&forcePathStyle=true&region=eu-west-3')).toEqual(
      {
        conditional: false,
        pathStyle: true,
        region: 'eu-west-3',
      },
    );
    expect(
      await options(
        's3://lake/p?conditionalWrites=true&forcePathStyle=false&region=auto&endpoint=https://s3.example:9000',
      ),
    ).toEqual({ conditional: true, pathStyle: false, region: 'auto' });
    // Not a flag of another spelling taken for true.
    expect(() => S3BlobStore.fromUrl('s3://lake/p?conditionalWrites=FALSE')).toThrow(LakeConfigError);
  });

  it('a region the SDK would refuse at every request is refused at start, not taken for a store that is down', async () => {
    const s3 = await startS3();
    try {
      const location = scaleOutLocation(uniqueSchema().url, s3.endpoint, 'bad-region', '?region=us_east');
      let error: unknown;
      try {
        const lake = Lake.open(location);
        await lake.blobs.ping().finally(() => lake.close());
      } catch (caught) {
        error = caught;
      }
      expect(error).not.toBeInstanceOf(LakeUnavailableError);
      expect(error).toBeInstanceOf(LakeConfigError);
    } finally {
      await s3.stop();
    }
  });
});
