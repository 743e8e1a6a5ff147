import { DorsalError } from '../errors.js';

/**
 * Bytes that are not a valid telemetry record: malformed CBOR, a missing or mistyped field, a bad
 * UUID or time, a truncated or oversized lz4 part. The message names the field and what was wrong.
 */
export class WireFormatError extends DorsalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DORSAL_WIRE_FORMAT', message, options);
  }
}

/** A record written in a wire format version this reader does not know. */
/**
 * A version as a message shows it, whatever a client sent: `String()` of an object whose
 * `toString` is not a function throws (a fuzzer found `{ toString: '' }`).
 */
function describeVersion(version: unknown): string {
  if (typeof version === 'string') return JSON.stringify(version.slice(0, 40));
  if (typeof version === 'object' && version !== null)
    return Array.isArray(version) ? 'an array' : 'an object';
  return typeof version === 'bigint' || typeof version === 'symbol' ? typeof version : String(version);
}

export class WireVersionError extends DorsalError {
  readonly version: unknown;

  constructor(version: unknown, known: number) {
    super(
      'DORSAL_WIRE_VERSION',
      `unsupported telemetry wire format version ${describeVersion(version)} (this reader knows version ${known})`,
    );
    this.version = version;
  }
}

/** A stream or block that refers to a process the lake has never seen. */
export class UnknownProcessError extends DorsalError {
  constructor(processId: string) {
    super('DORSAL_UNKNOWN_PROCESS', `unknown process ${processId}: insert the process before its streams`);
  }
}

/** A block that refers to a stream the lake has never seen, or to another process's stream. */
export class UnknownStreamError extends DorsalError {
  constructor(streamId: string, detail = 'insert the stream before its blocks') {
    super('DORSAL_UNKNOWN_STREAM', `unknown stream ${streamId}: ${detail}`);
  }
}

/**
 * A process or stream id already stored with other content (another layout, another process,
 * other properties): an id names one record, and a block decoded with a layout it was not
 * written with would be garbage, so the new record is refused rather than answered as stored.
 */
export class RecordConflictError extends DorsalError {
  constructor(kind: 'process' | 'stream', id: string, field: string) {
    super(
      'DORSAL_RECORD_CONFLICT',
      `${kind} ${id} is already stored with another ${field}; a new ${kind} needs a new id`,
    );
  }
}

/**
 * A block id already stored with another payload or header, or under another stream: a block id
 * names one block, so the new bytes are refused rather than silently dropped.
 */
export class BlockConflictError extends DorsalError {
  constructor(blockId: string, detail: string) {
    super(
      'DORSAL_BLOCK_CONFLICT',
      `block ${blockId} is already stored ${detail}; send new data under a new id`,
    );
  }
}

/** A request whose headers or body stopped coming before they were complete. */
export class RequestTimeoutError extends DorsalError {
  constructor(message: string) {
    super('DORSAL_REQUEST_TIMEOUT', message);
  }
}

/** The server holds as many large bodies as it takes at once: retry later. */
export class ServerBusyError extends DorsalError {
  constructor(message: string) {
    super('DORSAL_BUSY', message);
  }
}

/** A request without a key, or with one the lake does not know, to a server whose lake has keys. */
export class UnauthorizedError extends DorsalError {
  constructor(message: string) {
    super('DORSAL_UNAUTHORIZED', message);
  }
}

/** A request with a key that was revoked. */
export class KeyRevokedError extends DorsalError {
  constructor(name: string) {
    super('DORSAL_KEY_REVOKED', `the API key ${JSON.stringify(name)} was revoked`);
  }
}

/** A request to a loopback server naming another host: a page in a browser, by DNS rebinding. */
export class HostNotAllowedError extends DorsalError {
  constructor(host: string) {
    super(
      'DORSAL_HOST_NOT_ALLOWED',
      `this server listens on loopback and answers only requests for a loopback host, not ${JSON.stringify(host.slice(0, 100))}`,
    );
  }
}

