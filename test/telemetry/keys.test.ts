import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { hashApiKey, SqliteMetadataStore } from '../../src/lake.js';
import { MIGRATIONS, VERSION_TABLE } from '../../src/telemetry/lake/schema.js';
import { runDorsal } from './cli-helpers.js';
import { tempDir } from './fixtures.js';
import { POSTGRES_URL, uniqueSchema } from './services.js';

const KEY_LINE = /^dorsal_[A-Za-z0-9_-]{43}\n$/;

/** Every byte of every file under `dir`, as latin1 text (a key is ASCII). */
function everything(dir: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => readFileSync(join(entry.parentPath, entry.name)).toString('latin1'))
    .join('');
}

describe('dorsal keys', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('creates a key printed alone on standard output, stores only its hash in SQLite, lists and revokes it', async () => {
    const data = join(dir, 'sqlite-lake');
    const created = await runDorsal(['keys', 'create', '--name', 'ingest', '--data', data]);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(KEY_LINE);
    expect(created.stderr).toContain('API key "ingest" created');
    const key = created.stdout.trim();
    const db = new Database(join(data, 'lake.sqlite'), { readonly: true });
    try {
      const rows = db.prepare('SELECT * FROM api_keys').all() as Record<string, unknown>[];
      expect(rows).toEqual([
        { name: 'ingest', key_hash: hashApiKey(key), created_time: expect.any(String), revoked_time: null },
      ]);
    } finally {
      db.close();
    }
    expect(everything(data)).not.toContain(key);
    expect(everything(data)).toContain(hashApiKey(key));

    const again = await runDorsal(['keys', 'create', '--name', 'ingest', '--data', data]);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toContain('an API key named "ingest" exists already (DORSAL_API_KEY)');
    const badName = await runDorsal(['keys', 'create', '--name', '../x', '--data', data]);
    expect(badName.code).toBe(1);
    expect(badName.stderr).toContain('invalid key name "../x"');

    const listed = await runDorsal(['keys', 'list', '--data', data]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^ingest\t\S+Z\tsha256:[0-9a-f]{12}…\tactive\n$/);
    expect(listed.stdout).not.toContain(key);
    // The lake from DORSAL_DATA, as the commands that read and run take it.
    expect((await runDorsal(['keys', 'list'], { DORSAL_DATA: data })).stdout).toBe(listed.stdout);

    expect((await runDorsal(['keys', 'revoke', 'ingest', '--data', data])).code).toBe(0);
    expect((await runDorsal(['keys', 'list', '--data', data])).stdout).toMatch(/\trevoked \S+Z\n$/);
    const unknown = await runDorsal(['keys', 'revoke', 'nobody', '--data', data]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no API key named "nobody"');
  }, 60_000);

  it('stores only the hash in PostgreSQL', async () => {
    const { url, drop } = uniqueSchema();
    try {
      const created = await runDorsal(['keys', 'create', '--name', 'scale-out', '--db', url]);
      expect(created.code).toBe(0);
      expect(created.stdout).toMatch(KEY_LINE);
      const key = created.stdout.trim();
      const schema = new URL(url).searchParams.get('schema') as string;
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const { rows } = await client.query(`SELECT * FROM "${schema}".api_keys`);
        expect(rows).toEqual([
          {
            name: 'scale-out',
            key_hash: hashApiKey(key),
            created_time: expect.any(String),
            revoked_time: null,
          },
        ]);
        expect(JSON.stringify(rows)).not.toContain(key);
      } finally {
        await client.end();
      }
      expect((await runDorsal(['keys', 'revoke', 'scale-out', '--db', url])).code).toBe(0);
      const listed = await runDorsal(['keys', 'list', '--db', url]);
      expect(listed.stdout).toMatch(/^scale-out\t\S+Z\tsha256:[0-9a-f]{12}…\trevoked \S+Z\n$/);
    } finally {
      await drop();
    }
  }, 60_000);

  it('adds the keys table to a lake made by schema version 1', async () => {
    const path = join(dir, 'v1.sqlite');
    const db = new Database(path);
    db.exec(`CREATE TABLE ${VERSION_TABLE} (version INTEGER PRIMARY KEY, applied_time TEXT NOT NULL)`);
    for (const sql of MIGRATIONS[0] ?? []) db.exec(sql);
    db.prepare(`INSERT INTO ${VERSION_TABLE} VALUES (1, '2025-01-01T00:00:00.000000000Z')`).run();
    db.close();
    const store = new SqliteMetadataStore(path);
    try {
      await store.ready();
      expect(await store.countApiKeys()).toBe(0);
      expect(await store.insertApiKey('k', hashApiKey('secret'), '2025-01-02T00:00:00.000000000Z')).toBe(
        true,
      );
      expect(await store.findApiKey(hashApiKey('secret'))).toMatchObject({ name: 'k' });
    } finally {
      await store.close();
    }
  });
});
