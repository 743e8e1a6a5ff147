/**
 * One measured figure of the bench suite. Every section of `npm run bench` returns rows of this
 * shape; `bench/run.ts` prints them as a Markdown table and writes them to
 * `bench/results/latest.json`.
 */
export interface BenchRow {
  /** Section, e.g. 'queue', 'spine', 'ingest'. */
  readonly group: string;
  /** What was measured, e.g. 'publish 64-byte message'. */
  readonly name: string;
  readonly value: number;
  /** 'ns/msg', 'M msg/s', 'µs', 'events/s', 'MB/s', … */
  readonly unit: string;
  /** Name of the row measured in the same run that this one is compared with. */
  readonly baseline?: string;
  /** value / baseline value (or baseline / value where smaller is better; see `note`). */
  readonly ratio?: number;
  /** The target from the issue, as text, e.g. '≤ 30 ns'. */
  readonly target?: string;
  /** Whether the target was met in this run. */
  readonly met?: boolean;
  readonly note?: string;
}

/** A bench section: a name and a function that measures and returns its rows. */
export interface BenchSection {
  readonly group: string;
  run(options: { quick: boolean }): Promise<BenchRow[]>;
}
