/** Why a block was dropped. */
export type DropReason =
  /** The in-memory buffer was full (and there is no spool). */
  | 'bufferFull'
  /** The server was down and the spool was full (or could not be written). */
  | 'spoolFull'
  /** Ingestion refused the block (4xx): re-sending it would not help. */
  | 'rejected'
  /** The sink was closed before the block could be sent or spooled. */
  | 'shutdown';

/** One dropped block, reported to `onDrop`. */
export interface DropEvent {
  readonly reason: DropReason;
  readonly blockId: string;
  /** What went wrong, when known (the server's message for `rejected`). */
  readonly error?: string;
}

/**
 * A snapshot of what a sink did. Every block pushed ends up sent, spooled (waiting) or dropped,
 * and is counted once in `sent` or `dropped`. A block still in flight at the close deadline is
 * spooled (re-sending a stored block is harmless) or counted dropped; should its request succeed
 * afterwards, a dropped one moves from `dropped` (`shutdown`, or `spoolFull` when the spool could
 * not take it) to `sent` (`onDrop` was called for it, `onSent` is then). Its drop reaches the
 * lake only if no answer came within half the time close gives the drop reports: an answer later
 * still makes the lake count one block dropped that it holds (and `reportedDrops` one more than
 * `droppedTotal`).
 */
export interface SinkStats {
  /** Blocks handed to `push`. */
  readonly pushed: number;
  /** Blocks stored by ingestion (those read back from the spool included). */
  readonly sent: number;
  /** Blocks written to the spool. */
  readonly spooled: number;
  /** Requests repeated after a retryable failure. */
  readonly retries: number;
  /** Dropped blocks by reason. */
  readonly dropped: Readonly<Record<DropReason, number>>;
  readonly droppedTotal: number;
  /** Blocks and bytes in memory, waiting or being sent. */
  readonly buffered: number;
  readonly bufferedBytes: number;
  readonly inFlight: number;
  /** Blocks in the spool directory. */
  readonly spoolBlocks: number;
  /**
   * Bytes in the spool directory, within its `maxBytes`: the blocks, the process and stream
   * records they need and the drop reports kept.
   */
  readonly spoolBytes: number;
  /**
   * Dropped blocks whose count reached the lake (`insert_drops`). What is left when the sink
   * closes is kept in the spool for a later run, if there is one with room for it (if not, it
   * is counted in `unreportedDrops`).
   */
  readonly reportedDrops: number;
  /**
   * Dropped blocks whose count the sink could neither report to the lake before `close` was over
   * nor keep for a later run (no spool, one with no room left for the report and its process
   * record, or one that could not be written), those dropped once `close` made its last reports
   * (pushed while it closed, or after), and those of a report the lake refused for good: the lake
   * may never know of them (a report whose answer never came may have reached it). Said in
   * `lastError` too.
   */
  readonly unreportedDrops: number;
  /** True after a block failed every attempt, until a send succeeds again. */
  readonly serverDown: boolean;
  /** The last error of any kind: a block's, a drop report's, the spool's. */
  readonly lastError?: string;
  /**
   * Why the last block that failed its sends (every attempt, or refused) failed: the server's
   * answer or the network's error (what failed after it, a drop report, the close's deadline,
   * does not hide it; an attempt that a retry mended is not kept).
   */
  readonly lastBlockError?: string;
}

/** Mutable counters behind `SinkStats`. */
export class SinkCounters {
  pushed = 0;
  sent = 0;
  spooled = 0;
  retries = 0;
  unreportedDrops = 0;
  readonly dropped: Record<DropReason, number> = { bufferFull: 0, spoolFull: 0, rejected: 0, shutdown: 0 };
  lastError: string | undefined;
  lastBlockError: string | undefined;

  /** Notes why a block's sends failed for good (or for now: the server down). */
  blockFailed(error: string): void {
    this.lastError = error;
    this.lastBlockError = error;
  }

  get droppedTotal(): number {
    return this.dropped.bufferFull + this.dropped.spoolFull + this.dropped.rejected + this.dropped.shutdown;
  }
}
