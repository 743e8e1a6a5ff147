/**
 * dorsal's bench suite. One run measures every section in order and prints one Markdown table:
 * - queue: publish/consume ns per 64-byte message (tinybench), cross-thread throughput and loss
 *   (flat out and paced at 10 M msg/s), one-way latency p50/p99/p99.9 (HDR histogram); against
 *   raw Atomics, MessagePort, BroadcastChannel and ringbuf.js measured in the same run;
 * - spine: the cost of tracking per hop, and a 3-hop pipeline end to end (tracked actors, bare
 *   queues, MessagePort) with HDR percentiles;
 * - persist: the pipeline with every message persisted: the rate sustained with nothing lost, and
 *   its latency with the persister on and off;
 * - instrumentation: one log, metric or span in the calling thread, against pino writing the
 *   same line and a bare SharedArrayBuffer write;
 * - ingest: telemetry blocks stored into the lake, embedded and over HTTP;
 * - analytics: blocks decoded into Parquet just in time, percentiles, message trees.
 * Every row carries its ratio against a baseline from the same run, and its target where the
 * issue sets one, met or not. Results go to bench/results/latest.json and latest.md.
 *
 * Run: `npm run bench` (~2–3 min) · `npm run bench -- --quick` (~30 s smoke run) ·
 *      `npm run bench -- --only queue` (one group). Run nothing else meanwhile: 2 cores.
 */
import { analyticsBench } from './analytics.js';
import { ingestBench } from './ingest.js';
import { instrumentationBench } from './instrumentation.js';
import { persistBench } from './persist.js';
import { queueBench } from './queue.js';
import { describeMachine, machineLine, markdownTable, writeResults } from './report.js';
import { spineBench } from './spine.js';
import type { BenchRow, BenchSection } from './types.js';

/** The sections, in the order they run. A new section goes here (e.g. the spine's, after queue). */
const SECTIONS: readonly BenchSection[] = [
  queueBench,
  spineBench,
  persistBench,
  instrumentationBench,
  ingestBench,
  analyticsBench,
];

function parseArgs(argv: readonly string[]): { quick: boolean; only: string | undefined } {
  const at = argv.indexOf('--only');
  const only = at === -1 ? undefined : argv[at + 1];
  if (at !== -1 && (only === undefined || !SECTIONS.some((s) => s.group === only))) {
    throw new Error(`--only needs one of: ${SECTIONS.map((s) => s.group).join(', ')}`);
  }
  return { quick: argv.includes('--quick'), only };
}

const { quick, only } = parseArgs(process.argv.slice(2));
const machine = describeMachine(quick, only);
console.log(`dorsal bench${quick ? ' (quick)' : ''} — ${machineLine(machine)}`);
const rows: BenchRow[] = [];
for (const section of SECTIONS) {
  if (only !== undefined && section.group !== only) continue;
  const started = performance.now();
  console.log(`\n## ${section.group}`);
  const sectionRows = await section.run({ quick });
  console.log(markdownTable(sectionRows));
  console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
  rows.push(...sectionRows);
}
machine.loadAfter = (await import('node:os')).loadavg()[0]!;
writeResults(new URL('../../bench/results/', import.meta.url), machine, rows);
const missed = rows.filter((r) => r.met === false);
console.log(
  `\n${rows.length} rows, ${missed.length} target(s) missed${missed.length ? `: ${missed.map((r) => r.name).join('; ')}` : ''}`,
);
console.log('written: bench/results/latest.json, bench/results/latest.md');
