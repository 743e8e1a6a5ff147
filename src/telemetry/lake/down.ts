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
 * down, crashed, starting up).
 */
const POSTGRES_NOT_NOW = /^(08|53|57P0[1-3])/;

/** A SQLite file another process holds locked past the busy timeout. */
const SQLITE_BUSY = /^SQLITE_(BUSY|LOCKED)/;

/**
 * True when `error` says the lake is down (its database or blob store could not be reached, or
 * cannot serve now): waiting may cure it, and a server in front of the lake is made to come up
 * before its database and answer 503 until then. False when the lake answered that it cannot be
 * used, which only someone acting cures: a file that is no SQLite database, a data directory that
 * is a file, a login PostgreSQL refuses, a lake newer than this code (`LakeConfigError`).
 *
 * A failure with no code counts as down (pg says that a connection timed out or was cut in words
 * only, and an S3 client names its errors otherwise): a server kept out of service on a guess
 * would be worse than one that answers 503.
 */
export function isLakeDown(error: unknown): boolean {
  if (!(error instanceof LakeUnavailableError)) return false;
  const code = causeCode(error.cause);
  if (code === undefined) return true;
  return UNREACHABLE.has(code) || POSTGRES_NOT_NOW.test(code) || SQLITE_BUSY.test(code);
}

/** The first string `code` down a chain of causes. */
function causeCode(cause: unknown): string | undefined {
  for (let at = cause, depth = 0; typeof at === 'object' && at !== null && depth < 8; depth++) {
    const { code } = at as { code?: unknown };
    if (typeof code === 'string') return code;
    at = (at as { cause?: unknown }).cause;
  }
  return undefined;
}
