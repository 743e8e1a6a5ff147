import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runTsxChild } from './helpers/child.js';

const repo = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, repo), 'utf8');

/** What the test harness loads into the child itself (`--import tsx`). */
const HARNESS = ['esbuild', 'tsx'];
/** Database drivers, the AWS SDK, the worker pool: never in `import 'dorsal'`. */
const LAKE_PACKAGES = ['@aws-sdk/client-s3', 'better-sqlite3', 'pg', 'piscina'];
/** The drivers of the scale-out lake: loaded by the first store that needs one. */
const REMOTE_DRIVERS = ['@aws-sdk/client-s3', 'pg'];
/** The wire format's encoders: in `dorsal/wire` and `dorsal/sink`, never in `import 'dorsal'`. */
const WIRE_PACKAGES = ['cbor-x', 'lz4-napi'];

/** The subpath entries, from package.json: specifier → source file. */
function entries(): Map<string, string> {
  const pkg = JSON.parse(read('package.json')) as {
    exports: Record<string, string | { types: string; import: string }>;
  };
  const map = new Map<string, string>();
  for (const [key, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue;
    const built = /^\.\/dist\/(src\/[a-z-]+)\.js$/.exec(target.import);
    expect(built, `${key} points into dist/src`).not.toBeNull();
    expect(target.types).toBe(`./dist/${built![1]}.d.ts`);
    map.set(key === '.' ? 'dorsal' : `dorsal/${key.slice(2)}`, `${built![1]}.ts`);
  }
  return map;
}

/** The names an entry file exports (`type X` for a type), read from its explicit export lists. */
function exportedNames(source: string): { values: Set<string>; types: Set<string> } {
  const values = new Set<string>();
  const types = new Set<string>();
  for (const [, typeOnly, list] of source.matchAll(/export (type )?\{([^}]*)\} from/g)) {
    for (const item of list!
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      // `type Name`, `Name`, `Name as Alias`: what a caller imports is the last word.
      const name = item.split(/\s+/).at(-1)!;
      (typeOnly !== undefined || item.startsWith('type ') ? types : values).add(name);
    }
  }
  return { values, types };
}

describe('the public face', () => {
  it("import 'dorsal' loads no npm package; the sink, the wire format and dorsal/persist load no lake; dorsal/lake loads a driver only when a lake needs it, dorsal/analytics neither DuckDB nor piscina; the detection sees each one", async () => {
    const { out, code } = await runTsxChild(
      [
        'test/fixtures/loaded-packages.ts',
        'src/index.ts',
        'src/wire.ts,src/sink.ts,src/persist.ts',
        'src/lake.ts,src/ingestion.ts',
        'src/analytics.ts',
        'pg,@aws-sdk/client-s3,piscina',
      ],
      60_000,
    );
    expect(code).toBe(0);
    const [root, light, lake, analytics, drivers] = out
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { packages: string[] }).packages);
    // The spine, the actors and the queues need no package: only the harness is there.
    expect(root!.filter((name) => !HARNESS.includes(name))).toEqual([]);
    expect(light!.filter((name) => LAKE_PACKAGES.includes(name))).toEqual([]);
    expect(light).toEqual(expect.arrayContaining(WIRE_PACKAGES));
    // The embedded lake's driver loads with dorsal/lake; PostgreSQL's and S3's when a lake uses them.
    expect(lake).toEqual(expect.arrayContaining(['better-sqlite3', ...WIRE_PACKAGES]));
    expect(lake!.filter((name) => REMOTE_DRIVERS.includes(name))).toEqual([]);
    // DuckDB and the decoding threads' pool load when an Analytics opens, not with
    // dorsal/analytics (RemoteAnalytics needs neither).
    expect(analytics!.filter((name) => name.startsWith('@duckdb/') || name === 'piscina')).toEqual([]);
    // The same detection sees every heavy package once it is loaded (ES modules and CommonJS).
    expect(drivers).toEqual(expect.arrayContaining([...LAKE_PACKAGES, ...WIRE_PACKAGES]));
  });

  it('package.json exports the root and the telemetry subpaths, each an explicit list of names, disjoint', async () => {
    const map = entries();
    expect([...map.keys()].sort()).toEqual(
      [
        'dorsal',
        'dorsal/analytics',
        'dorsal/ingestion',
        'dorsal/lake',
        'dorsal/persist',
        'dorsal/sink',
        'dorsal/wire',
      ].sort(),
    );
    const seen = new Map<string, string>();
    for (const [specifier, file] of map) {
      const source = read(file);
      expect(source, `${file} names every export`).not.toMatch(/export \*/);
      const { values } = exportedNames(source);
      const module = (await import(new URL(file, repo).href)) as Record<string, unknown>;
      expect(Object.keys(module).sort(), `${file}: its runtime exports are its listed names`).toEqual(
        [...values].sort(),
      );
      for (const name of values) {
        expect(module[name], `${specifier} exports ${name}`).toBeDefined();
        // The root shares no name with a subpath: the wire format and the lake stay off it.
        if (seen.has(name)) expect.fail(`${name} is exported by ${seen.get(name)} and ${specifier}`);
        seen.set(name, specifier);
      }
    }
  });

  it('every name the README and docs/ import from dorsal exists where it says', async () => {
    const map = entries();
    const readme = ['README.md', ...readdirSync(new URL('docs/', repo)).map((f) => `docs/${f}`)]
      .map(read)
      .join('\n');
    const imports = [...readme.matchAll(/^import (type )?\{([^}]*)\} from '(dorsal[^']*)';(?: *\/\/.*)?$/gm)];
    // Every import of dorsal in the README is one of these, checked below.
    expect(imports.length).toBe(readme.match(/ from 'dorsal[^']*'/g)?.length);
    const specifiers = new Set(imports.map((match) => match[3]!));
    expect([...specifiers].sort()).toEqual([
      'dorsal',
      'dorsal/analytics',
      'dorsal/lake',
      'dorsal/persist',
      'dorsal/sink',
      'dorsal/wire',
    ]);
    for (const [, typeOnly, list, specifier] of imports) {
      const file = map.get(specifier!);
      expect(file, `${specifier} is in package.json exports`).toBeDefined();
      const { values, types } = exportedNames(read(file!));
      const module = (await import(new URL(file!, repo).href)) as Record<string, unknown>;
      for (const item of list!
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        const type = typeOnly !== undefined || item.startsWith('type ');
        const name = item.replace(/^type /, '');
        if (type) expect(types.has(name) || values.has(name), `${specifier} exports type ${name}`).toBe(true);
        else expect(module[name], `${specifier} exports ${name}`).toBeDefined();
      }
    }
  });
});
