import type { PersistOptions } from '../../actors/index.js';
import { ConfigError } from '../../errors.js';
import { checkOptionNames, type OptionNames } from '../../options.js';
import { isTimerMs, TIMER_MS_RANGE } from '../../timer-ms.js';
import { checkApiKey } from '../sink/api-key.js';
import { DEFAULT_MAX_BLOCK_BYTES } from '../wire/limits.js';

/** A block's records at most (`blockBytes`): see `checkPersistValues`. */
const MAX_BLOCK_RECORD_BYTES = DEFAULT_MAX_BLOCK_BYTES / 2;

/** Every persist option's name (options that extend them spread it). */
export const PERSIST_OPTIONS = {
  data: true,
  url: true,
  key: true,
  blockBytes: true,
  blockMs: true,
  flushTimeoutMs: true,
  requestTimeoutMs: true,
  backlogBytes: true,
  properties: true,
} as const satisfies OptionNames<PersistOptions>;

/** Refuses a `persist` option of the wrong shape, naming what is wrong. */
export function checkPersistOptions(value: unknown): PersistOptions {
  checkOptionNames(value, PERSIST_OPTIONS, 'System option', 'persist');
  return checkPersistValues(value as Record<string, unknown>);
}

/** Refuses persist options (whose names were checked) of the wrong type, naming the option. */
export function checkPersistValues(options: Readonly<Record<string, unknown>>): PersistOptions {
  const { data, url, key } = options;
  if ((data === undefined) === (url === undefined)) {
    throw new ConfigError(
      "persist needs exactly one of 'data' (a lake directory) and 'url' (an ingestion server)",
    );
  }
  for (const [name, text] of [
    ['data', data],
    ['url', url],
    ['key', key],
  ] as const) {
    if (text !== undefined && (typeof text !== 'string' || text.length === 0)) {
      throw new ConfigError(`persist option '${name}' must be a non-empty string, got ${String(text)}`);
    }
  }
  // Parsed now, as the sink will: a URL that does not parse (`http://[zz`, a port past 65535)
  // failed only once the run had started, and left its threads running.
  if (typeof url === 'string' && !isHttpUrl(url)) {
    throw new ConfigError(`persist option 'url' must be an http(s) URL, got ${url}`);
  }
  // Checked now too: a key a header cannot carry made every request throw, retried to the deadline.
  if (typeof key === 'string') checkApiKey(key, "persist option 'key'");
  else if (typeof url === 'string' && process.env.DORSAL_KEY !== undefined)
    checkApiKey(process.env.DORSAL_KEY, 'DORSAL_KEY');
  for (const name of ['blockBytes', 'blockMs', 'flushTimeoutMs', 'backlogBytes'] as const) {
    const n = options[name];
    if (n !== undefined && !(typeof n === 'number' && Number.isFinite(n) && n > 0)) {
      throw new ConfigError(`persist option '${name}' must be a positive number, got ${String(n)}`);
    }
  }
  const { requestTimeoutMs } = options;
  if (requestTimeoutMs !== undefined && !isTimerMs(requestTimeoutMs)) {
    throw new ConfigError(
      `persist option 'requestTimeoutMs' must be ${TIMER_MS_RANGE}, got ${String(requestTimeoutMs)}`,
    );
  }
  // Each source holds a buffer of a block's size; a block's records and its dependencies (its
  // coverage, its strings) together a lake takes up to DEFAULT_MAX_BLOCK_BYTES: the records at
  // most half of it, the rest left to the dependencies.
  const { blockBytes } = options;
  if (typeof blockBytes === 'number' && blockBytes > MAX_BLOCK_RECORD_BYTES) {
    throw new ConfigError(
      `persist option 'blockBytes' must be at most ${MAX_BLOCK_RECORD_BYTES} (32 MiB: half what a lake takes in a block), got ${blockBytes}`,
    );
  }
  const properties = options.properties;
  if (properties !== undefined) {
    if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) {
      throw new ConfigError("persist option 'properties' must be an object of strings");
    }
    for (const [name, text] of Object.entries(properties)) {
      if (typeof text !== 'string') {
        throw new ConfigError(`persist option 'properties.${name}' must be a string, got ${String(text)}`);
      }
    }
  }
  return options as PersistOptions;
}

/** An absolute http(s) URL with a host, as `new URL` reads it. */
function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}
