import { DorsalError } from '../../errors.js';

/**
 * The one table mapping typed errors to HTTP statuses. 4xx: the client sent something wrong and
 * must not retry it as is; 503: the lake is unavailable, retry later.
 */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  DORSAL_WIRE_FORMAT: 400,
  DORSAL_WIRE_VERSION: 400,
  DORSAL_QUERY_REFUSED: 400,
  DORSAL_QUERY_TIMEOUT: 400,
  DORSAL_UNAUTHORIZED: 401,
  DORSAL_KEY_REVOKED: 403,
  DORSAL_HOST_NOT_ALLOWED: 403,
  DORSAL_LAKE_NOT_FOUND: 404,
  DORSAL_REQUEST_TIMEOUT: 408,
  DORSAL_BLOCK_CONFLICT: 409,
  DORSAL_RECORD_CONFLICT: 409,
  DORSAL_PAYLOAD_TOO_LARGE: 413,
  DORSAL_UNSUPPORTED_MEDIA_TYPE: 415,
  DORSAL_UNKNOWN_PROCESS: 422,
  DORSAL_UNKNOWN_STREAM: 422,
  DORSAL_LAKE_UNAVAILABLE: 503,
  DORSAL_BUSY: 503,
  DORSAL_QUERY_CANCELLED: 503,
  DORSAL_QUERY_NOT_READY: 503,
};

/** An HTTP answer to an error: status, a JSON body, and whether to say `Retry-After`. */
export interface ErrorAnswer {
  readonly status: number;
  readonly body: { readonly error: { readonly code: string; readonly message: string } };
  readonly retry: boolean;
}

/**
 * Longest error message sent to a client, in UTF-16 code units: a message may quote what the
 * client sent (a field name, a library's complaint), and an answer must not grow with it.
 */
export const MAX_ERROR_MESSAGE = 1024;

/** `message`, cut to `MAX_ERROR_MESSAGE`. */
export function bounded(message: string): string {
  return message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE - 1)}…` : message;
}

/**
 * Maps any thrown value to its HTTP answer; an unexpected error, or one of dorsal's that is no
 * answer to a client (a lake's configuration, naming its files or its database's host), is a 500
 * without its details: the server's `onInternalError` has them.
 */
export function answerFor(error: unknown): ErrorAnswer {
  const status = error instanceof DorsalError ? STATUS_BY_CODE[error.code] : undefined;
  if (error instanceof DorsalError && status !== undefined) {
    const message = bounded(error.message);
    return { status, body: { error: { code: error.code, message } }, retry: status === 503 };
  }
  return {
    status: 500,
    body: { error: { code: 'DORSAL_INTERNAL', message: 'internal error while handling the request' } },
    retry: false,
  };
}
