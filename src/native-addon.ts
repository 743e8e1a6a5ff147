import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Loads one of dorsal's native addons (`build/Release/{name}.node`, built on install when a C++
 * compiler is there), or returns why it cannot: every addon is optional, and its caller falls
 * back to plain Node. Looked for in the package root: one folder up from `src`, two from
 * `dist/src`. `check` tries the addon once and returns what is wrong with it, if anything.
 */
export function loadAddon<T>(name: string, check: (addon: T) => string | undefined): T | string {
  const file = join('build', 'Release', `${name}.node`);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 3; up++, dir = dirname(dir)) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    try {
      const addon = createRequire(import.meta.url)(path) as T;
      const wrong = check(addon);
      return wrong === undefined ? addon : `${path} ${wrong}`;
    } catch (error) {
      return `${path} did not load: ${(error as Error).message}`;
    }
  }
  return `${file} was not built (no C++ compiler at install?)`;
}
