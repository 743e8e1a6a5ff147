/**
 * The market pipeline as a system module, for the `dorsal` command:
 *
 *   npx dorsal run dist/examples/market/system.js --seconds 5    # compiled
 *   npx tsx src/cli/dorsal.ts run examples/market/system.ts       # as TypeScript, in this repository
 *   npx dorsal replay --diff                                      # plays its ticks into a fresh run
 *
 * The feed is the ingress actor: a replay leaves it out and plays back the ticks it published.
 * Everything downstream is deterministic, so a replay of an unchanged system diverges nowhere.
 */
import { defineSystem } from 'dorsal';
import { spine } from './spine.js';

const here = (file: string) =>
  new URL(`./${file}${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

export default defineSystem({
  spine,
  actors: [
    { module: here('feed'), args: { ratePerSecond: 20_000 }, ingress: true },
    { module: here('book-builder') },
    { module: here('strategy') },
    { module: here('gateway') },
  ],
  // The strategy opens a span per quote (two events, ~25,000 a second at this feed's rate): span
  // rings as deep as the streams' hold as long a pause of the persister before they are lapped.
  options: { instrumentation: { spanCapacity: 1 << 15 } },
});
