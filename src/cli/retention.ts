import { Command } from 'commander';
import { Lake } from '../telemetry/lake/lake.js';
import { applyRetention, type RetentionReport } from '../telemetry/lake/retention.js';
import { counted, printable } from './format.js';
import { atLeast, existingLakeLocation, integer, type LakeOptions, withLakeOptions } from './options.js';

/** One line for a retention pass, and what it kept (blobs the store would not delete). */
export function describeRetention(report: RetentionReport): string {
  const kept =
    report.blobsKept === 0
      ? ''
      : `; kept ${counted(report.blobsKept, 'blob', 'blobs')} the blob store would not delete, for the next pass to try again: ${printable(report.keptBecause ?? '')}`;
  return `retention: deleted ${counted(report.blocks, 'block', 'blocks')}, ${counted(report.blobs, 'blob', 'blobs')}, ${counted(report.streams, 'stream', 'streams')}, ${counted(report.processes, 'process', 'processes')}, ${counted(report.dropReports, 'drop report', 'drop reports')}, ${counted(report.partitions, 'partition', 'partitions')} inserted before ${report.cutoff}${kept}`;
}

interface RetentionCliOptions extends LakeOptions {
  readonly days: number;
  readonly batch: number;
  readonly pauseMs: number;
  readonly verbose: boolean;
}

/** `dorsal retention --days N`: one retention pass over a lake (see `applyRetention`). */
export function retentionCommand(): Command {
  return withLakeOptions(new Command('retention'))
    .description(
      'delete what a lake received more than N days ago: blocks and their blobs, the analytics partitions made of them, then empty streams and processes',
    )
    .requiredOption(
      '--days <n>',
      'keep what was inserted in the last N days (fractions allowed; 0: delete all)',
      atLeast(0),
    )
    .option('--batch <n>', 'rows deleted per batch', integer(1, 100_000), 256)
    .option('--pause-ms <ms>', 'pause between batches', integer(0, 60_000), 50)
    .option('--verbose', 'print the totals after each batch (standard error)', false)
    .action(async (options: RetentionCliOptions) => {
      const lake = Lake.open(existingLakeLocation(options));
      try {
        const report = await applyRetention(lake, {
          days: options.days,
          batchSize: options.batch,
          pauseMs: options.pauseMs,
          ...(options.verbose
            ? { onBatch: (r: RetentionReport) => console.error(describeRetention(r)) }
            : {}),
        });
        console.log(describeRetention(report));
        // The pass went on without them, but the lake still holds what it was asked to delete.
        if (report.blobsKept > 0) process.exitCode = 1;
      } finally {
        await lake.close();
      }
    });
}
