import type { QueryScope } from '../telemetry/analytics/query.js';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';

/** Rows asked for per query; a server with a lower row limit answers fewer, and paging goes on. */
/** Rows a page asks for. */
export const PAGE = 50_000;

/**
 * Every row of a query over one process, read in pages keyed on a column that only grows (a
 * stream's `seq`), so that a server's row limit (or its answer's byte limit) cuts nothing.
 * `sql(after, limit)` selects the rows whose key is greater than `after`, ordered by it, at most
 * `limit`; `key` is its column. Yields each page as it comes: a reader that keeps something
 * smaller than the rows never holds them all.
 */
export function pagesOf(
  analytics: AnalyticsQuestions,
  process: string,
  sql: (after: number, limit: number) => string,
  key = 0,
): AsyncGenerator<readonly (readonly unknown[])[]> {
  return keysetPagesOf(
    analytics,
    process,
    (after: number | undefined, limit) => sql(after ?? -1, limit),
    (row) => Number(row[key]),
  );
}

/**
 * `pagesOf` with a key of any shape (several columns, e.g. a time, then a stream, then a
 * sequence): `sql(after, limit)` selects the rows whose key is greater than `after` (all of
 * them when it is undefined), ordered by it, at most `limit`; `keyOf(row)` is a row's key. Each
 * page is one query; nothing but the last row's key is kept between pages.
 */
export async function* keysetPagesOf<K>(
  analytics: AnalyticsQuestions,
  process: string,
  sql: (after: K | undefined, limit: number) => string,
  keyOf: (row: readonly unknown[]) => K,
): AsyncGenerator<readonly (readonly unknown[])[]> {
  let after: K | undefined;
  for (;;) {
    const { rows, truncated } = await analytics.query(sql(after, PAGE), { process, maxRows: PAGE });
    if (rows.length > 0) yield rows;
    const last = rows.at(-1);
    if (last === undefined || (!truncated && rows.length < PAGE)) return;
    after = keyOf(last);
  }
}

/** Every row of such a query (see `pagesOf`), in one array. */
export async function readPaged(
  analytics: AnalyticsQuestions,
  process: string,
  sql: (after: number, limit: number) => string,
  key = 0,
): Promise<(readonly unknown[])[]> {
  const out: (readonly unknown[])[] = [];
  for await (const rows of pagesOf(analytics, process, sql, key)) for (const row of rows) out.push(row);
  return out;
}

/**
 * The rows of an ordered query (`sql`, with no LIMIT of its own) in pages of LIMIT and OFFSET, up
 * to `atMost` rows: for a query with no growing key to page on. Each page runs the query again.
 */
export async function* offsetPagesOf(
  analytics: AnalyticsQuestions,
  scope: Omit<QueryScope, 'maxRows'>,
  sql: string,
  atMost = Number.POSITIVE_INFINITY,
): AsyncGenerator<readonly (readonly unknown[])[]> {
  let offset = 0;
  while (offset < atMost) {
    const limit = Math.min(PAGE, atMost - offset);
    const { rows, truncated } = await analytics.query(`${sql}\nLIMIT ${limit} OFFSET ${offset}`, {
      ...scope,
      maxRows: limit,
    });
    if (rows.length > 0) yield rows;
    // An answer cut at the server's row or byte limit goes on from where it was cut.
    if (rows.length === 0 || (!truncated && rows.length < limit)) return;
    offset += rows.length;
  }
}
