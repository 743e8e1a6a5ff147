import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { gatherReport } from '../telemetry/views/report-data.js';
import { renderReport } from '../telemetry/views/report-html.js';
import { count } from './format.js';
import {
  refuseOutputInLake,
  resolveProcess,
  type SourceOptions,
  withSource,
  withSourceOptions,
} from './source.js';

interface ReportOptions extends SourceOptions {
  readonly output: string;
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
      .requiredOption('-o, --output <file>', 'the HTML file to write, e.g. report.html')
      .addHelpText('after', '\nExample:\n  $ dorsal report -o report.html && xdg-open report.html'),
  ).action(async (options: ReportOptions) => {
    refuseOutputInLake(options, options.output);
    await withSource(options, async (source) => {
      const process = await resolveProcess(source, options.process);
      const data = await gatherReport(source.analytics, process.processId);
      const html = renderReport(data);
      writeFileSync(options.output, html);
      const messages = data.topology.produced.reduce((n, e) => n + e.count, 0);
      const summary = {
        process: process.processId,
        output: options.output,
        bytes: Buffer.byteLength(html),
        messages,
        trees: data.slowest.length,
      };
      if (options.json) return console.log(JSON.stringify(summary));
      console.log(
        `report of process ${process.processId} (${count(messages)} messages) written to ${options.output} (${count(summary.bytes)} bytes)`,
      );
    });
  });
}
