import { randomBytes } from 'node:crypto';
import { readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyGate } from '../../src/ingestion.js';
import { createApiKey, Lake, revokeApiKey } from '../../src/lake.js';
import { tempDir } from './fixtures.js';

/**
 * Closes every handle of the lake in `data` (handles of one lake share its SQLite connection) and
 * puts a file that is no database where its SQLite file was: it cannot answer again.
 */
async function breakLake(lakes: Lake[], data: string): Promise<void> {
  for (const lake of lakes) await lake.close();
  const file = readdirSync(data).find((name) => name.endsWith('.sqlite'));
  if (file === undefined) throw new Error(`no SQLite file in ${data}`);
  renameSync(join(data, file), join(data, `${file}.moved`));
  writeFileSync(join(data, file), 'not a database, not even a little');
}

describe('KeyGate', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('asks the lake once per cacheMs, whatever keys clients send, and keeps the valid keys meanwhile', async () => {
    const data = join(dir, 'lake');
    const admin = Lake.open({ data });
    const served = Lake.open({ data });
    try {
      const key = await createApiKey(admin.metadata, 'writer');
      const gate = new KeyGate(served.metadata, 3_600_000);
      await gate.check(`Bearer ${key}`);
      // More unknown keys than a gate remembering answers key by key would hold.
      for (let i = 0; i < 1500; i++) {
        await expect(
          gate.check(`Bearer dorsal_${randomBytes(32).toString('base64url')}`),
        ).rejects.toMatchObject({
          code: 'DORSAL_UNAUTHORIZED',
        });
      }
      // Revoked in the lake: the gate trusts what it read for its cacheMs, the flood above included.
      await revokeApiKey(admin.metadata, 'writer');
      await gate.check(`Bearer ${key}`);
      // And none of those checks needs the lake: with a lake that cannot answer, they answer the same.
      await breakLake([served, admin], data);
      await gate.check(`Bearer ${key}`);
      await expect(gate.check('Bearer dorsal_unknown')).rejects.toMatchObject({
        code: 'DORSAL_UNAUTHORIZED',
      });
      await expect(gate.check(undefined)).rejects.toMatchObject({ code: 'DORSAL_UNAUTHORIZED' });
    } finally {
      await served.close();
      await admin.close();
    }
  });

  it('sees a revoked key once its cacheMs is over, and refuses everyone while the lake cannot answer', async () => {
    const data = join(dir, 'lake-stale');
    const admin = Lake.open({ data });
    const served = Lake.open({ data });
    const reported: unknown[] = [];
    try {
      const key = await createApiKey(admin.metadata, 'reader');
      const gate = new KeyGate(served.metadata, 0, (error) => reported.push(error));
      const checks = await Promise.allSettled([1, 2, 3].map(() => gate.check(`Bearer ${key}`)));
      expect(checks.map((c) => c.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      await revokeApiKey(admin.metadata, 'reader');
      await expect(gate.check(`Bearer ${key}`)).rejects.toMatchObject({ code: 'DORSAL_KEY_REVOKED' });
      await breakLake([served, admin], data);
      // The client, not known yet, hears that the lake is unavailable; what failed (here the
      // SQLite store closed under it, naming its file) goes to the operator, once for the outage.
      const unavailable = {
        code: 'DORSAL_LAKE_UNAVAILABLE',
        message: 'the lake cannot check API keys now: retry later',
      };
      await expect(gate.check(`Bearer ${key}`)).rejects.toMatchObject(unavailable);
      await expect(gate.check(undefined)).rejects.toMatchObject(unavailable);
      expect(reported).toHaveLength(1);
      expect(String((reported[0] as Error).message)).toContain(data);
    } finally {
      await served.close();
      await admin.close();
    }
  });
});
