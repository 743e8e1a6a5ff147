/**
 * The persister section: what recording every message costs.
 *
 * - Sustained rate: the 3-hop pipeline (rings of 2^18), its four actors on one thread, the source
 *   paced at a rate across the three streams; the persister (its own thread, on the other core) records
 *   every message and timing record into an embedded lake in a temporary directory. The row is
 *   the rate the pipeline sustained and what the persister lost (target: ≥ 2 M msg/s across
 *   streams, nothing lost). Rates are tried from low to high; the row is the highest kept.
 * - Latency: the same pipeline at 20k messages/s, end-to-end p50 with the persister on ÷ off
 *   (target ≤ 1.1), measured one after the other in the same run.
 *
 * Run alone: `npm run build && node dist/bench/run.js --only persist`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { System } from '../src/index.js';
import { deepPipelineSpine } from './spine/spine.js';
import { trackedLatency } from './spine.js';
import type { BenchRow, BenchSection } from './types.js';

const GROUP = 'persist';
const row = (name: string, value: number, unit: string, extra: Partial<BenchRow> = {}): BenchRow => ({
  group: GROUP,
  name,
  value,
  unit,
  ...extra,
});

interface Sustained {
  /** Messages published across the three streams, per second of the run. */
  readonly rate: number;
  /** Messages and timing records the persister lost. */
  readonly lost: number;
  readonly persisted: number;
  readonly flushed: boolean;
}

/** The pipeline at `perSecond` messages per stream for `seconds`, persisted into a temporary lake. */
async function sustained(perSecond: number, seconds: number): Promise<Sustained> {
  const dir = mkdtempSync(join(tmpdir(), 'dorsal-bench-persist-'));
  try {
    // Deep rings: on 2 cores the persister's thread may be descheduled for tens of ms.
    const system = new System(deepPipelineSpine, {
      spine: { timingCapacity: 1 << 18 },
      persist: { data: dir },
    });
    const actors = new URL('./persist/actors.js', import.meta.url);
    for (const role of ['source', 'relay1', 'relay2', 'sink']) {
      system.spawn(actors, { args: { role, rate: perSecond }, thread: 'pipeline' });
    }
    await system.start();
    const start = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const elapsed = (performance.now() - start) / 1000;
    const report = await system.stop();
    const persist = report.persist!;
    const published = report.streams.reduce((n, s) => n + s.published, 0);
    return {
      rate: published / elapsed,
      lost: persist.sources.reduce((n, s) => n + s.lost, 0),
      persisted: persist.sources.reduce((n, s) => n + s.persisted, 0),
      flushed: persist.flushed,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const persistBench: BenchSection = {
  group: GROUP,
  async run({ quick }) {
    const seconds = quick ? 0.5 : 2;
    const rows: BenchRow[] = [];
    let kept: (Sustained & { asked: number }) | undefined;
    for (const perStream of [200_000, 400_000, 700_000, 800_000, 900_000, 1_000_000]) {
      const result = await sustained(perStream, seconds);
      if (result.lost > 0 || !result.flushed) {
        rows.push(
          row(
            `persisted pipeline at ${((3 * perStream) / 1e6).toFixed(1)} M msg/s asked: lost`,
            result.lost,
            'records',
            {
              note: `sustained ${(result.rate / 1e6).toFixed(2)} M msg/s; persisted ${result.persisted} messages and timing records${result.flushed ? '' : '; flush unfinished'}`,
            },
          ),
        );
        break;
      }
      kept = { ...result, asked: 3 * perStream };
    }
    const rate = kept?.rate ?? 0;
    rows.unshift(
      row(
        'persisted pipeline, sustained with nothing lost (3 streams, 4 actors on one thread, the persister on the other core)',
        rate / 1e6,
        'M msg/s',
        {
          target: '≥ 2 M msg/s',
          met: rate >= 2e6,
          note:
            kept === undefined
              ? 'lost records at the lowest rate tried'
              : `${kept.persisted} messages and timing records persisted, none lost; timing records (as many again) not counted in the rate`,
        },
      ),
    );
    const off = await trackedLatency(1, false);
    const on = await trackedLatency(1, true);
    rows.push(
      row('3-hop pipeline on 1 thread at 20k msg/s, persister off: end-to-end p50', off.p50 / 1e3, 'µs'),
      row('3-hop pipeline on 1 thread at 20k msg/s, persister on: end-to-end p50', on.p50 / 1e3, 'µs', {
        baseline: '3-hop pipeline on 1 thread at 20k msg/s, persister off: end-to-end p50',
        ratio: on.p50 / off.p50,
        target: 'on ÷ off ≤ 1.1',
        met: on.p50 / off.p50 <= 1.1,
        note: `p99 off ${(off.p99 / 1e3).toFixed(2)} µs, on ${(on.p99 / 1e3).toFixed(2)} µs`,
      }),
    );
    return rows;
  },
};
