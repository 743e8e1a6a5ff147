import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { actorModuleUrl, ConfigError, defineSystem, isSystemDefinition } from '../src/index.js';
import { spine } from './fixtures/actors/spine.js';
import { compiledUrl } from './helpers/compiled.js';

const feed = compiledUrl('./fixtures/actors/feed.ts', import.meta.url);

describe('defineSystem', () => {
  it('marks a well-formed definition, which runners tell from any other export', () => {
    const definition = defineSystem({ spine, actors: [{ module: feed, args: { count: 5 }, ingress: true }] });
    expect(isSystemDefinition(definition)).toBe(true);
    expect(isSystemDefinition({ spine, actors: [{ module: feed }] })).toBe(false);
    expect(definition.actors[0]!.ingress).toBe(true);
    // A module given as a URL's text, or as an absolute path.
    for (const module of [feed.href, fileURLToPath(feed)]) {
      expect(actorModuleUrl(defineSystem({ spine, actors: [{ module }] }).actors[0]!).href).toBe(feed.href);
    }
  });

  it('refuses a definition of the wrong shape, naming what is wrong', () => {
    const bad: [unknown, RegExp][] = [
      [null, /takes \{ spine, actors \}/],
      [{ spine, actors: [] }, /non-empty list/],
      [{ spine }, /non-empty list/],
      [{ actors: [{ module: feed }] }, /spine must be a spine definition/],
      [{ spine, actors: [{ module: 42 }] }, /actors\[0\]\.module must be a URL/],
      // Relative: resolved against whoever runs it, not the system module.
      [
        { spine, actors: [{ module: './feed.js' }] },
        /actors\[0\]\.module must be a URL .*, got '\.\/feed\.js'/,
      ],
      [{ spine, actors: [{ module: 'feed.js' }] }, /actors\[0\]\.module must be a URL/],
      [
        { spine, actors: [{ module: feed, ingres: true }] },
        /unknown actors\[0\] field 'ingres' \(did you mean 'ingress'\?\)/,
      ],
      [{ spine, actors: [{ module: feed, ingress: 'yes' }] }, /ingress must be true or false/],
      [{ spine, actors: [{ module: feed }], option: {} }, /unknown system definition field 'option'/],
    ];
    for (const [definition, message] of bad) {
      expect(() => defineSystem(definition as never)).toThrow(ConfigError);
      expect(() => defineSystem(definition as never)).toThrow(message);
    }
  });
});
