#!/usr/bin/env node
/**
 * The `dorsal` command.
 *
 *   dorsal run MODULE [--seconds N]        a system module, recorded; then what it saw
 *   dorsal demo [--seconds N] [--rate R]   the market pipeline (what `npm start` runs)
 *   dorsal processes | stats | tree | query "SQL"        read a recorded run
 *   dorsal trace [--begin T --end T] -o trace.json   a recorded run as a Chrome trace (Perfetto)
 *   dorsal replay [--process ID] [--system MODULE] [--speed 1|10|max] [--diff]   play it again, compare
 *   dorsal report [--process ID] -o report.html         one self-contained HTML report of a run
 *   dorsal serve [--role ingestion|analytics|all] [--host 127.0.0.1] [--port 8081] [lake options] …
 *   dorsal keys create --name NAME | keys list | keys revoke NAME     [lake options]
 *   dorsal status [--url http://127.0.0.1:8081] [--key KEY]           (better: DORSAL_KEY)
 *   dorsal retention --days N [--batch N] [--pause-ms MS] [--verbose] [lake options]
 *
 * The reading commands take `--data DIR` (the embedded lake, default `./dorsal-data`, or
 * `DORSAL_DATA`) or `--url URL` (a `dorsal serve`, or `DORSAL_URL`), `--process ID` (default the
 * newest) and `--json`. `serve` runs the ingestion service and the analytics' queries: HTTP on
 * loopback by default, in front of the embedded lake or of PostgreSQL (`--db postgres://…?schema=…`)
 * and an S3-compatible bucket (`--blobs s3://bucket/prefix?endpoint=…`; credentials from the usual
 * AWS_* environment). It prints `dorsal ingestion and analytics listening on http://HOST:PORT`
 * once it listens. Once the lake has an API key (`keys create`), every route but `/health` needs
 * it; another address than loopback is refused while the lake has none, unless `--insecure`.
 * Every command has `--help` with an example.
 */
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { describeFailure } from './failure.js';

/** This dorsal's version: its package.json, found by the package's own name (built or from its sources). */
const { version } = createRequire(import.meta.url)('dorsal/package.json') as { version: string };

/**
 * Each command, from its module: the command asked for is loaded alone (the others' modules,
 * their drivers with them, are not: a command starts about 80 ms sooner); anything else (the
 * help, a mistyped command, `--version`) loads them all.
 */
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  run: async () => (await import('./run.js')).runCommand(),
  demo: async () => (await import('./run.js')).demoCommand(),
  processes: async () => (await import('./processes.js')).processesCommand(),
  stats: async () => (await import('./stats.js')).statsCommand(),
  tree: async () => (await import('./tree.js')).treeCommand(),
  trace: async () => (await import('./trace.js')).traceCommand(),
  query: async () => (await import('./query.js')).queryCommand(),
  replay: async () => (await import('./replay.js')).replayCommand(),
  report: async () => (await import('./report.js')).reportCommand(),
  serve: async () => (await import('./serve.js')).serveCommand(),
  keys: async () => (await import('./keys.js')).keysCommand(),
  status: async () => (await import('./status.js')).statusCommand(),
  retention: async () => (await import('./retention.js')).retentionCommand(),
};

const asked = process.argv[2];
const names = asked !== undefined && Object.hasOwn(COMMANDS, asked) ? [asked] : Object.keys(COMMANDS);
const program = new Command('dorsal')
  .description('dorsal: low-latency in-process message systems with telemetry in the backbone')
  .version(version, '-V, --version', "this dorsal's version");
for (const command of await Promise.all(names.map((name) => COMMANDS[name]!()))) program.addCommand(command);

// A reader that stops reading (`dorsal processes | head`) ends the command quietly, as it does `ls`.
// Any other failure to write (a full disk: ENOSPC) is said in one line, exit 1.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  process.stderr.write(`dorsal: cannot write to stdout (${error.code ?? error.message})\n`);
  process.exit(1);
});

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(describeFailure(error));
  process.exitCode = 1;
});
