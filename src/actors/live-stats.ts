/**
 * The live-stats observer: reads every actor's timing queue and prints, once a period, per
 * actor × stream, how many messages were handled, the latency since origin and the processing
 * time at p50/p99/p99.9. Spawn it like any actor: `system.spawn(LIVE_STATS_ACTOR)`, optionally
 * with `{ args: { periodMs: 1000 } }`. Reading timing queues never slows the actors down.
 */
import * as hdr from 'hdr-histogram-js';
import type { SpineAdapter, TimingRecord } from '../spine/index.js';
import { Actor } from './actor.js';

interface Cell {
  readonly latency: hdr.Histogram;
  readonly processing: hdr.Histogram;
}

function histogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60e9,
    numberOfSignificantValueDigits: 3,
  });
}

/** Formats nanoseconds for a table cell. */
export function formatNs(ns: number): string {
  if (ns < 1e3) return `${Math.round(ns)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(2)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

/** A map whose missing entries read as 0. */
class DefaultZeroMap extends Map<string, number> {
  override get(key: string): number {
    return super.get(key) ?? 0;
  }
}

export default class LiveStats extends Actor {
  readonly name = 'live-stats';
  override readonly idleTimeoutMs: number;
  private readonly periodNs: number;
  private readonly cells = new Map<string, Cell>();
  private nextPrint = 0;
  private readonly reportedLost = new DefaultZeroMap();

  constructor(args?: { periodMs?: number }) {
    super();
    const periodMs: unknown = args?.periodMs ?? 1000;
    // 0 (or a nanosecond) printed on every round; a negative one or a string failed naming
    // idleTimeoutMs instead; Infinity printed never.
    if (!(typeof periodMs === 'number' && periodMs >= 1 && Number.isFinite(periodMs))) {
      throw new TypeError(
        `live-stats: periodMs must be a finite number of ms of at least 1, got ${typeof periodMs === 'string' ? `'${periodMs}'` : String(periodMs)}`,
      );
    }
    this.periodNs = periodMs * 1e6;
    this.idleTimeoutMs = Math.min(periodMs, 100);
  }

  override onInit(adapter: SpineAdapter): void {
    this.adapter = adapter;
    this.nextPrint = adapter.now() + this.periodNs;
  }

  private adapter: SpineAdapter | undefined;

  /** Made once: an idle thread calls `loopBody` on every round of its spin. */
  private readonly record = (t: Readonly<TimingRecord>): void => {
    const adapter = this.adapter!;
    const key = `${adapter.nameOf(t.actor)} · ${adapter.streamNames[t.stream] ?? t.stream}`;
    let cell = this.cells.get(key);
    if (cell === undefined) {
      cell = { latency: histogram(), processing: histogram() };
      this.cells.set(key, cell);
    }
    cell.latency.recordValue(Math.max(1, Math.round(t.end_t - t.origin_t)));
    cell.processing.recordValue(Math.max(1, Math.round(t.end_t - t.start_t)));
  };

  loopBody(adapter: SpineAdapter): void {
    adapter.consumeTimings(this.record);
    if (adapter.now() >= this.nextPrint) {
      this.print(adapter);
      this.nextPrint += this.periodNs;
    }
  }

  override onExit(adapter: SpineAdapter): void {
    this.print(adapter);
  }

  private print(adapter: SpineAdapter): void {
    if (this.cells.size === 0) return;
    const rows = [...this.cells].map(([key, c]) => [
      key,
      String(c.latency.totalCount),
      ...[50, 99, 99.9].map((p) => formatNs(c.latency.getValueAtPercentile(p))),
      ...[50, 99, 99.9].map((p) => formatNs(c.processing.getValueAtPercentile(p))),
    ]);
    const header = [
      'actor · stream',
      'handled',
      'lat p50',
      'lat p99',
      'lat p99.9',
      'proc p50',
      'proc p99',
      'proc p99.9',
    ];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) =>
      cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    // Timing records this observer missed (lapped on a timing queue): said, never hidden.
    const lost = adapter
      .timingStats()
      .filter((t) => t.lost > this.reportedLost.get(t.actor)!)
      .map((t) => {
        const fresh = t.lost - this.reportedLost.get(t.actor)!;
        this.reportedLost.set(t.actor, t.lost);
        return `${t.actor}: ${fresh}`;
      });
    const note = lost.length > 0 ? `\n(timing records missed, lapped: ${lost.join(', ')})` : '';
    console.log([line(header), ...rows.map(line)].join('\n') + note);
    for (const cell of this.cells.values()) {
      cell.latency.reset();
      cell.processing.reset();
    }
  }
}
