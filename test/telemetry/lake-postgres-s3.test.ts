import net from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { Lake, PostgresMetadataStore } from '../../src/lake.js';
import { answeredCode, LakeConfigError, LakeUnavailableError } from '../../src/telemetry/errors.js';
import { uniqueBlobPath } from '../../src/telemetry/lake/types.js';
import { until } from '../helpers/until.js';
import { makeBlock, makeProcess, makeStream } from './fixtures.js';
import { blockRowGroupSuite, lakeSuite } from './lake-suite.js';
import { POSTGRES_URL, scaleOutLocation, startS3, uniqueSchema } from './services.js';

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

describe('a PostgreSQL group of block rows whose answer is lost', () => {
  it('fails every row of the group: none is told "already there" of its own committed row', async () => {
    // A TCP proxy that forwards a multi-row block INSERT and then cuts the connection before the
    // server's answer comes back: the group commits, and its outcome is unknown to the client.
    let armed = false;
    let cuts = 0;
    const proxy = net.createServer((client) => {
      const server = net.connect(Number(new URL(POSTGRES_URL).port || 5432), '127.0.0.1');
      let cutting = false;
      client.on('data', (chunk) => {
        server.write(chunk);
        if (armed && chunk.toString('latin1').includes('RETURNING blob_path')) {
          armed = false;
          cutting = true;
          cuts++;
          setTimeout(() => {
            client.destroy();
            server.destroy();
          }, 300);
        }
      });
      server.on('data', (chunk) => {
        if (!cutting) client.write(chunk);
      });
      client.on('error', () => {});
      server.on('error', () => {});
      client.on('close', () => server.destroy());
      server.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const schema = uniqueSchema();
    const url = new URL(schema.url);
    url.host = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    const store = new PostgresMetadataStore(url.toString());
    try {
      const process = makeProcess();
      const stream = makeStream(process.processId);
      await store.insertProcess(process);
      await store.insertStream(stream);
      const blocks = [1, 2, 3].map((seed) => makeBlock(stream, 4, seed).block);
      const paths = blocks.map((b) => uniqueBlobPath(b.processId, b.streamId, b.blockId));
      armed = true;
      // In one turn of the event loop: one group, one INSERT.
      const settled = await Promise.allSettled(blocks.map((b, i) => store.insertBlock(b, 10, paths[i]!)));
      expect(cuts).toBe(1);
      // Unknown, not "not inserted": ingestion keeps each block's file, and the client sends again.
      expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected']);
      for (const s of settled)
        expect((s as PromiseRejectedResult).reason).toBeInstanceOf(LakeUnavailableError);
      // The group did commit: each row is there, naming the file of this write.
      for (const [i, block] of blocks.entries())
        expect((await store.findBlock(block.blockId))?.blobPath).toBe(paths[i]);
    } finally {
      await store.close();
      proxy.close();
      await schema.drop();
    }
  });
});

describe('PostgreSQL lake URLs', () => {
  it("a URL's own options apply, and the store's search_path and statement timeout after them", async () => {
    const schema = uniqueSchema();
    const url = new URL(schema.url);
    url.searchParams.set('options', '-c application_name=mine');
    const store = new PostgresMetadataStore(url.toString(), { statementTimeoutMs: 12_345 });
    try {
      // Asked of the pool itself: the lake is never made (the URL's options once replaced the
      // store's, and its tables went to public).
      const { rows } = await (store as unknown as { pool: pg.Pool }).pool.query<Record<string, string>>(
        `SELECT current_setting('search_path') AS search_path, current_setting('statement_timeout') AS statement_timeout,
                current_setting('application_name') AS application_name`,
      );
      expect(rows[0]).toEqual({
        search_path: `"${new URL(schema.url).searchParams.get('schema')}"`,
        statement_timeout: '12345ms',
        application_name: 'mine',
      });
    } finally {
      await store.close();
      await schema.drop();
    }
  });

  it('refuses what it cannot take, with a clear error: timeouts in the URL, a URL that does not parse', () => {
    const schema = uniqueSchema();
    const withParams = (params: Record<string, string>): string => {
      const url = new URL(schema.url);
      for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
      return url.toString();
    };
    const refused: Record<string, string>[] = [
      { query_timeout: '0' },
      { statement_timeout: '5000', statementTimeoutMs: '5000' },
      { statement_timeout: 'soon' },
      { options: '-c statement_timeout=7000' },
      { options: '--search_path=public' },
      { options: '-c search-path=public' },
      { options: '--statement-timeout=0' },
    ];
    for (const params of refused) {
      expect(() => new PostgresMetadataStore(withParams(params)), JSON.stringify(params)).toThrow(
        LakeConfigError,
      );
    }
    expect(() => new PostgresMetadataStore('postgres://[bad')).toThrow(/is no valid PostgreSQL URL/);
    expect(() => Lake.open({ db: schema.url, blobs: 's3://lake/%E0%A4%A' })).toThrow(/is no valid S3 URL/);
    expect(() => Lake.open({ db: schema.url, blobs: 's3://[bad/x' })).toThrow(LakeConfigError);
  });

  it("a URL's statement_timeout is taken as statementTimeoutMs", async () => {
    const schema = uniqueSchema();
    const url = new URL(schema.url);
    url.searchParams.set('statement_timeout', '4321');
    const store = new PostgresMetadataStore(url.toString());
    try {
      const { rows } = await (store as unknown as { pool: pg.Pool }).pool.query<{ t: string }>(
        "SELECT current_setting('statement_timeout') AS t",
      );
      expect(rows[0]!.t).toBe('4321ms');
    } finally {
      await store.close();
      await schema.drop();
    }
  });

  it('a statement timeout at the top of its range still lets queries run (the client waits as long as a timer can)', async () => {
    const schema = uniqueSchema();
    const store = new PostgresMetadataStore(schema.url, { statementTimeoutMs: 2_147_483_000 });
    try {
      // A statement of 50 ms: past the timer's range, the client gave up on it after 1 ms.
      await (store as unknown as { pool: pg.Pool }).pool.query('SELECT pg_sleep(0.05)');
      await store.insertProcess(makeProcess());
      expect(await store.listProcesses()).toHaveLength(1);
    } finally {
      await store.close();
      await schema.drop();
    }
  });
});

describe('what a PostgreSQL error says of what was written (answeredCode)', () => {
  it('an ERROR refused the statement; a FATAL (a backend terminated) or a lost connection leaves it unknown', async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    const killer = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    await killer.connect();
    client.on('error', () => {});
    try {
      const refused = await client.query('SELECT 1 / 0').catch((error: unknown) => error);
      expect(answeredCode(new LakeUnavailableError('wrapped', { cause: refused }))).toBe('22012');
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const sleeping = client.query('SELECT pg_sleep(5)').catch((error: unknown) => error);
      await until(
        async () => (await killer.query('SELECT pg_terminate_backend($1) AS ok', [pid])).rows[0]!.ok,
        'the backend terminated',
      );
      // The server's FATAL 57P01, which a PANIC resembles: it may follow a commit.
      const terminated = await sleeping;
      expect(terminated).toMatchObject({ severity: 'FATAL', code: '57P01' });
      expect(answeredCode(new LakeUnavailableError('wrapped', { cause: terminated }))).toBe('');
      // Told by the class, not by the severity word, which the server translates (lc_messages):
      // a refused statement under another language, and a PANIC at a commit on a full disk.
      const answered = (fields: { code: string; severity: string }) =>
        answeredCode(Object.assign(new Error('from the server'), fields));
      expect(answered({ code: '23505', severity: 'FEHLER' })).toBe('23505');
      expect(answered({ code: '53100', severity: 'PANIC' })).toBe('');
      expect(answered({ code: 'XX000', severity: 'ERROR' })).toBe('');
    } finally {
      await killer.end();
      await client.end().catch(() => undefined);
    }
  });
});
