import { LakeUnavailableError } from '../errors.js';

/** Codes of a socket that could not reach its peer, or lost it. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a PostgreSQL server that is there but cannot serve now: class 08 (connection
 * exception), class 53 (insufficient resources: too many connections, say), 57P01 to 57P03 (shut
 * down, crashed, starting up), and what another session's work causes: class 40 (a serialization
 * failure, a deadlock), 55P03 (a lock not available), 57014 (a statement cancelled: its timeout).
 */
const POSTGRES_NOT_NOW = /^(08|53|57P0[1-3]|40|55P03|57014)/;

/** A SQLite file another process holds locked past the busy timeout. */
const SQLITE_BUSY = /^SQLITE_(BUSY|LOCKED)/;

/**
 * True when `error` says the lake is down (its database or blob store could not be reached, or
 * cannot serve now): waiting may cure it, and a server in front of the lake is made to come up
 * before its database and answer 503 until then. False when the lake answered that it cannot be
 * used, which only someone acting cures: a file that is no SQLite database, a data directory that
 * is a file, a login PostgreSQL refuses, a lake newer than this code (`LakeConfigError`).
 *
 * An S3 store's answer is judged by its HTTP status: 5xx, 408 and 429 are down, another 4xx (no
 * such bucket, access denied) is not; so is a client with no credentials to sign with. A failure
 * with no code counts as down (pg says that a connection timed out or was cut in words only): a
 * server kept out of service on a guess would be worse than one that answers 503.
 */
export function isLakeDown(error: unknown): boolean {
  if (!(error instanceof LakeUnavailableError)) return false;
  const status = httpStatusOf(error.cause);
  if (status !== undefined) return status >= 500 || status === 408 || status === 429;
  if (causes(error.cause).some((cause) => (cause as { name?: unknown }).name === 'CredentialsProviderError'))
    return false;
  const code = causeCode(error.cause);
  if (code === undefined) return true;
  return UNREACHABLE.has(code) || POSTGRES_NOT_NOW.test(code) || SQLITE_BUSY.test(code);
}

/** A chain of causes, the first 8. */
function causes(cause: unknown): object[] {
  const chain: object[] = [];
  for (let at = cause; typeof at === 'object' && at !== null && chain.length < 8; ) {
    chain.push(at);
    at = (at as { cause?: unknown }).cause;
  }
  return chain;
}

/** The first string `code` down a chain of causes. */
function causeCode(cause: unknown): string | undefined {
  for (const at of causes(cause)) {
    const { code } = at as { code?: unknown };
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** The HTTP status an AWS SDK error down a chain of causes carries (`$metadata.httpStatusCode`). */
function httpStatusOf(cause: unknown): number | undefined {
  for (const at of causes(cause)) {
    const status = (at as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode;
    if (typeof status === 'number') return status;
  }
  return undefined;
}
