import { Command, Option } from 'commander';
import { toCsv } from '../telemetry/analytics/http-query.js';
import { printable, printJson, table } from './format.js';
import { integer } from './options.js';
import { resolveProcess, type SourceOptions, withSource, withSourceOptions } from './source.js';

interface QueryOptions extends SourceOptions {
  readonly format?: 'table' | 'json' | 'csv';
  readonly allProcesses: boolean;
  readonly begin?: string;
  readonly end?: string;
  readonly maxRows: number;
}

/** A cell as a table shows it: JSON for lists and objects, empty for NULL. */
function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  return printable(typeof value === 'object' ? JSON.stringify(value) : String(value));
}

/** `dorsal query "SQL"`: read-only SQL on the analytics tables. */
export function queryCommand(): Command {
  return withSourceOptions(
    new Command('query')
      .description('run read-only SQL on the analytics tables (messages, stream_<name>, timings, losses, …)')
      .argument('<sql>', 'one SELECT statement')
      .addOption(
        // One of the two says the format: given both, which one wins would be a guess.
        new Option('--format <format>', 'table, json or csv')
          .choices(['table', 'json', 'csv'])
          .conflicts('json'),
      )
      .addOption(
        new Option('--all-processes', 'query every recorded process, not only --process')
          .default(false)
          .conflicts('process'),
      )
      .option('--begin <time>', 'only rows at or after this RFC 3339 time')
      .option('--end <time>', 'only rows before this RFC 3339 time')
      .option('--max-rows <n>', 'rows printed at most', integer(1, 10_000_000), 1000)
      .addHelpText(
        'after',
        `
Example:
  $ dorsal query "SELECT actor, stream, count(*), quantile_disc(latency_ns, 0.99) AS p99 FROM timings GROUP BY ALL"`,
      ),
  ).action(async (sql: string, options: QueryOptions) => {
    await withSource(options, async (source) => {
      const processId = options.allProcesses
        ? undefined
        : (await resolveProcess(source, options.process)).processId;
      const result = await source.analytics.query(sql, {
        ...(processId === undefined ? {} : { process: processId }),
        ...(options.begin === undefined ? {} : { begin: options.begin }),
        ...(options.end === undefined ? {} : { end: options.end }),
        maxRows: options.maxRows,
      });
      const format = options.format ?? (options.json ? 'json' : 'table');
      const rows = `${result.rows.length} row${result.rows.length === 1 ? '' : 's'}`;
      const cut = !result.truncated
        ? ''
        : result.rows.length === options.maxRows
          ? ` (cut at --max-rows ${options.maxRows})`
          : " (cut at the server's row limit, or at the answer's byte limit)";
      if (format === 'json') printJson(result);
      else if (format === 'csv') {
        // CSV has no room to say it (stdout stays CSV alone): a cut answer is said on stderr, once
        // the CSV is written (a reader that stopped reading ends the command quietly, dorsal.ts).
        await new Promise<void>((resolve) =>
          process.stdout.write(toCsv(result), (error) => (error ? undefined : resolve())),
        );
        if (result.truncated) console.error(`dorsal: ${rows}${cut}: the answer has more`);
      } else {
        console.log(
          table(
            result.columns.map((c) => c.name),
            result.rows.map((r) => r.map(cell)),
          ),
        );
        console.error(`${rows}${cut}`);
      }
    });
  });
}
