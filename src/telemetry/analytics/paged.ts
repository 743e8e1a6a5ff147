import { QueryRefusedError } from './guard.js';
import type { QueryFunction, QueryResult, QueryScope } from './query.js';

/** What answers queries: the analytics, embedded or remote (`AnalyticsQuestions`). */
export interface Queryable {
  readonly query: QueryFunction;
}

/** Rows a page asks for; a server with a lower row limit answers fewer, and paging goes on. */
export const PAGE = 50_000;

/**
 * Every row of a query over one process, read in pages keyed on a column that only grows (a
 * stream's `seq`), so that a server's row limit (or its answer's byte limit) cuts nothing.
 * `sql(after, limit)` selects the rows whose key is greater than `after`, ordered by it, at most
 * `limit`; `key` is its column. Yields each page as it comes: a reader that keeps something
 * smaller than the rows never holds them all.
 */
export function pagesOf(
  analytics: Queryable,
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
  analytics: Queryable,
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
  analytics: Queryable,
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
 * Its order must be total (ties broken to the last column that tells rows apart): pages of an
 * order with ties may repeat a row and miss another.
 */
export async function* offsetPagesOf(
  analytics: Queryable,
  scope: Omit<QueryScope, 'maxRows'>,
  sql: string,
  atMost = Number.POSITIVE_INFINITY,
  page = PAGE,
): AsyncGenerator<readonly (readonly unknown[])[]> {
  let offset = 0;
  while (offset < atMost) {
    const limit = Math.min(page, atMost - offset);
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

/**
 * Every row of such a query (see `offsetPagesOf`), up to `atMost`, in one array: one answer when
 * `page` rows hold them all and the server's row and byte limits let it through, else page after
 * page, so that no limit cuts the answer short without a word. For answers a caller needs whole (a
 * tree, a listing, a table of percentiles).
 */
export async function allRows(
  analytics: Queryable,
  scope: Omit<QueryScope, 'maxRows'>,
  sql: string,
  atMost = Number.POSITIVE_INFINITY,
  page = PAGE,
): Promise<(readonly unknown[])[]> {
  const out: (readonly unknown[])[] = [];
  for await (const rows of offsetPagesOf(analytics, scope, sql, atMost, page))
    for (const row of rows) out.push(row);
  return out;
}

/**
 * Every row of `sql` (no ORDER BY, no LIMIT of its own), in no order: asked once unordered, which
 * costs no sort, and only if that answer was cut (a server's row or byte limit, or `page`), read
 * again page after page ordered by `order` (a total order, see `offsetPagesOf`).
 */
export async function allRowsUnordered(
  analytics: Queryable,
  scope: Omit<QueryScope, 'maxRows'>,
  sql: string,
  order: string,
  page = PAGE,
): Promise<(readonly unknown[])[]> {
  const first = await analytics.query(sql, { ...scope, maxRows: page });
  if (!first.truncated && first.rows.length < page) return [...first.rows];
  return allRows(analytics, scope, `${sql}\nORDER BY ${order}`, Number.POSITIVE_INFINITY, page);
}

/**
 * The rows of an answer that must come whole (a report's table, bounded by the system's shape, not
 * by its messages), refused when a limit cut it: a server that answers fewer rows at once than
 * the question needs (its `--query-rows`), or an answer past the byte limit.
 */
export function uncut(result: QueryResult): QueryResult['rows'] {
  if (result.truncated) {
    throw new QueryRefusedError(
      `an answer was cut at ${result.rows.length} row${result.rows.length === 1 ? '' : 's'} (the server's row limit, --query-rows, or the answer's byte limit): raise it to read this whole`,
    );
  }
  return result.rows;
}
