#!/usr/bin/env node
/**
 * The `dorsal` command.
 *
 *   dorsal serve [--host 127.0.0.1] [--port 8081] [--data DIR | --db URL --blobs URL] [--body-limit BYTES]
 *
 * `serve` runs the ingestion service: HTTP on loopback by default, in front of the embedded lake
 * (`./dorsal-data`: SQLite + blob files) or of PostgreSQL (`--db postgres://…?schema=…`) and an
 * S3-compatible bucket (`--blobs s3://bucket/prefix?endpoint=…`; credentials from the usual AWS_*
 * environment). It prints `dorsal ingestion listening on http://HOST:PORT` once it listens.
 */
import { Command } from 'commander';
import { describeFailure, serveCommand } from './serve.js';

const program = new Command('dorsal')
  .description('dorsal: low-latency in-process message systems with telemetry in the backbone')
  .addCommand(serveCommand());

program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(describeFailure(error));
  process.exitCode = 1;
});
