import { Command } from 'commander';
import { createApiKey, revokeApiKey } from '../telemetry/keys/api-keys.js';
import { openMetadataStore } from '../telemetry/lake/open.js';
import type { MetadataStore } from '../telemetry/lake/types.js';
import {
  existingLakeLocation,
  type LakeOptions,
  lakeLocation,
  missingLakeFile,
  withLakeOptions,
} from './options.js';

/** Runs `fn` on the metadata store of an existing lake (`existing`) or of one made if missing, and closes it. */
async function withStore<T>(
  options: LakeOptions,
  fn: (store: MetadataStore) => Promise<T>,
  { existing = true } = {},
): Promise<T> {
  const missing = existing ? undefined : missingLakeFile(options);
  if (missing !== undefined) console.error(`dorsal: no lake was at ${missing}: a new one holds the key`);
  const location = existing ? existingLakeLocation(options) : lakeLocation(options);
  const store = openMetadataStore(location);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * `dorsal keys create|list|revoke`: API keys in the lake's metadata database. `create` prints
 * the new key alone on its line on standard output (everything else goes to standard error):
 * it is shown once, and the lake keeps only its SHA-256.
 */
export function keysCommand(): Command {
  const keys = new Command('keys').description("manage the API keys of a lake's servers");
  keys.addCommand(
    withLakeOptions(new Command('create'))
      .description('create a key: printed once on standard output, stored as a hash')
      .requiredOption('--name <name>', 'a name for the key, to list or revoke it by')
      .action(async (options: LakeOptions & { readonly name: string }) => {
        // Keys may be made before the lake's first server run: a new lake is made for them.
        const key = await withStore(options, (store) => createApiKey(store, options.name), {
          existing: false,
        });
        process.stdout.write(`${key}\n`);
        console.error(
          `dorsal: API key ${JSON.stringify(options.name)} created. It is shown this once: the lake keeps only its hash.`,
        );
      }),
  );
  keys.addCommand(
    withLakeOptions(new Command('list'))
      .description('list the keys: name, creation time, state (never the keys)')
      .action(async (options: LakeOptions) => {
        const rows = await withStore(options, async (store) => {
          await store.ready();
          return store.listApiKeys();
        });
        if (rows.length === 0) console.error('dorsal: no API keys in this lake (its servers need none)');
        for (const row of rows) {
          const state = row.revokedTime === undefined ? 'active' : `revoked ${row.revokedTime}`;
          process.stdout.write(
            `${row.name}\t${row.createdTime}\tsha256:${row.keyHash.slice(0, 12)}…\t${state}\n`,
          );
        }
      }),
  );
  keys.addCommand(
    withLakeOptions(new Command('revoke'))
      .description('revoke a key: servers refuse it (403) within a second')
      .argument('<name>', 'the name given at creation')
      .action(async (name: string, options: LakeOptions) => {
        const row = await withStore(options, (store) => revokeApiKey(store, name));
        console.error(`dorsal: API key ${JSON.stringify(row.name)} revoked at ${row.revokedTime ?? ''}`);
      }),
  );
  return keys;
}
