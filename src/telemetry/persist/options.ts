import type { PersistOptions } from '../../actors/index.js';
import { ConfigError } from '../../errors.js';

const KNOWN = ['data', 'url', 'key', 'blockBytes', 'blockMs', 'flushTimeoutMs'] as const;

/** Refuses a `persist` option of the wrong shape, naming what is wrong. */
export function checkPersistOptions(value: unknown): PersistOptions {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(
      `system option 'persist' must be an object like { data: './dorsal-data' } or { url: 'http://127.0.0.1:8081' }, got ${String(value)}`,
    );
  }
  const options = value as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!(KNOWN as readonly string[]).includes(key)) {
      throw new ConfigError(`unknown persist option '${key}' (known: ${KNOWN.join(', ')})`);
    }
  }
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
  for (const name of ['blockBytes', 'blockMs', 'flushTimeoutMs'] as const) {
    const n = options[name];
    if (n !== undefined && !(typeof n === 'number' && Number.isFinite(n) && n > 0)) {
      throw new ConfigError(`persist option '${name}' must be a positive number, got ${String(n)}`);
    }
  }
  return options as PersistOptions;
}
