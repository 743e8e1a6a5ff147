import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';

/** Rows asked for per query; a server with a lower row limit answers fewer, and paging goes on. */
const PAGE = 50_000;

/**
 * Every row of a query over one process, read in pages keyed on a column that only grows (a
 * stream's `seq`), so that a server's row limit cuts nothing. `sql(after, limit)` selects the
 * rows whose key is greater than `after`, ordered by it, at most `limit`; `key` is its column.
 */
export async function readPaged(
  analytics: AnalyticsQuestions,
  process: string,
  sql: (after: number, limit: number) => string,
  key = 0,
): Promise<(readonly unknown[])[]> {
  const out: (readonly unknown[])[] = [];
  let after = -1;
  for (;;) {
    const { rows, truncated } = await analytics.query(sql(after, PAGE), { process, maxRows: PAGE });
    for (const row of rows) out.push(row);
    const last = rows.at(-1);
    if (last === undefined || (!truncated && rows.length < PAGE)) return out;
    after = Number(last[key]);
  }
}
