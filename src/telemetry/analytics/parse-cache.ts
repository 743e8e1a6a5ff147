import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { untilAborted } from './deadline.js';
import { type ParsedQuery, parseOne } from './guard.js';

/** Query texts whose parse is kept, at most: a page or a client repeats a few queries. */
const KEPT = 128;
/** Texts longer than this are parsed every time (a key as long as the query, kept for each). */
const LONGEST = 16 << 10;

/**
 * The first fence of a query (`parseOne`), kept per query text: a page that asks the same query
 * every second, or a client that repeats one, pays DuckDB's parse (~0.7 ms) once. Only accepted
 * parses are kept (a refusal is parsed again, and says why again); the least recently asked goes
 * first. The parse depends on the text alone (not on the tables, which do not exist yet when it
 * runs), and the second fence, `checkBound`, runs on every query still.
 */
export class ParseCache {
  private readonly db: DuckDBInstance;
  private readonly kept = new Map<string, ParsedQuery>();

  constructor(db: DuckDBInstance) {
    this.db = db;
  }

  /**
   * The parse of `sql`, or a `QueryCancelledError` as soon as `signal` aborts (its query's time
   * limit, its client gone): connecting and parsing wait for one of libuv's threads, which a
   * server's file I/O and every DuckDB call share. The parse is interrupted then; what goes on of
   * it (a connection under way) ends for no one, and its connection is closed.
   */
  async parse(sql: string, signal: AbortSignal): Promise<ParsedQuery> {
    const known = typeof sql === 'string' ? this.kept.get(sql) : undefined;
    if (known !== undefined) {
      // The most recently asked, last.
      this.kept.delete(sql);
      this.kept.set(sql, known);
      return known;
    }
    const connecting = this.db.connect();
    let parser: DuckDBConnection;
    try {
      parser = await untilAborted(connecting, signal);
    } catch (error) {
      connecting.then((c) => c.closeSync()).catch(() => {});
      throw error;
    }
    const interrupt = () => parser.interrupt();
    signal.addEventListener('abort', interrupt, { once: true });
    const parsing = parseOne(parser, sql).finally(() => {
      signal.removeEventListener('abort', interrupt);
      parser.closeSync();
    });
    const parsed = await untilAborted(parsing, signal);
    if (sql.length <= LONGEST) {
      this.kept.set(sql, parsed);
      if (this.kept.size > KEPT) this.kept.delete(this.kept.keys().next().value!);
    }
    return parsed;
  }

  /** Query texts kept now (for an analytics' `held()`). */
  get size(): number {
    return this.kept.size;
  }
}
