import { existsSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type LakeLocation, sqliteFileOf } from '../telemetry/lake/open.js';
import { CliError } from './source.js';

/** A parser for an integer option within `[min, max]`. */
export function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in [${min}, ${max}]`);
    }
    return n;
  };
}

/** A parser for a number option of at least `min` (fractions allowed). */
export function atLeast(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min) {
      throw new InvalidArgumentError(`expected a number of at least ${min}`);
    }
    return n;
  };
}

/** The options naming a lake, as every command that opens one takes them. */
export interface LakeOptions {
  readonly data: string;
  readonly db?: string;
  readonly blobs?: string;
}

/** Adds `--data` (or `DORSAL_DATA`, as the commands that read and run take it), `--db` and `--blobs` to a command. */
export function withLakeOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--data <dir>', 'embedded lake: SQLite file and blobs in this directory')
        .env('DORSAL_DATA')
        .default('./dorsal-data'),
    )
    .option('--db <url>', 'metadata database: postgres://…[?schema=name] or a SQLite file')
    .option('--blobs <url>', 'blob store: s3://bucket/prefix[?endpoint=…&region=…] or a directory');
}

/** The lake those options name. */
export function lakeLocation(options: LakeOptions): LakeLocation {
  return {
    data: options.data,
    ...(options.db === undefined ? {} : { db: options.db }),
    ...(options.blobs === undefined ? {} : { blobs: options.blobs }),
  };
}

/**
 * The SQLite file of the lake those options name when it is not there (undefined too for a lake
 * in PostgreSQL, which only a query tells: see `existingLakeLocation`). Opening a lake makes one.
 */
export function missingLakeFile(options: LakeOptions): string | undefined {
  const path = sqliteFileOf(lakeLocation(options));
  return path === undefined || existsSync(path) ? undefined : path;
}

/**
 * The lake those options name, refused when it is not there: a command that works on an existing
 * lake (listing, revoking, deleting) says a mistyped --data, rather than answer from an empty lake
 * made for it. A lake in PostgreSQL is looked for when it is first used (the location forbids
 * making it): a mistyped `?schema=` is refused then, and no schema is made.
 */
export function existingLakeLocation(options: LakeOptions): LakeLocation {
  const missing = missingLakeFile(options);
  if (missing !== undefined) {
    throw new CliError(`no lake at ${missing}: give the --data (or --db) of an existing lake`);
  }
  const location = lakeLocation(options);
  return sqliteFileOf(location) === undefined ? { ...location, postgres: { create: false } } : location;
}

/**
 * `--key`, for commands that talk to a server; `DORSAL_KEY` when it is not given. The variable is
 * the better way: other users of the machine can read a command line (`ps`), not an environment.
 */
export function keyOption(): Option {
  return new Option(
    '--key <key>',
    'API key sent to the server (prefer DORSAL_KEY: a command line shows in ps)',
  ).env('DORSAL_KEY');
}
