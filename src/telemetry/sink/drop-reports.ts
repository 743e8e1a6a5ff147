import { randomUUID } from 'node:crypto';
import { encodeDropReport, nowRfc3339Ns } from '../wire/index.js';
import type { DropReason } from './stats.js';

/** A report being sent: its id stays the same across attempts, so the lake counts it once. */
export interface PendingReport {
  readonly reportId: string;
  readonly processId: string;
  readonly total: number;
  readonly bytes: Uint8Array;
  /** The spool file it was read from (a report an earlier run could not send). */
  readonly spoolName?: string;
}

/**
 * How a report reaches the lake (after its process record): resolves true once stored, false if
 * the lake refused it for good (a 4xx: sending it again would not help); rejects to be retried.
 */
export type SendReport = (report: PendingReport) => Promise<boolean>;

const REASONS: readonly DropReason[] = ['bufferFull', 'spoolFull', 'rejected', 'shutdown'];

/**
 * Carries a sink's drop counts to the lake, so that what the lake misses is known there, not only
 * in the program that dropped it. Drops are counted as they happen; whenever some are unreported
 * and no report waits, they become one report (`insert_drops`), sent until the lake takes it —
 * retried with backoff while ingestion is down, never dropped. Once a report has been sent it
 * never changes (its id makes a re-send count once), so drops counted meanwhile wait, as counts,
 * for the next one: however long an outage lasts and however many blocks it drops, at most one
 * report of this run waits at a time, and a drop never sends anything while a retry is pending.
 * Reports an earlier run left in the spool go first. A drop is counted for the process whose block
 * it was: a block an earlier run spooled, dropped by this one, is that run's loss.
 */
export class DropReporter {
  private readonly processId: string;
  private readonly send: SendReport;
  private readonly retryMs: (attempt: number) => number;
  /** Drops not in a report yet, by the process whose blocks they were. */
  private readonly unreported = new Map<string, Record<DropReason, number>>();
  /** Reports made and not yet taken by the lake, oldest first. */
  private readonly queue: PendingReport[] = [];
  private sending: Promise<boolean> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  /** Dropped blocks whose count the lake has. */
  reported = 0;

  constructor(processId: string, send: SendReport, retryMs: (attempt: number) => number) {
    this.processId = processId;
    this.send = send;
    this.retryMs = retryMs;
  }

  /**
   * Counts a drop, and starts a report if none is being sent or waiting to be retried (after
   * `stop`: counted only).
   */
  note(reason: DropReason, of = this.processId): void {
    // Lowercased, as the sink keys processes (a spooled block's id is as its record spelt it).
    const processId = of.toLowerCase();
    let counts = this.unreported.get(processId);
    if (counts === undefined) {
      counts = { bufferFull: 0, spoolFull: 0, rejected: 0, shutdown: 0 };
      this.unreported.set(processId, counts);
    }
    counts[reason] += 1;
    if (!this.stopped && this.sending === undefined && this.retry === undefined) void this.flush();
  }

  /** Queues a report an earlier run left in the spool. */
  resume(report: PendingReport): void {
    this.queue.push(report);
    if (!this.stopped) void this.flush();
  }

  /** Dropped blocks whose count has not reached the lake yet. */
  get outstanding(): number {
    return this.queue.reduce((sum, r) => sum + r.total, 0) + this.unreportedTotal();
  }

  /**
   * Sends what is outstanding (one report at a time, a retry pending included: now); resolves
   * true once nothing is left.
   */
  flush(): Promise<boolean> {
    if (this.sending !== undefined) return this.sending;
    if (this.outstanding === 0) return Promise.resolve(true);
    clearTimeout(this.retry);
    this.retry = undefined;
    // Counts become a report once the reports made before are stored.
    if (this.queue.length === 0) this.queue.push(this.makeReport());
    const report = this.queue[0] as PendingReport;
    this.sending = this.send(report).then(
      (stored) => {
        this.queue.shift();
        if (stored && report.spoolName === undefined) this.reported += report.total;
        this.failures = 0;
        this.sending = undefined;
        if (this.outstanding > 0 && !this.stopped) return this.flush();
        return this.outstanding === 0;
      },
      () => {
        this.sending = undefined;
        this.failures += 1;
        if (!this.stopped) {
          this.retry = setTimeout(() => {
            this.retry = undefined;
            void this.flush();
          }, this.retryMs(this.failures)).unref();
        }
        return false;
      },
    );
    return this.sending;
  }

  /**
   * Stops sending, and hands back the reports still outstanding that are not in the spool yet
   * (one under way included: should it reach the lake too, its id makes it count once), for the
   * caller to keep there.
   */
  stop(): PendingReport[] {
    this.stopped = true;
    clearTimeout(this.retry);
    this.retry = undefined;
    while (this.unreportedTotal() > 0) this.queue.push(this.makeReport());
    return this.queue.filter((report) => report.spoolName === undefined);
  }

  private unreportedTotal(): number {
    let total = 0;
    for (const counts of this.unreported.values()) for (const r of REASONS) total += counts[r];
    return total;
  }

  /** The report of one process's unreported drops (the first counted); the rest wait their turn. */
  private makeReport(): PendingReport {
    const [processId, unreported] = this.unreported.entries().next().value as [
      string,
      Record<DropReason, number>,
    ];
    this.unreported.delete(processId);
    const counts: Record<string, number> = {};
    let total = 0;
    for (const reason of REASONS) {
      if (unreported[reason] > 0) counts[reason] = unreported[reason];
      total += unreported[reason];
    }
    const reportId = randomUUID();
    const bytes = encodeDropReport({ reportId, processId, time: nowRfc3339Ns(), counts });
    return { reportId, processId, total, bytes };
  }
}
