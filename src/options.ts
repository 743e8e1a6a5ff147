import { ConfigError } from './errors.js';

/**
 * Every option name of an options interface, each mapped to `true`. Declared as a constant with
 * `satisfies OptionNames<Options>`, the list cannot drift from the interface: the compiler
 * refuses one that misses a name or holds a name the interface does not declare.
 *
 * @example
 * const SPAWN_OPTIONS = { thread: true, args: true, restarts: true, wait: true } as const satisfies OptionNames<SpawnOptions>;
 */
export type OptionNames<T> = { readonly [K in keyof Required<T>]: true };

/**
 * Refuses options that are not a plain object, or that hold a name the interface does not
 * declare, with a `ConfigError` naming it (and the nearest known name). TypeScript checks excess
 * properties only in object literals, and JavaScript callers not at all: without this, a
 * misspelt option would be ignored in silence. The values are the caller's to check.
 *
 * `what` names the options in the message (`'spawn option'`); `path` names a nested object
 * (`'spine'`), whose keys are then shown as `spine.cores`.
 *
 * @example
 * checkOptionNames({ thraed: 'io' }, SPAWN_OPTIONS, 'spawn option');
 * // ConfigError: unknown spawn option 'thraed' (did you mean 'thread'?); known: thread, args, restarts, wait
 */
export function checkOptionNames(
  options: unknown,
  known: Readonly<Record<string, true>>,
  what: string,
  path?: string,
): void {
  const prefix = path === undefined ? '' : `${path}.`;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    const subject = path === undefined ? `${what}s` : `${what} '${path}'`;
    throw new ConfigError(`${subject} must be an object, got ${show(options)}`);
  }
  const names = Object.keys(known);
  for (const key of Object.keys(options)) {
    // Own names only: `toString` or `constructor` are on every object's prototype, not options.
    if (Object.hasOwn(known, key)) continue;
    const near = nearest(key, names);
    throw new ConfigError(
      `unknown ${what} '${prefix}${key}'${near === undefined ? '' : ` (did you mean '${prefix}${near}'?)`}; ` +
        `known: ${names.map((name) => prefix + name).join(', ')}`,
    );
  }
}

/**
 * Option `name`'s value, `fallback` when not given: a positive number (`integer`: a whole one), or
 * a `ConfigError` naming it. A limit given as `NaN` compared false with everything: no limit at all.
 */
export function positiveOption(name: string, value: unknown, fallback: number, integer = true): number {
  const n = value ?? fallback;
  if (typeof n !== 'number' || !(n > 0) || !Number.isFinite(n) || (integer && !Number.isSafeInteger(n))) {
    throw new ConfigError(
      `option '${name}' must be a positive ${integer ? 'whole ' : ''}number, got ${show(value)}`,
    );
  }
  return n;
}

function show(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** The known name closest to `key` by edit distance, if it is a plausible misspelling. */
function nearest(key: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const name of names) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** Levenshtein distance, one row at a time: option names are short. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
