import type { PersistOptions } from '../../actors/index.js';
import { ConfigError } from '../../errors.js';
import { checkOptionNames, type OptionNames } from '../../options.js';

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
  if (typeof url === 'string' && !/^https?:\/\//.test(url)) {
    throw new ConfigError(`persist option 'url' must be an http(s) URL, got ${url}`);
  }
  for (const name of ['blockBytes', 'blockMs', 'flushTimeoutMs', 'backlogBytes'] as const) {
    const n = options[name];
    if (n !== undefined && !(typeof n === 'number' && Number.isFinite(n) && n > 0)) {
      throw new ConfigError(`persist option '${name}' must be a positive number, got ${String(n)}`);
    }
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
