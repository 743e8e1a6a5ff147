import { decodeDropReport } from '../wire/index.js';
import { type Deliverer, within } from './delivery.js';
import { DropReporter, type PendingReport } from './drop-reports.js';
import type { Spool, SpoolEntry } from './spool.js';
import type { DropReason, SinkCounters } from './stats.js';
import { SinkSendError } from './transport.js';

/**
 * A sink's drop reports: counted as blocks are dropped, sent after the process record through the
 * sink's deliverer, kept in the spool (with the process record they need) when the sink closes
 * before the lake took them, and sent by the next sink on that spool. A report the lake refuses
 * for good leaves the spool too: sending it again would not help. What the spool has no room for
 * is counted (`unreportedDrops`), not lost silently.
 */
export class SinkDropReports {
  private readonly reporter: DropReporter;
  private spool: Spool | undefined;
  /** Drops waiting for their block's answer before they are reported, by that wait. */
  private readonly waiting = new Map<Promise<void>, { reason: DropReason; processId?: string }>();
  /** This sink's reports handed to the transport: one may have reached the lake, and may not change. */
  private readonly attempted = new Set<string>();
  /** The spool file of a kept report, by its id, once `markSent` renamed it. */
  private readonly spoolNames = new Map<string, string>();
  /** True once `finish` made the last reports: a drop counted later is in none. */
  private reportsMade = false;
  /**
   * Reports `finish` kept in the spool or counted unreported, while one of them may still be on
   * its way: a refusal that comes after is theirs to tell, not counted again.
   */
  private readonly handedBack = new Set<string>();

  constructor(
    private readonly processId: string,
    /** The encoded process record, kept in the spool beside the reports. */
    private readonly processRecord: Uint8Array,
    private readonly deliverer: Deliverer,
    private readonly counters: SinkCounters,
  ) {
    this.reporter = new DropReporter(
      processId,
      (report) => this.send(report),
      (attempt) => deliverer.backoff(attempt),
    );
  }

  /** Dropped blocks whose count the lake has. */
  get reported(): number {
    return this.reporter.reported;
  }

  /**
   * Counts a dropped block, of `processId` (default: this sink's process). One dropped once the
   * reports are made for the last time (a block pushed while the sink closes, or after) is counted
   * unreported: the reporter took it in no report, and the lake never heard of it.
   */
  note(reason: DropReason, processId?: string): void {
    if (!this.reportsMade) {
      this.reporter.note(reason, processId);
      return;
    }
    this.counters.unreportedDrops += 1;
    this.counters.lastError = `${this.counters.unreportedDrops} dropped blocks were not reported to the lake (dropped while the sink closed, or after)`;
  }

  /**
   * Counts a drop once `sent` resolves false: the block's request was in flight when it was
   * dropped, and the lake may hold it after all. `finish` waits for the answer a while, then
   * counts the drop: an answer later still leaves the lake counting one block dropped that it holds.
   */
  noteUnlessSent(reason: DropReason, sent: Promise<boolean>, processId?: string): void {
    const waiting: Promise<void> = sent.then((stored) => {
      if (this.waiting.delete(waiting) && !stored) this.note(reason, processId);
    });
    this.waiting.set(waiting, { reason, processId });
  }

  /** Queues the reports an earlier sink kept in the spool; one that no longer decodes is deleted. */
  resume(spool: Spool, entries: readonly SpoolEntry[]): void {
    this.spool = spool;
    for (const { name, bytes } of entries) {
      try {
        const report = decodeDropReport(bytes);
        const total = Object.values(report.counts).reduce((sum, n) => sum + n, 0);
        this.reporter.resume({
          reportId: report.reportId,
          processId: report.processId,
          total,
          bytes,
          spoolName: name,
        });
      } catch (error) {
        this.counters.lastError = `unreadable drop report ${name} in the spool: ${String(error)}`;
        void spool.removeReport(name);
      }
    }
  }

  /**
   * At close: sends what is unreported within `timeoutMs`, then keeps the rest in the spool (or,
   * without one, says in `lastError` how many drops the lake will not know of).
   */
  async finish(timeoutMs: number, spool: Spool | undefined): Promise<void> {
    const end = Date.now() + timeoutMs;
    if (this.waiting.size > 0) {
      // Half the time for the answers of the blocks in flight, half to report what they did not bring.
      await within(Promise.all(this.waiting.keys()), timeoutMs / 2);
      for (const { reason, processId } of this.waiting.values()) this.reporter.note(reason, processId);
      this.waiting.clear();
    }
    if (this.reporter.outstanding > 0)
      await within(this.reporter.flush(), Math.max(end - Date.now(), timeoutMs / 2));
    const left = this.reporter.stop();
    this.reportsMade = true;
    for (const report of left) this.handedBack.add(report.reportId);
    if (left.length === 0) return;
    let unkept = 0;
    let why = 'no spool to keep the count';
    if (spool !== undefined) {
      why = `the spool of ${spool.maxBytes} bytes has no room left for it`;
      const process = { id: this.processId, kind: 'process' as const, bytes: this.processRecord };
      for (const report of left) {
        try {
          // The next sink on the spool may be of another process: it sends this one's record
          // first. (A report of another process's blocks, spooled by an earlier run, has its
          // record there already.) One this sink never sent is added to a kept one of its
          // process: one file per process, not one per run.
          const sent = this.attempted.has(report.reportId);
          if (
            await spool.keepReport(
              report.bytes,
              sent,
              report.processId === this.processId ? process : undefined,
            )
          )
            continue;
        } catch (error) {
          why = `the spool could not keep it: ${String(error)}`;
        }
        unkept += report.total;
      }
    } else unkept = left.reduce((sum, r) => sum + r.total, 0);
    if (unkept === 0) return;
    // Not silently: the lake will not know of these drops, the program can.
    this.counters.unreportedDrops += unkept;
    this.counters.lastError = `${unkept} dropped blocks were not reported to the lake (${why})`;
  }

  /** Sends a report: true once stored, false if refused for good; rejects to be retried. */
  private async send(report: PendingReport): Promise<boolean> {
    let spoolName = report.spoolName;
    try {
      if (spoolName === undefined) this.attempted.add(report.reportId);
      else if (this.spool !== undefined) {
        // Marked before it is sent: from now on, no run adds counts to it.
        spoolName = await this.spool.markSent(this.spoolNames.get(report.reportId) ?? spoolName);
        this.spoolNames.set(report.reportId, spoolName);
      }
      await this.deliverer.deliverReport(report.processId, report.bytes);
    } catch (error) {
      const sendError = error instanceof SinkSendError ? error : new SinkSendError(String(error), true);
      if (sendError.retryable) {
        this.counters.lastError = `drop report: ${sendError.message}`;
        throw sendError;
      }
      // The lake will not take this count: said and counted, not deleted with its report alone.
      if (!this.handedBack.has(report.reportId)) this.counters.unreportedDrops += report.total;
      this.counters.lastError = `drop report ${report.reportId} (${report.total} drops) refused for good: ${sendError.message}`;
      if (spoolName !== undefined) await this.spool?.removeReport(spoolName);
      return false;
    }
    if (spoolName !== undefined) await this.spool?.removeReport(spoolName);
    return true;
  }
}
