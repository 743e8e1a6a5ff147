import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../errors.js';
import { checkOptionNames } from '../options.js';
import type { WaitStrategyName } from '../queues/index.js';
import type { SpineDefinition } from '../spine/index.js';
import type { SystemOptions } from './system-options.js';

/** One actor of a system module: where its code is, and how it runs. */
export interface SystemActor {
  /** The actor's module (its default export extends `Actor`): a URL, e.g. `new URL('./feed.js', import.meta.url)`, or an absolute path. */
  readonly module: URL | string;
  /** Passed (structured-cloned) to the actor's constructor. */
  readonly args?: unknown;
  /** Actors with the same thread name share one worker. */
  readonly thread?: string;
  /** How its thread waits when idle (see `SpawnOptions.wait`). */
  readonly wait?: WaitStrategyName;
  /** Restarts after a crash (single-actor threads only). */
  readonly restarts?: number;
  /**
   * It brings messages in from outside (a feed, a venue's acknowledgements): a replay leaves it
   * out and plays back what it published instead.
   */
  readonly ingress?: boolean;
}

/** A system as a module: `export default defineSystem({ spine, actors })`, for `dorsal run` and `dorsal replay`. */
export interface SystemDefinition<D extends SpineDefinition = SpineDefinition> {
  readonly spine: D;
  readonly actors: readonly SystemActor[];
  /** Options of the `System` (persistence is the runner's to set). */
  readonly options?: Omit<SystemOptions, 'persist'>;
}

const ACTOR_FIELDS: Readonly<Record<keyof SystemActor, true>> = {
  module: true,
  args: true,
  thread: true,
  wait: true,
  restarts: true,
  ingress: true,
};
const DEFINITION_FIELDS: Readonly<Record<keyof SystemDefinition, true>> = {
  spine: true,
  actors: true,
  options: true,
};

/** Marks a definition as made by `defineSystem`, so that a runner can tell it from anything else a module exports. */
const DEFINED = Symbol.for('dorsal.systemDefinition');

/**
 * Declares a system for the `dorsal` command: its spine and its actors, each with its module and
 * whether it is an ingress actor. Checks the shape at once (a `ConfigError` naming what is wrong).
 *
 * @example
 * export default defineSystem({
 *   spine,
 *   actors: [
 *     { module: new URL('./feed.js', import.meta.url), args: { ratePerSecond: 20_000 }, ingress: true },
 *     { module: new URL('./strategy.js', import.meta.url) },
 *   ],
 * });
 */
export function defineSystem<D extends SpineDefinition>(
  definition: SystemDefinition<D>,
): SystemDefinition<D> {
  if (typeof definition !== 'object' || definition === null) {
    throw new ConfigError('defineSystem takes { spine, actors }');
  }
  checkOptionNames(definition, DEFINITION_FIELDS, 'system definition field');
  if (typeof definition.spine !== 'object' || definition.spine === null) {
    throw new ConfigError('defineSystem: spine must be a spine definition (from defineSpine)');
  }
  if (!Array.isArray(definition.actors) || definition.actors.length === 0) {
    throw new ConfigError(
      'defineSystem: actors must be a non-empty list of { module, args?, thread?, wait?, ingress? }',
    );
  }
  definition.actors.forEach((actor, i) => {
    if (typeof actor !== 'object' || actor === null)
      throw new ConfigError(`defineSystem: actors[${i}] must be an object`);
    checkOptionNames(actor, ACTOR_FIELDS, `actors[${i}] field`);
    // A relative path would be resolved against the working directory of whoever runs it, not
    // against the system module: refused, with the way to say it.
    if (
      !(actor.module instanceof URL) &&
      (typeof actor.module !== 'string' || moduleUrlOf(actor.module) === undefined)
    ) {
      throw new ConfigError(
        `defineSystem: actors[${i}].module must be a URL (new URL('./actor.js', import.meta.url)), or an absolute path, got ${typeof actor.module === 'string' ? `'${actor.module}'` : String(actor.module)}`,
      );
    }
    if (actor.ingress !== undefined && typeof actor.ingress !== 'boolean') {
      throw new ConfigError(`defineSystem: actors[${i}].ingress must be true or false`);
    }
  });
  return Object.freeze({ ...definition, [DEFINED]: true }) as SystemDefinition<D>;
}

/** True for what `defineSystem` returned. */
export function isSystemDefinition(value: unknown): value is SystemDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DEFINED] === true;
}

/** The URL of an actor's module. */
export function actorModuleUrl(actor: SystemActor): URL {
  if (actor.module instanceof URL) return actor.module;
  const url = moduleUrlOf(actor.module);
  if (url === undefined)
    throw new ConfigError(`an actor's module must be a URL or an absolute path, got '${actor.module}'`);
  return url;
}

/** A module's URL, from a URL's text or an absolute path; undefined for anything else. */
function moduleUrlOf(module: string): URL | undefined {
  if (isAbsolute(module)) return pathToFileURL(module);
  try {
    return new URL(module);
  } catch {
    return undefined;
  }
}
