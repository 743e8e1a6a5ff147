import { KeyRevokedError, LakeUnavailableError, UnauthorizedError } from '../errors.js';
import type { ApiKeyRow, MetadataStore } from '../lake/types.js';
import { hashApiKey } from './api-keys.js';

/** How long what the lake said about keys is trusted before it is asked again (default 1 s). */
export const DEFAULT_KEY_CACHE_MS = 1000;

/** Longest `Authorization` header looked at. */
const MAX_AUTHORIZATION = 512;

/** The least time between two reports of the lake failing to give its keys (one per outage, about). */
const UNAVAILABLE_REPORT_EVERY_MS = 10_000;

/** The lake's keys as last read: by hash, and until when they are trusted. */
interface KeySnapshot {
  readonly byHash: ReadonlyMap<string, ApiKeyRow>;
  readonly until: number;
}

/**
 * Decides whether a request may go on, from its `Authorization` header and the lake's keys. A lake
 * with no key lets everyone in; once it has one (revoked keys count: revoking the last key must
 * not open the server), every request needs `Bearer KEY` with a key the lake knows and has not
 * revoked; a page for people also takes the key as the password of Basic credentials.
 *
 * The gate holds every key of the lake (their hashes and names: a lake has a handful), read at
 * once and trusted for `cacheMs`: a key created or revoked takes effect within that time, a
 * request costs one SHA-256 and a map lookup, and whatever keys clients send, known or not, the
 * lake is asked at most once per `cacheMs` (requests that find the keys stale share one read).
 * Remembering answers key by key instead let a client that sends random keys ask the lake once
 * per request, and push the valid keys out of a bounded memory.
 *
 * A lake that cannot give its keys (its database is down) refuses every request with 503 and
 * `Retry-After`, saying only that: the client has not shown a valid key yet, and what failed (a
 * database's host and port, a path) is the operator's to read, in `onUnavailable` (at most one
 * report per 10 s).
 */
export class KeyGate {
  private readonly store: MetadataStore;
  private readonly cacheMs: number;
  private snapshot: KeySnapshot | undefined;
  private reading: Promise<KeySnapshot> | undefined;
  private readonly onUnavailable: ((error: unknown) => void) | undefined;
  private reportedAt = Number.NEGATIVE_INFINITY;

  constructor(
    store: MetadataStore,
    cacheMs = DEFAULT_KEY_CACHE_MS,
    onUnavailable?: (error: unknown) => void,
  ) {
    this.store = store;
    this.cacheMs = cacheMs;
    this.onUnavailable = onUnavailable;
  }

  /**
   * Resolves if the request may go on; rejects with 401, 403 or 503 (the lake is down) errors.
   * `basic`: Basic credentials count too — only for a page a browser reads (GET), since a browser
   * sends the credentials it remembers with any request to the server, another site's included.
   */
  async check(authorization: string | undefined, basic = false): Promise<void> {
    const snapshot =
      this.snapshot !== undefined && this.snapshot.until > Date.now() ? this.snapshot : await this.read();
    if (snapshot.byHash.size === 0) return;
    const key = bearer(authorization, basic);
    if (key === undefined) {
      throw new UnauthorizedError('this server needs an API key: send it as "Authorization: Bearer KEY"');
    }
    const known = snapshot.byHash.get(hashApiKey(key));
    if (known === undefined) throw new UnauthorizedError('unknown API key');
    if (known.revokedTime !== undefined) throw new KeyRevokedError(known.name);
  }

  /** Reads every key of the lake, once for all the requests that wait for it meanwhile. */
  private read(): Promise<KeySnapshot> {
    this.reading ??= this.store
      .listApiKeys()
      .then((rows) => {
        // Trusted from when the answer came, for the same cacheMs as before.
        const snapshot = {
          byHash: new Map(rows.map((r) => [r.keyHash, r])),
          until: Date.now() + this.cacheMs,
        };
        this.snapshot = snapshot;
        return snapshot;
      })
      .catch((error: unknown) => {
        // Anything else (a bug) goes on as it is: a 500, reported as an internal error.
        if (!(error instanceof LakeUnavailableError)) throw error;
        const now = Date.now();
        if (now - this.reportedAt >= UNAVAILABLE_REPORT_EVERY_MS) {
          this.reportedAt = now;
          this.onUnavailable?.(error);
        }
        throw new LakeUnavailableError('the lake cannot check API keys now: retry later', { cause: error });
      })
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
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
