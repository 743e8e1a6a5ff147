import { LakeConfigError } from '../errors.js';

/** A URL fit for an error message: a password in it is masked. */
export const redact = (url: string): string =>
  JSON.stringify(url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@'));

/** `url` parsed, or a `LakeConfigError` naming it (redacted) as no valid `kind` URL. */
export function parseLakeUrl(url: string, kind: string): URL {
  try {
    return new URL(url);
  } catch (error) {
    throw new LakeConfigError(`${redact(url)} is no valid ${kind} URL (${(error as Error).name})`);
  }
}

/** The path of a parsed lake URL, its escapes decoded; a `LakeConfigError` for a bad escape. */
export function decodedPath(url: URL, kind: string): string {
  try {
    return decodeURIComponent(url.pathname);
  } catch {
    throw new LakeConfigError(`${redact(url.href)} is no valid ${kind} URL (a bad %-escape in its path)`);
  }
}
