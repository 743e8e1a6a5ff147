import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * `mkdir -p`, a level at a time. Node's own (`mkdir(path, { recursive: true })`) never returns
 * on some file systems: on procfs, or a stale network mount, `mkdir` answers ENOENT for a
 * directory whose parent is there, and Node retries forever at 100 % of a core (Node 20: seen
 * with `--data /proc/x`, sync and async alike). Here each missing level is made with a plain
 * `mkdir`, whose error is thrown. A level another process made meanwhile (EEXIST) is fine.
 *
 * Returns the first directory made, as Node's does (undefined: all were there), in the form
 * `path` was given in (relative stays relative).
 */
export function makeDirectoriesSync(path: string): string | undefined {
  const missing = missingLevels(path, existsSync);
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      mkdirSync(missing[i]!);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  return missing.at(-1);
}

/** The same, each `mkdir` off the thread (the look for what is there is a `stat` each, in place). */
export async function makeDirectories(path: string): Promise<string | undefined> {
  const missing = missingLevels(path, existsSync);
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      await mkdir(missing[i]!);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  return missing.at(-1);
}

/**
 * The levels of `path` that are not there, deepest first. A `path` that is there but is no
 * directory is an error (EEXIST, as Node's recursive mkdir says it).
 */
function missingLevels(path: string, there: (path: string) => boolean): string[] {
  if (there(path) && !statSync(path).isDirectory()) {
    throw Object.assign(new Error(`EEXIST: a file, not a directory, is at ${path}`), {
      code: 'EEXIST',
      path,
    });
  }
  const missing: string[] = [];
  for (let at = path; !there(at); ) {
    missing.push(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  return missing;
}

/**
 * `path` absolute with its links resolved; for one not made yet, its nearest existing parent's
 * resolved and the rest as written: two names of one file compare equal. A `..` is the kernel's
 * (the parent of where a link leads), not the text's: `a/../x`, `a` a link, is by `a`'s target
 * (resolved first, `..` cancelled `a` as text, and named another directory than a write finds).
 */
export function realPathOf(path: string): string {
  try {
    // The native one: Node's own resolves the text first (`a/..` to `.`), the C library's by the
    // file system, each link before the `..` after it, as the kernel does.
    return realpathSync.native(path);
  } catch {
    // The parent as written (`dirname` keeps `a/..`), which `realpath` resolves as the kernel does.
    const parent = dirname(path);
    return parent === path ? resolve(path) : join(realPathOf(parent), basename(path));
  }
}
