/**
 * The instrumentation section: what one log, metric or span costs the thread that records it,
 * against pino writing the same log line and against a bare SharedArrayBuffer write, all
 * measured in one worker in the same run (see instrumentation/tasks.ts for what each row does).
 *
 * Run alone: `npm run build && node dist/bench/run.js --only instrumentation` (~15 s).
 */
import { Worker } from 'node:worker_threads';
import { TASK, type TaskResults } from './instrumentation/tasks.js';
import type { BenchRow, BenchSection } from './types.js';

const GROUP = 'instrumentation';

function measure(quick: boolean): Promise<TaskResults> {
  const worker = new Worker(new URL('./instrumentation/micro-worker.js', import.meta.url), {
    workerData: { quick },
  });
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`instrumentation bench worker exited with code ${code}`)));
  });
}

export const instrumentationBench: BenchSection = {
  group: GROUP,
  async run({ quick }) {
    const results = await measure(quick);
    const row = (name: string, scale = 1, note = ''): BenchRow => {
      const r = results[name];
      if (r === undefined) throw new Error(`no instrumentation result '${name}'`);
      return { group: GROUP, name, value: r.ns / scale, unit: 'ns/call', note: `${r.note}${note}` };
    };
    const against = (r: BenchRow, baseline: BenchRow): BenchRow => ({
      ...r,
      baseline: baseline.name,
      ratio: r.value / baseline.value,
    });
    const within = (r: BenchRow, limit: number): BenchRow => ({
      ...r,
      target: `≤ ${limit} ns`,
      met: r.value <= limit,
    });

    const bare = row(TASK.bare);
    const hand = row(TASK.hand);
    const pinoNowhere = row(TASK.pinoNowhere);
    const pinoFiltered = row(TASK.pinoFiltered);
    const log = row(TASK.log);
    const perEvent = {
      ...row(TASK.span, 2, '; per event: a span is two'),
      name: 'dorsal span(fn), per event (begin or end)',
      unit: 'ns/event',
    };
    return [
      within(against(log, pinoNowhere), 50),
      within(against(row(TASK.line), log), 50),
      within(against(row(TASK.logBare), hand), 50),
      within(against(row(TASK.metric), hand), 50),
      within(against(perEvent, hand), 50),
      within(against(row(TASK.filtered), pinoFiltered), 2),
      against(pinoNowhere, log),
      against(row(TASK.pinoDevNull), log),
      against(hand, bare),
      pinoFiltered,
      row(TASK.clock),
      bare,
    ];
  },
};
