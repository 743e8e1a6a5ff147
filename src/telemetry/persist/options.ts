import type { PersistOptions } from '../../actors/index.js';
import { ConfigError } from '../../errors.js';
import { checkOptionNames, type OptionNames } from '../../options.js';
import { DEFAULT_MAX_BLOCK_BYTES } from '../wire/limits.js';

/** Every persist option's name (options that extend them spread it). */
export const PERSIST_OPTIONS = {
  data: true,
  url: true,
  key: true,
  blockBytes: true,
  blockMs: true,
  flushTimeoutMs: true,
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
  for (const name of ['blockBytes', 'blockMs', 'flushTimeoutMs', 'backlogBytes'] as const) {
    const n = options[name];
    if (n !== undefined && !(typeof n === 'number' && Number.isFinite(n) && n > 0)) {
      throw new ConfigError(`persist option '${name}' must be a positive number, got ${String(n)}`);
    }
  }
  // Each source holds a buffer of a block's size, and a block's records are one part of it, which
  // a lake takes up to DEFAULT_MAX_BLOCK_BYTES: a larger block could never be stored.
  const { blockBytes } = options;
  if (typeof blockBytes === 'number' && blockBytes > DEFAULT_MAX_BLOCK_BYTES) {
    throw new ConfigError(
      `persist option 'blockBytes' must be at most ${DEFAULT_MAX_BLOCK_BYTES} (64 MiB, what a lake takes in a block), got ${blockBytes}`,
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
