import { createHash, randomBytes } from 'node:crypto';
import { ApiKeyError } from '../errors.js';
import type { ApiKeyRow, MetadataStore } from '../lake/types.js';
import { nowRfc3339Ns } from '../wire/index.js';

/**
 * API keys as micromegas keeps them: a random secret handed to its owner once, and only its
 * SHA-256 in the lake. A key carries 256 random bits, so a plain hash is enough to make a stolen
 * database useless for writing (no salt or slow hash: nobody can guess a 256-bit key).
 */

/** Every key starts with this, so that a leaked one is easy to recognize and search for. */
export const API_KEY_PREFIX = 'dorsal_';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A new key: the prefix and 32 random bytes in base64url. */
export function newApiKey(): string {
  return `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** What the lake stores of a key: its SHA-256 in hex. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Creates a key named `name` and stores its hash; returns the key, which exists nowhere else.
 *
 * @example
 * const key = await createApiKey(lake.metadata, 'ingest-prod');   // give it to the sink's owner
 */
export async function createApiKey(store: MetadataStore, name: string): Promise<string> {
  if (!NAME.test(name)) {
    throw new ApiKeyError(
      `invalid key name ${JSON.stringify(name.slice(0, 80))}: 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
  await store.ready();
  const key = newApiKey();
  if (!(await store.insertApiKey(name, hashApiKey(key), nowRfc3339Ns()))) {
    throw new ApiKeyError(`an API key named ${JSON.stringify(name)} exists already`);
  }
  return key;
}

/** Revokes the key named `name` (again: a no-op); rejects with `ApiKeyError` if there is none. */
export async function revokeApiKey(store: MetadataStore, name: string): Promise<ApiKeyRow> {
  await store.ready();
  const row = await store.revokeApiKey(name, nowRfc3339Ns());
  if (row === undefined) throw new ApiKeyError(`no API key named ${JSON.stringify(name)}`);
  return row;
}
