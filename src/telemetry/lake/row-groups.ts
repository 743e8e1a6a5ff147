/** A row waiting for its group, and the caller waiting for it. */
interface PendingRow<P> {
  readonly params: P;
  readonly resolve: (inserted: boolean) => void;
  readonly reject: (error: unknown) => void;
}

/** How a store writes rows: a group at once (all or none), or one on its own. */
export interface RowWriter<P> {
  /** Writes `rows` together; returns, per row, whether it was inserted (false: already there). */
  group(rows: readonly P[]): Promise<boolean[]> | boolean[];
  /** Writes one row; returns whether it was inserted. Its error is the caller's. */
  one(row: P): Promise<boolean> | boolean;
  /**
   * Whether the error of a failed group blames its rows (a value or a constraint the database
   * refused): each row is then written on its own. Any other error (the database busy, down, a
   * connection lost with the group's outcome unknown) fails every row of the group with it.
   */
  blamesRows(error: unknown): boolean;
}

/**
 * Group commit for metadata rows: the rows that arrive within one turn of the event loop are
 * written together, in one transaction (SQLite: one WAL commit) or one statement (PostgreSQL: one
 * round trip), instead of one each. If the database refuses a row of the group, each row is
 * written on its own, so that it fails alone and the others are stored. If the group fails for
 * any other reason, every row fails with it: written again one by one, a group committed before
 * its answer was lost would come back as rows "already there" (they are: its own), and a database
 * busy for seconds would be waited for once per row.
 */
export class RowGroups<P> {
  private readonly writer: RowWriter<P>;
  /** Largest group: PostgreSQL takes at most 65,535 parameters in one statement. */
  private readonly maxRows: number;
  private pending: PendingRow<P>[] = [];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(writer: RowWriter<P>, maxRows = 1000) {
    this.writer = writer;
    this.maxRows = maxRows;
  }

  /** Queues a row; resolves once it is written (true: inserted), rejects with its own error. */
  add(params: P): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ params, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => void this.flush());
    });
  }

  /** Writes the rows waiting now and waits for every group under way (at close). */
  async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const rows = this.pending.splice(0, this.maxRows);
      const done = this.write(rows);
      this.inFlight.add(done);
      void done.finally(() => this.inFlight.delete(done));
    }
    await Promise.all(this.inFlight);
  }

  private async write(rows: readonly PendingRow<P>[]): Promise<void> {
    let inserted: boolean[] | undefined;
    if (rows.length > 1) {
      try {
        inserted = await this.writer.group(rows.map((r) => r.params));
      } catch (error) {
        if (!this.writer.blamesRows(error)) {
          for (const row of rows) row.reject(error);
          return;
        }
        // One row that fails must not fail the others: each is written on its own below.
      }
    }
    for (const [i, row] of rows.entries()) {
      try {
        row.resolve(inserted?.[i] ?? (await this.writer.one(row.params)));
      } catch (error) {
        row.reject(error);
      }
    }
  }
}
