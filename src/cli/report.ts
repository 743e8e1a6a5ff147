import { Command } from 'commander';
import { gatherReport } from '../telemetry/views/report-data.js';
import { renderReport } from '../telemetry/views/report-html.js';
import { count } from './format.js';
import {
  refuseOutputInLake,
  resolveProcess,
  type SourceOptions,
  sayUnreadableCounts,
  withSource,
  withSourceOptions,
} from './source.js';
import { untimedLine } from './stats.js';
import { STDOUT, writeWhole } from './trace-file.js';

interface ReportOptions extends SourceOptions {
  readonly output: string;
}

/**
 * Writes the report to `path`, or to stdout for `-` (resolved once it is written: the command says
 * so only then); a file that cannot be written is a `CliError` with the system's reason.
 */
async function writeReport(path: string, html: string): Promise<void> {
  if (path === STDOUT) {
    // A failure is said by the command's own handler of stdout errors (dorsal.ts), which ends it.
    await new Promise<void>((resolve) =>
      process.stdout.write(html, (error) => (error ? undefined : resolve())),
    );
    return;
  }
  await writeWhole(path, Buffer.from(html, 'utf8'));
}

/**
 * `dorsal report`: one self-contained HTML file of a recorded process (topology, latency,
 * throughput and loss over time, the slowest trees, instrumentation), aggregated by the
 * analytics where the data is and drawn as inline SVG: it opens with no network.
 */
export function reportCommand(): Command {
  return withSourceOptions(
    new Command('report')
      .description('write one self-contained HTML report of a recorded process (charts as inline SVG)')
      .requiredOption(
        '-o, --output <file>',
        'the HTML file to write, e.g. report.html; - writes it to stdout',
      )
      .addHelpText(
        'after',
        '\nExamples:\n  $ dorsal report -o report.html && xdg-open report.html\n  $ dorsal report -o - | gzip > report.html.gz   # the summary goes to stderr',
      ),
  ).action(async (options: ReportOptions) => {
    if (options.output !== STDOUT) refuseOutputInLake(options, options.output);
    await withSource(options, async (source) => {
      const process = await resolveProcess(source, options.process);
      // Counts that did not read leave the lost column blank: said (the report says it too).
      await sayUnreadableCounts(source.analytics, process.processId, options.strict === true);
      const data = await gatherReport(source.analytics, process.processId);
      // Said as `stats` says it: the report says it too, at its top.
      if (data.untimed > 0) console.error(untimedLine(data.untimed));
      const html = renderReport(data);
      await writeReport(options.output, html);
      const messages = data.topology.produced.reduce((n, e) => n + e.count, 0);
      const summary = {
        process: process.processId,
        output: options.output,
        bytes: Buffer.byteLength(html),
        messages,
        trees: data.slowest.length,
      };
      // With the report on stdout, what is said of it goes to stderr.
      const say = options.output === STDOUT ? console.error : console.log;
      if (options.json) return say(JSON.stringify(summary));
      say(
        `report of process ${process.processId} (${count(messages)} messages) written to ${options.output === STDOUT ? 'stdout' : options.output} (${count(summary.bytes)} bytes)`,
      );
    });
  });
}