/** Listening beyond loopback while anyone could write: the lake has no key. */
export class InsecureBindError extends DorsalError {
  constructor(host: string) {
    super(
      'DORSAL_INSECURE_BIND',
      `refusing to listen on ${host}: the lake has no API key, so anyone who reaches the port could write to it. Create one with \`dorsal keys create --name NAME\` (same lake options), or pass --insecure`,
    );
  }
}

/** An API key name that is taken, or unknown, or malformed. */
export class ApiKeyError extends DorsalError {
  constructor(message: string) {
    super('DORSAL_API_KEY', message);
  }
}

/** A body or a declared size over the configured limit. */
export class PayloadTooLargeError extends DorsalError {
  constructor(message: string) {
    super('DORSAL_PAYLOAD_TOO_LARGE', message);
  }
}

/** A request body that is not declared as `application/cbor`. */
export class UnsupportedMediaTypeError extends DorsalError {
  constructor(contentType: string | undefined, expected = 'application/cbor') {
    super(
      'DORSAL_UNSUPPORTED_MEDIA_TYPE',
      `expected content-type ${expected}, got ${contentType === undefined ? 'none' : JSON.stringify(contentType)}`,
    );
  }
}

/**
 * The metadata database or the blob store could not be reached or refused a write. Retrying
 * later may succeed; nothing was recorded as stored.
 */
export class LakeUnavailableError extends DorsalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DORSAL_LAKE_UNAVAILABLE', message, options);
  }
}

/** A lake URL or option that cannot be understood, or a lake schema newer than this code. */
export class LakeConfigError extends DorsalError {
  constructor(message: string) {
    super('DORSAL_LAKE_CONFIG', message);
  }
}

/** A block, stream or process asked of the lake that it does not hold. */
export class LakeNotFoundError extends DorsalError {
  constructor(message: string) {
    super('DORSAL_LAKE_NOT_FOUND', message);
  }
}

/** Wraps any failure of a store call as `LakeUnavailableError`, keeping typed lake errors as they are. */
export function asLakeError(what: string, error: unknown): DorsalError {
  if (error instanceof DorsalError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new LakeUnavailableError(`${what}: ${detail}`, { cause: error });
}

/**
 * The driver's error within a failed store call (one with a code of its own: a PostgreSQL
 * SQLSTATE, an `SQLITE_…` code), looked for on the error and on what it wraps (`asLakeError`'s
 * cause).
 */
function driverError(error: unknown): { code: string; severity?: unknown } | undefined {
  for (let at = error, depth = 0; at instanceof Error && depth < 4; at = at.cause, depth++) {
    const code = (at as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('DORSAL_')) return at as unknown as { code: string };
  }
  return undefined;
}

/** The driver's code of a failed store call (see `driverError`); '' if there is none. */
export function errorCode(error: unknown): string {
  return driverError(error)?.code ?? '';
}

/**
 * The code of an error with which the database itself refused a statement, which then wrote
 * nothing: SQLite's busy, locked, constraint, type, size, read-only and full codes, or a
 * PostgreSQL SQLSTATE of a statement's own failure (classes 22 data, 23 integrity, 40 rollback, 42
 * syntax or access, 54 limits, 55 state, and 57014 a statement cancelled), told by its class:
 * the severity node-postgres gives is the server's translated word. Not a FATAL or a PANIC (said
 * in English: a PANIC may follow a commit), not disk full (53100 may be a PANIC at a commit), nor
 * 08 connection, 57P, 58, XX. '' for anything else: a connection lost, a client's timeout, an I/O
 * error, errors of Node or of the driver (`EPIPE` included), where what was written is unknown.
 */
export function answeredCode(error: unknown): string {
  const found = driverError(error);
  if (found === undefined) return '';
  const { code, severity } = found;
  if (/^SQLITE_(BUSY|LOCKED|CONSTRAINT|MISMATCH|TOOBIG|RANGE|READONLY|FULL)/.test(code)) return code;
  const statementLevel = /^(22|23|40|42|54|55)[0-9A-Z]{3}$/.test(code) || code === '57014';
  return statementLevel && severity !== 'FATAL' && severity !== 'PANIC' ? code : '';
}
