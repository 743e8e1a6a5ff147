/**
 * `npm start`: the market pipeline for a few seconds (DORSAL_SECONDS, default 3) with the
 * live-stats observer printing latency and processing time per actor × stream every second, and
 * every message, timing record and instrumentation event (the actors' and this thread's logs,
 * metrics and spans) persisted into the embedded lake (DORSAL_DATA, default ./dorsal-data); then
 * a summary of what every actor handled, produced and lost, and of what the lake recorded.
 */
import { LIVE_STATS_ACTOR, logger, System } from 'dorsal';
import { spine } from './market/spine.js';

const seconds = Number(process.env.DORSAL_SECONDS ?? 3);
const data = process.env.DORSAL_DATA ?? './dorsal-data';
const log = logger('start');
const system = new System(spine, { persist: { data } });
const here = (file: string) => new URL(`./market/${file}`, import.meta.url);
system.spawn(here('feed.js'), { args: { ratePerSecond: 20_000 } });
system.spawn(here('book-builder.js'));
system.spawn(here('strategy.js'));
system.spawn(here('gateway.js'));
system.spawn(LIVE_STATS_ACTOR, { args: { periodMs: 1000 } });

console.log(
  `dorsal: market pipeline for ${seconds}s (feed → book-builder → strategy → gateway), live stats every second\n`,
);
log.info('market pipeline', { seconds, actors: 5 });
const report = await system.run({ seconds });

console.log('\nwhat each actor saw:');
for (const actor of report.actors) {
  const parts = actor.streams
    .filter((s) => s.handled + s.produced + s.lost + s.skipped > 0)
    .map(
      (s) =>
        `${s.stream}: ${s.handled ? `handled ${s.handled}` : ''}${s.produced ? `produced ${s.produced}` : ''}${s.lost ? `, lost ${s.lost}` : ''}`,
    );
  const read = actor.timings.reduce((n, t) => n + t.handled, 0);
  const lost = actor.timings.reduce((n, t) => n + t.lost, 0);
  if (actor.timings.length > 0) parts.push(`timing records: read ${read}, lost ${lost}`);
  console.log(`  ${actor.name.padEnd(13)} ${parts.join(' · ')}`);
}
for (const stream of report.streams) {
  console.log(
    `  stream ${stream.stream.padEnd(6)} published ${stream.published}, consumers lost ${stream.consumers.reduce((n, c) => n + c.lost, 0)}`,
  );
}
console.log(
  `\nstopped ${report.drained ? 'after draining every stream' : 'before every stream drained'}; ingress refused while stopping: ${report.refused}`,
);
const persist = report.persist;
if (persist !== undefined) {
  const count = (kind: string, what: 'persisted' | 'lost') =>
    persist.sources.filter((s) => s.kind === kind).reduce((n, s) => n + s[what], 0);
  const events = count('log', 'persisted') + count('metrics', 'persisted') + count('spans', 'persisted');
  // Lost: what the persister missed (lapped), and the events a thread dropped at the source.
  const lost = persist.sources.reduce((n, s) => n + s.lost + (s.dropped ?? 0), 0);
  console.log(
    `${count('messages', 'persisted')} messages, ${count('timings', 'persisted')} timing records, ${events} events` +
      ` recorded in ${data}; ${lost} lost` +
      `${persist.blocksDropped > 0 ? `, ${persist.blocksDropped} blocks not delivered` : ''}${persist.flushed ? '' : ', flush unfinished'}`,
  );
  console.log(`(lake process ${persist.processId}, ${persist.blocks} blocks)`);
}
