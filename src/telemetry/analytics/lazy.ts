import { Analytics, type AnalyticsOptions } from './analytics.js';

/**
 * Analytics opened on first use and shared by the routes of one server, so that a server that
 * only ingests never loads DuckDB, and the query route and the views ask one DuckDB and one ETL
 * pool. An open that failed is tried again by the next `get`.
 */
export class LazyAnalytics {
  private readonly options: AnalyticsOptions;
  private opening: Promise<Analytics> | undefined;

  constructor(options: AnalyticsOptions) {
    this.options = options;
  }

  /** The analytics, opened now if they are not yet. */
  get(): Promise<Analytics> {
    this.opening ??= Analytics.open(this.options).catch((error: unknown) => {
      this.opening = undefined;
      throw error;
    });
    return this.opening;
  }

  /** Closes them if they were opened; the next `get` opens them again. */
  async close(): Promise<void> {
    const open = this.opening;
    this.opening = undefined;
    if (open !== undefined) await (await open.catch(() => undefined))?.close();
  }
}
