/**
 * The machine's preemption, measured: a thread that does nothing but read the spine clock for
 * `seconds` and counts the gaps between two reads longer than 100 µs (it was descheduled: a read
 * takes tens of ns). What it reports is what the machine takes from any spinning thread, a
 * pipeline's or the floor's: a thread that loses more than 1 % of a second in such gaps delays
 * more than 1 % of the messages that reach it in that second, and its p99 is then the machine's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Clock } from '../../src/spine/clock.js';

const { seconds, clockBase } = workerData as { seconds: number; clockBase: number };

/** What one probe thread saw. */
export interface PreemptionReport {
  readonly type: 'preemption';
  /** Share of the window lost in gaps longer than 100 µs. */
  readonly lostShare: number;
  /** Gaps longer than 100 µs, and than 1 ms. */
  readonly gaps: number;
  readonly longGaps: number;
  /** The longest gap, ns. */
  readonly longest: number;
}

{
  const clock = new Clock(clockBase);
  const start = clock.now();
  const end = start + seconds * 1e9;
  let last = start;
  let lost = 0;
  let gaps = 0;
  let longGaps = 0;
  let longest = 0;
  for (;;) {
    const now = clock.now();
    const gap = now - last;
    last = now;
    if (gap > 100e3) {
      gaps++;
      lost += gap;
      if (gap > 1e6) longGaps++;
      if (gap > longest) longest = gap;
    }
    if (now >= end) break;
  }
  const report: PreemptionReport = {
    type: 'preemption',
    lostShare: lost / (last - start),
    gaps,
    longGaps,
    longest,
  };
  parentPort!.postMessage(report);
}
