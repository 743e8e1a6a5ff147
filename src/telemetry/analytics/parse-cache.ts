import type { DuckDBInstance } from '@duckdb/node-api';
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

  async parse(sql: string): Promise<ParsedQuery> {
    const known = typeof sql === 'string' ? this.kept.get(sql) : undefined;
    if (known !== undefined) {
      // The most recently asked, last.
      this.kept.delete(sql);
      this.kept.set(sql, known);
      return known;
    }
    const parser = await this.db.connect();
    let parsed: ParsedQuery;
    try {
      parsed = await parseOne(parser, sql);
    } finally {
      parser.closeSync();
    }
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
