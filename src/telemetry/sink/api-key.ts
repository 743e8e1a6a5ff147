import { ConfigError } from '../../errors.js';

/**
 * Refuses an API key that an HTTP header cannot carry (a line break, a control character,
 * anything past Latin-1): `node:http` would throw at every request. A key read from a file
 * keeps its newline: the message says so.
 */
export function checkApiKey(key: string, where: string): void {
  const bad = /[^\t\x20-\x7e\x80-\xff]/.exec(key);
  if (bad === null) return;
  const what =
    bad[0] === '\n' || bad[0] === '\r'
      ? 'a line break (a key read from a file keeps its newline: trim it)'
      : `the character U+${bad[0].codePointAt(0)?.toString(16).padStart(4, '0').toUpperCase()}`;
  throw new ConfigError(`${where}: the API key holds ${what}, which an HTTP header cannot carry`);
}
