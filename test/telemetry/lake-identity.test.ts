import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LakeConfigError } from '../../src/telemetry/errors.js';
import { lakeIdentity } from '../../src/telemetry/lake/identity.js';
import { tempDir } from './fixtures.js';

const s3 = 's3://bucket/lake?endpoint=http://127.0.0.1:9000';

describe('lakeIdentity', () => {
  it('tells two PostgreSQL lakes apart as pg connects to them', () => {
    const pairs: [string, string][] = [
      ['postgres:///lake?host=/run/pg-a', 'postgres:///lake?host=/run/pg-b'],
      ['postgres://u@db/lake?port=5432', 'postgres://u@db/lake?port=5433'],
      ['postgres://u@db:5432/lake', 'postgres://u@db:5433/lake'],
      // No database in the path: the user's name.
      ['postgres://alice@db', 'postgres://bob@db'],
      ['postgres://alice@db/lake', 'postgres://bob@db/lake'],
      ['postgres://u@db/lake?schema=a', 'postgres://u@db/lake?schema=b'],
      [
        'postgres://u@db/lake?options=-c%20search_path%3Da',
        'postgres://u@db/lake?options=-c%20search_path%3Db',
      ],
    ];
    for (const [a, b] of pairs)
      expect(lakeIdentity({ db: a, blobs: s3 }), a).not.toBe(lakeIdentity({ db: b, blobs: s3 }));
  });

  it('gives one lake named two ways one identity, without its password', () => {
    const { dir, cleanup } = tempDir('dorsal-identity-');
    try {
      const real = join(dir, 'real');
      mkdirSync(real);
      symlinkSync(real, join(dir, 'link'));
      const same: [object, object][] = [
        [{ data: real }, { data: join(dir, 'link') }],
        [
          { data: real, db: join(real, 'new', 'lake.sqlite') },
          { data: real, db: join(dir, 'link', 'new', 'lake.sqlite') },
        ],
        [{ data: real }, { data: `${real}/` }],
        [
          { db: 'postgres://u@db/lake', blobs: `file://${real}/` },
          { db: 'postgres://u@db/lake', blobs: `file:${real}` },
        ],
        [
          { db: 'postgres://u@db/lake', blobs: `file:${dir}/./real` },
          { db: 'postgres://u@db/lake', blobs: real },
        ],
        [
          { db: 'postgres://u@db/lake', blobs: s3 },
          { db: 'postgresql://u:secret@DB:5432/lake', blobs: s3 },
        ],
        [
          { db: 'postgres://u@db/u', blobs: s3 },
          { db: 'postgres://u@db', blobs: s3 },
        ],
        [
          { db: 'postgres://u@db/lake', blobs: 's3://bucket/lake/' },
          { db: 'postgres://u@db/lake', blobs: 's3://bucket/lake' },
        ],
        [
          { db: 'postgres://u@db/lake', blobs: 's3://bucket/lake?endpoint=http://S3.local:80/' },
          { db: 'postgres://u@db/lake', blobs: 's3://bucket/lake?endpoint=http://s3.local' },
        ],
      ];
      for (const [a, b] of same) expect(lakeIdentity(a), JSON.stringify(b)).toBe(lakeIdentity(b));
      expect(lakeIdentity({ db: 'postgres://u:secret@db/lake', blobs: s3 })).not.toContain('secret');
    } finally {
      cleanup();
    }
  });

  it('refuses an unparsable PostgreSQL URL with a LakeConfigError naming it, its password masked', () => {
    for (const db of ['postgres://u:secret@/lake', 'postgres://u:secret@db:99999/lake']) {
      let error: unknown;
      try {
        lakeIdentity({ db });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(LakeConfigError);
      expect((error as Error).message).toContain(db.replace('secret', '***'));
      expect((error as Error).message).not.toContain('secret');
    }
  });
});
