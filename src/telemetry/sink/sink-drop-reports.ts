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
 * for good leaves the spool too: sending it again would not help.
 */
export class SinkDropReports {
  private readonly reporter: DropReporter;
  private spool: Spool | undefined;
  /** Drops waiting for their block's answer before they are reported, by that wait. */
  private readonly waiting = new Map<Promise<void>, { reason: DropReason; processId?: string }>();

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

  /** Counts a dropped block, of `processId` (default: this sink's process). */
  note(reason: DropReason, processId?: string): void {
    this.reporter.note(reason, processId);
  }

  /**
   * Counts a drop once `sent` resolves false: the block's request was in flight when it was
   * dropped, and the lake may hold it after all. `finish` waits for the answer a while, then
   * counts the drop: an answer later still leaves the lake counting one block dropped that it holds.
   */
  noteUnlessSent(reason: DropReason, sent: Promise<boolean>, processId?: string): void {
    const waiting: Promise<void> = sent.then((stored) => {
      if (this.waiting.delete(waiting) && !stored) this.reporter.note(reason, processId);
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
    if (left.length === 0) return;
    if (spool !== undefined) {
      try {
        // The next sink on the spool may be of another process: it sends this one's record first.
        await spool.putMeta(this.processId, 'process', this.processRecord);
        for (const report of left) await spool.putReport(report.reportId, report.bytes);
        return;
      } catch (error) {
        this.counters.lastError = `drop reports could not be kept in the spool: ${String(error)}`;
      }
    }
    const total = left.reduce((sum, r) => sum + r.total, 0);
    this.counters.lastError = `${total} dropped blocks were not reported to the lake (${spool === undefined ? 'no spool to keep the count' : 'the spool could not keep the count'})`;
  }

  /** Sends a report: true once stored, false if refused for good; rejects to be retried. */
  private async send(report: PendingReport): Promise<boolean> {
    try {
      await this.deliverer.deliverReport(report.processId, report.bytes);
    } catch (error) {
      const sendError = error instanceof SinkSendError ? error : new SinkSendError(String(error), true);
      if (sendError.retryable) {
        this.counters.lastError = `drop report: ${sendError.message}`;
        throw sendError;
      }
      this.counters.lastError = `drop report ${report.reportId} (${report.total} drops) refused for good: ${sendError.message}`;
      if (report.spoolName !== undefined) await this.spool?.removeReport(report.spoolName);
      return false;
    }
    if (report.spoolName !== undefined) await this.spool?.removeReport(report.spoolName);
    return true;
  }
}
