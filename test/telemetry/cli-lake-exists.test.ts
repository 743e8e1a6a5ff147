import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { runDorsal } from './cli-helpers.js';
import { tempDir } from './fixtures.js';
import { POSTGRES_URL, uniqueSchema } from './services.js';

/** Runs `sql` on the tests' PostgreSQL database (not in any lake's schema). */
async function postgres<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Whether the schema is there, and the tables in it. */
async function lookAt(schema: string): Promise<{ schema: boolean; tables: string[] }> {
  const schemata = await postgres('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [
    schema,
  ]);
  const tables = await postgres<{ table_name: string }>(
    'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
    [schema],
  );
  return { schema: schemata.length > 0, tables: tables.map((row) => row.table_name) };
}

describe('the commands that work on an existing lake, given a PostgreSQL schema with no lake', () => {
  const { dir, cleanup } = tempDir('dorsal-cli-lake-exists-');
  afterAll(cleanup);

  /** keys list, keys revoke and retention over `db`; blobs of their own, never ./dorsal-data. */
  const existingLakeCommands = (db: string): string[][] => [
    ['keys', 'list', '--db', db],
    ['keys', 'revoke', 'k1', '--db', db],
    ['retention', '--days', '1', '--db', db, '--blobs', dir],
  ];

  it('refuse a mistyped ?schema= in one line, and create no schema', async () => {
    const { url, drop } = uniqueSchema();
    const schema = new URL(url).searchParams.get('schema') as string;
    try {
      for (const args of existingLakeCommands(url)) {
        const { code, stdout, stderr } = await runDorsal(args);
        const what = args.slice(0, 2).join(' ');
        expect(code, `${what}: ${stderr}`).toBe(1);
        expect(stdout, what).toBe('');
        expect(stderr.trim().split('\n'), `${what}: ${stderr}`).toHaveLength(1);
        expect(stderr, what).toMatch(
          new RegExp(
            `^dorsal: no lake in schema "${schema}" of postgres://[^@\\s]+/\\w+ \\(there is no such schema\\): give the URL of an existing lake \\(DORSAL_LAKE_NOT_FOUND\\)\\n$`,
          ),
        );
        expect(await lookAt(schema), what).toEqual({ schema: false, tables: [] });
      }
    } finally {
      await drop();
    }
  }, 60_000);

  it('refuse a schema that holds no lake, and create no table in it', async () => {
    const { url, drop } = uniqueSchema();
    const schema = new URL(url).searchParams.get('schema') as string;
    try {
      await postgres(`CREATE SCHEMA "${schema}"`);
      for (const args of existingLakeCommands(url)) {
        const { code, stderr } = await runDorsal(args);
        const what = args.slice(0, 2).join(' ');
        expect(code, `${what}: ${stderr}`).toBe(1);
        expect(stderr, what).toMatch(
          new RegExp(`^dorsal: no lake in schema "${schema}" of .* \\(the schema holds no lake\\)`),
        );
        expect(await lookAt(schema), what).toEqual({ schema: true, tables: [] });
      }
    } finally {
      await drop();
    }
  }, 60_000);

  it('keys create makes the lake, and then the others work on it', async () => {
    const { url, drop } = uniqueSchema();
    const schema = new URL(url).searchParams.get('schema') as string;
    try {
      const created = await runDorsal(['keys', 'create', '--name', 'k1', '--db', url]);
      expect(created.code, created.stderr).toBe(0);
      expect((await lookAt(schema)).tables).toContain('api_keys');
      for (const args of existingLakeCommands(url)) {
        const { code, stderr } = await runDorsal(args);
        expect(code, `${args.slice(0, 2).join(' ')}: ${stderr}`).toBe(0);
      }
      const listed = await runDorsal(['keys', 'list', '--db', url]);
      expect(listed.stdout).toMatch(/^k1\t\S+Z\tsha256:[0-9a-f]{12}…\trevoked \S+Z\n$/);
    } finally {
      await drop();
    }
  }, 60_000);
});
