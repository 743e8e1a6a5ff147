import { Command } from 'commander';
import { allRows } from '../telemetry/analytics/paged.js';
import { count, dim, duration, printJson, table } from './format.js';
import { type SourceOptions, withSource, withSourceOptions } from './source.js';

/** A recorded process as `dorsal processes` lists it. */
export interface ProcessListing {
  readonly processId: string;
  readonly exe: string;
  readonly startTime: string;
  /** From the start to the end of its last block, in ns. */
  readonly durationNs: number | null;
  readonly messages: number;
  readonly timings: number;
  /** The process it replays, if it is a replay. */
  readonly replayOf: string | null;
}

const LISTING = `
SELECT p.process_id, p.exe, p.start_time::VARCHAR,
  epoch_ns(max(b.end_time)) - epoch_ns(p.start_time) AS duration_ns,
  coalesce(sum(b.object_count) FILTER (WHERE list_contains(s.tags::VARCHAR[], 'messages')), 0) AS messages,
  coalesce(sum(b.object_count) FILTER (WHERE list_contains(s.tags::VARCHAR[], 'timings')), 0) AS timings,
  p.properties->>'dorsal.replay_of' AS replay_of
FROM processes p
LEFT JOIN blocks b ON b.process_id = p.process_id
LEFT JOIN streams s ON s.stream_id = b.stream_id
GROUP BY p.process_id, p.exe, p.start_time, p.properties ORDER BY p.start_time DESC, p.process_id`;

/** `dorsal processes`: the recorded processes, newest first. */
export function processesCommand(): Command {
  return withSourceOptions(
    new Command('processes')
      .description('list the recorded processes, newest first')
      .addHelpText('after', '\nExample:\n  $ dorsal processes --data ./dorsal-data'),
    false,
  ).action(async (options: SourceOptions) => {
    await withSource(options, async (source) => {
      // Every process, page after page, however few rows a server answers at once.
      const rows = await allRows(source.analytics, {}, LISTING, Number.POSITIVE_INFINITY, 100_000);
      const listing: ProcessListing[] = rows.map((r) => ({
        processId: String(r[0]),
        exe: String(r[1]),
        startTime: String(r[2]),
        durationNs: r[3] === null ? null : Number(r[3]),
        messages: Number(r[4]),
        timings: Number(r[5]),
        replayOf: r[6] === null ? null : String(r[6]),
      }));
      if (options.json) return printJson(listing);
      if (listing.length === 0) return console.log(dim(`no process recorded in ${source.where}`));
      console.log(
        table(
          ['process', 'exe', 'start', 'duration', 'messages', 'timings', 'replay of'],
          listing.map((p) => [
            p.processId,
            p.exe,
            p.startTime.slice(0, 23),
            p.durationNs === null ? '—' : duration(p.durationNs),
            count(p.messages),
            count(p.timings),
            p.replayOf ?? '',
          ]),
        ),
      );
    });
  });
}
