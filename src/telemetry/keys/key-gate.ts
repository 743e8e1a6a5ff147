import { KeyRevokedError, UnauthorizedError } from '../errors.js';
import type { ApiKeyRow, MetadataStore } from '../lake/types.js';
import { hashApiKey } from './api-keys.js';

/** How long what the lake said about keys is trusted before it is asked again (default 1 s). */
export const DEFAULT_KEY_CACHE_MS = 1000;

/** Keys remembered at once; unknown keys sent by a client are remembered too, so this is a cap. */
const MAX_REMEMBERED = 1000;
/** Longest `Authorization` header looked at. */
const MAX_AUTHORIZATION = 512;

interface Remembered<T> {
  readonly value: T;
  readonly until: number;
}

/**
 * Decides whether a request may go on, from its `Authorization` header and the lake's keys. A lake
 * with no key lets everyone in; once it has one (revoked keys count: revoking the last key must
 * not open the server), every request needs `Bearer KEY` with a key the lake knows and has not
 * revoked; a page for people also takes the key as the password of Basic credentials. What the lake answered is trusted for `cacheMs`, so a key created or revoked takes
 * effect within that time, and a request costs one SHA-256 and a map lookup.
 */
export class KeyGate {
  private readonly store: MetadataStore;
  private readonly cacheMs: number;
  private keysExist: Remembered<boolean> | undefined;
  private readonly keys = new Map<string, Remembered<ApiKeyRow | undefined>>();

  constructor(store: MetadataStore, cacheMs = DEFAULT_KEY_CACHE_MS) {
    this.store = store;
    this.cacheMs = cacheMs;
  }

  /**
   * Resolves if the request may go on; rejects with 401, 403 or 503 (the lake is down) errors.
   * `basic`: Basic credentials count too — only for a page a browser reads (GET), since a browser
   * sends the credentials it remembers with any request to the server, another site's included.
   */
  async check(authorization: string | undefined, basic = false): Promise<void> {
    const now = Date.now();
    if (this.keysExist === undefined || this.keysExist.until <= now) {
      const count = await this.store.countApiKeys();
      this.keysExist = { value: count > 0, until: now + this.cacheMs };
    }
    if (!this.keysExist.value) return;
    const key = bearer(authorization, basic);
    if (key === undefined) {
      throw new UnauthorizedError('this server needs an API key: send it as "Authorization: Bearer KEY"');
    }
    const hash = hashApiKey(key);
    let known = this.keys.get(hash);
    if (known === undefined || known.until <= now) {
      known = { value: await this.store.findApiKey(hash), until: now + this.cacheMs };
      if (this.keys.size >= MAX_REMEMBERED) this.keys.clear();
      this.keys.set(hash, known);
    }
    if (known.value === undefined) throw new UnauthorizedError('unknown API key');
    if (known.value.revokedTime !== undefined) throw new KeyRevokedError(known.value.name);
  }
}

/**
 * The key of an authorization header: `Bearer KEY`, or where `basic` allows, Basic credentials
 * whose password is the key (what a browser sends for a page, whatever the user name).
 */
function bearer(authorization: string | undefined, allowBasic: boolean): string | undefined {
  if (authorization === undefined || authorization.length > MAX_AUTHORIZATION) return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(authorization);
  if (match !== null) return match[1];
  if (!allowBasic) return undefined;
  const basic = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(authorization);
  if (basic?.[1] === undefined) return undefined;
  const credentials = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = credentials.indexOf(':');
  return colon < 0 || colon === credentials.length - 1 ? undefined : credentials.slice(colon + 1);
}
