import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { realPathOf } from '../directories.js';
import { DorsalError } from '../errors.js';
import { checkMemoryLimit, type QueryFunction } from '../telemetry/analytics/query.js';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { quoteLiteral } from '../telemetry/analytics/sql.js';
import { LakeNotFoundError } from '../telemetry/errors.js';
import { checkApiKey } from '../telemetry/sink/api-key.js';
import { isTimerMs, TIMER_MS_RANGE } from '../timer-ms.js';
import { printable } from './format.js';
import { oncePerReason } from './once-per-reason.js';

/** Where a command reads recorded runs: the embedded lake or a server, and which process. */
export interface SourceOptions {
  readonly data: string;
  readonly url?: string;
  readonly key?: string;
  readonly process?: string;
  readonly json?: boolean;
  /** The embedded analytics' memory at most (DuckDB's `memory_limit`). */
  readonly queryMemory?: string;
  /** Fail, rather than answer without them, when blocks of the lake do not read. */
  readonly strict?: boolean;
  /** With `--url`, each query's whole time at most, in ms (see `RemoteAnalyticsOptions.timeoutMs`). */
  readonly timeout?: number;
  /** A recording command's stop: the wait for its last blocks at most, in ms (`flushTimeoutMs`). */
  readonly flushTimeout?: number;
}

/** A command's failure that the user can act on: one line, exit 1. */
export class CliError extends DorsalError {
  constructor(message: string) {
    super('DORSAL_CLI', message);
  }
}

/**
 * Adds `--data` (or `DORSAL_DATA`), `--url` (or `DORSAL_URL`), `--key` and `--json` to a command;
 * `records`: the command records a run there too (their help says so).
 */
export function withSourceOptions(command: Command, withProcess = true, records = false): Command {
  command
    .addOption(
      new Option('--data <dir>', records ? 'the embedded lake to record into' : 'the embedded lake to read')
        .env('DORSAL_DATA')
        .default('./dorsal-data'),
    )
    .addOption(
      new Option(
        '--url <url>',
        records
          ? 'record through a dorsal serve instead (http://host:port)'
          : 'read through a dorsal serve instead (http://host:port)',
      ).env('DORSAL_URL'),
    )
    .addOption(new Option('--key <key>', "the server's API key").env('DORSAL_KEY'))
    .addOption(
      new Option(
        '--timeout <ms>',
        "with --url, each query's time at most, from its request to its answer's end (a server that does not answer holds no command for good)",
      )
        .env('DORSAL_TIMEOUT')
        .default(300_000)
        .argParser(timerMs),
    )
    .addOption(
      new Option(
        '--query-memory <size>',
        "with --data, the analytics' memory at most, e.g. 2GB (default DuckDB's: 80% of RAM); past it, queries spill to disk",
      )
        .env('DORSAL_QUERY_MEMORY')
        .argParser(memorySize),
    )
    .option('--json', 'print JSON for scripts instead of tables', false);
  if (records) withFlushTimeout(command);
  command.option(
    '--strict',
    'fail (exit 1) rather than answer without the records of blocks that do not read (a blob missing or damaged)',
    false,
  );
  // One lake: --data and --url both given is a mistake to say, not a guess to make (--url won,
  // and an explicit --data was ignored). On the command line, either beats its variable.
  command.hook('preAction', (self) => {
    if (self.getOptionValue('url') === undefined || self.getOptionValue('url') === '') return;
    const data = self.getOptionValueSource('data');
    const url = self.getOptionValueSource('url');
    if (data === 'cli' && url === 'cli') self.error('error: give --data or --url, not both');
    else if (data === 'cli') self.setOptionValueWithSource('url', undefined, 'default');
    else if (data === 'env' && url === 'env') {
      self.error('error: DORSAL_DATA and DORSAL_URL are both set: give --data or --url to say which');
    }
  });
  // One process: a second --process would otherwise silently replace the first.
  if (withProcess)
    command.option('--process <id>', 'the recorded process (default: the newest)', (id, earlier?: string) => {
      if (earlier !== undefined) throw new InvalidArgumentError(`one process only, got ${earlier} and ${id}`);
      return id;
    });
  return command;
}

/** Adds `--flush-timeout` to a command that records a run: its stop's wait for the last blocks. */
export function withFlushTimeout(command: Command): Command {
  return command.addOption(
    new Option(
      '--flush-timeout <ms>',
      'at the stop, how long at most to wait for the last blocks to reach the lake or the server, 10000 by default (the summary says when some did not)',
    ).argParser(timerMs),
  );
}

/** An option's value in ms, as a timer takes it. */
function timerMs(value: string): number {
  const ms = Number(value);
  if (!isTimerMs(ms)) throw new InvalidArgumentError(`expected ${TIMER_MS_RANGE}`);
  return ms;
}

/** The analytics a command asks, embedded or remote, and how to let them go. */
export interface Source {
  readonly analytics: AnalyticsQuestions;
  /** Where it reads, for messages: `./dorsal-data` or the server's URL. */
  readonly where: string;
  close(): Promise<void>;
}

/** Opens the analytics of the lake or server the options name; a missing lake is a `CliError` saying what to do. */
export async function openSource(options: SourceOptions): Promise<Source> {
  if (options.url !== undefined && options.url !== '') {
    const { RemoteAnalytics } = await import('../telemetry/analytics/remote.js');
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new CliError(`--url ${options.url} is not a URL: give http://host:port`);
    }
    // Refused here, in one line: fetch would refuse each request with its own TypeError.
    if (url.username !== '' || url.password !== '') {
      throw new CliError(`--url ${url.origin}: give the key with --key (or DORSAL_KEY), not in the URL`);
    }
    if (options.key) checkApiKey(options.key, '--key (or DORSAL_KEY)');
    // A busy server, or one still reading the lake for the query, is asked again; said once per reason.
    const tell = oncePerReason((code) =>
      process.stderr.write(`dorsal: ${retryReason(code)}: asking again\n`),
    );
    const remote = new RemoteAnalytics({
      url: url.toString(),
      ...(options.key ? { key: options.key } : {}),
      onRetry: (refusal) => tell(refusal.code),
      ...(options.timeout === undefined ? {} : { timeoutMs: options.timeout }),
    });
    const query = remote.query;
    // A request that failed is said so, once, in words; any other TypeError is no such failure.
    const reachable: typeof query = async (sql, scope) => {
      try {
        return await query(sql, scope);
      } catch (error) {
        if (error instanceof TypeError) throw remoteFailure(url.origin, error);
        throw error;
      }
    };
    Object.defineProperty(remote, 'query', { value: sayingUnreadable(reachable, options.strict === true) });
    return { analytics: remote, where: url.origin, close: async () => {} };
  }
  if (!existsSync(join(options.data, 'lake.sqlite'))) {
    throw new CliError(
      `no lake in ${options.data}: record a run first (\`npm start\`, or \`dorsal run MODULE\`), or give --data DIR or --url URL`,
    );
  }
  const { Analytics } = await import('../telemetry/analytics/analytics.js');
  const analytics = await Analytics.open({
    lake: { data: options.data },
    cacheDir: join(options.data, 'analytics'),
    // Blocks decoded here: a command asks and ends, and a decoding thread cost it more than it gave.
    etlThreads: 0,
    ...(options.queryMemory === undefined ? {} : { memoryLimit: options.queryMemory }),
  });
  Object.defineProperty(analytics, 'query', {
    value: sayingUnreadable(analytics.query, options.strict === true),
  });
  return { analytics, where: options.data, close: () => analytics.close() };
}

/**
 * `query`, saying on stderr which blocks the answers left out because they do not read (a blob
 * missing or damaged), whenever an answer leaves out a block not said yet: what a command prints
 * is then known to lack their records. `strict`: such an answer is a `CliError` instead (after
 * the blocks are said), so that a script never takes a partial answer for a whole one.
 */
export function sayingUnreadable(
  query: QueryFunction,
  strict = false,
  write: (text: string) => void = (text) => process.stderr.write(text),
): QueryFunction {
  const said = new Set<string>();
  let saidBlocks = 0;
  return async (sql, scope) => {
    const result = await query(sql, scope);
    const { blocks, records } = result.unreadable;
    const fresh = result.unreadableBlocks.filter((b) => !said.has(b.blockId));
    if (fresh.length === 0 && blocks <= saidBlocks) return result;
    for (const block of fresh) said.add(block.blockId);
    saidBlocks = Math.max(saidBlocks, blocks);
    const shown = (fresh.length > 0 ? fresh : result.unreadableBlocks).slice(0, 5);
    const lines = shown.map((b) => `  ${b.error}`);
    if (blocks > shown.length)
      lines.push(`  … and ${blocks - shown.length} more (SELECT * FROM unreadable_blocks lists them)`);
    write(
      `dorsal: ${blocks} block${blocks === 1 ? '' : 's'} of the lake did not read, and ${records} record${records === 1 ? ' is' : 's are'} left out of what follows:\n${lines.join('\n')}\n`,
    );
    if (strict) {
      throw new CliError(
        `--strict: ${blocks} block${blocks === 1 ? '' : 's'} of the lake did not read; nothing is answered without ${blocks === 1 ? 'it' : 'them'} (without --strict, dorsal query 'SELECT * FROM unreadable_blocks' lists them)`,
      );
    }
    return result;
  };
}

/**
 * Says on stderr, as `sayingUnreadable` says unreadable blocks, when the counts a run kept at its
 * stop (`run_counts`) did not read (a blob missing or damaged): what its actors counted lost is
 * then missing from what a command prints, not zero. `strict`: a `CliError` instead, after it is
 * said. A run without counts (still running, or killed) is no such case: it has no row.
 */
export async function sayUnreadableCounts(
  analytics: AnalyticsQuestions,
  processId: string,
  strict = false,
  write: (text: string) => void = (text) => process.stderr.write(text),
): Promise<readonly string[]> {
  const { rows } = await analytics.query(
    'SELECT error FROM run_counts WHERE error IS NOT NULL ORDER BY error',
    { process: processId, maxRows: 5 },
  );
  const errors = rows.map((r) => String(r[0]));
  if (errors.length === 0) return errors;
  write(
    `dorsal: the run's counts (what its actors counted lost, kept at its stop) did not read, and are left out of what follows:\n${errors.map((e) => `  ${printable(e)}`).join('\n')}\n`,
  );
  if (strict) {
    throw new CliError(
      "--strict: the run's counts did not read; nothing is answered without them (without --strict, dorsal query 'SELECT * FROM run_counts' shows why)",
    );
  }
  return errors;
}

/** What the embedded lake keeps in its directory: its database (and SQLite's files beside it), its blobs, partitions and analytics cache. */
const LAKE_ENTRIES = /^(?:lake\.sqlite(?:-.*)?|blobs|views|analytics|tmp)$/;

/**
 * Refuses an output file (`-o`) that is one of the embedded lake's own files, or in one of its
 * directories (`lake.sqlite`, `blobs/…`, `views/…`, `analytics/…`, `tmp/…`), or the lake's
 * directory itself: written there, it would replace what the lake holds. Links are followed as a
 * write follows them (`writtenPath`), so that a link to such a file is refused too, also one to a
 * file not made yet. Another file in the lake's directory is fine. Nothing to check with `--url`.
 */
export function refuseOutputInLake(options: SourceOptions, output: string): void {
  if (options.url !== undefined && options.url !== '') return;
  let target: string;
  try {
    target = writtenPath(output);
  } catch {
    // Links that never end (ELOOP): no write lands anywhere, and the writer says why.
    return;
  }
  const inside = relative(realPathOf(options.data), target);
  if (inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) return;
  const first = inside.split(sep)[0] ?? '';
  if (inside === '' || LAKE_ENTRIES.test(first)) {
    throw new CliError(
      `-o ${output} is ${inside === '' ? 'the lake' : `the lake's own ${first}`} in ${options.data}: write it elsewhere`,
    );
  }
}

/** Symbolic links followed at most to the file an output is written at (as the kernel's ELOOP, 40). */
const MAX_LINKS = 40;

/**
 * The real path of the file a write to `path` lands in: its links followed, also to a file not
 * made yet (a link, or a chain of them, to nothing names the file at its end, which a write makes
 * there). `realpath` alone cannot resolve a link to nothing, and would give the link's own path.
 * Throws an error with code `ELOOP` past `MAX_LINKS` links.
 */
export function writtenPath(path: string): string {
  // A directory's name (`link/`, `x/.`, `x/..`): a write there fails, and no link on the way is
  // followed for it (`lstat` of `link/` follows the link, and the link itself was taken for the file).
  const last = basename(path);
  if (path.endsWith('/') || path.endsWith(sep) || last === '' || last === '.' || last === '..') {
    throw Object.assign(new Error(`${path}: names a directory, not a file`), { code: 'EISDIR' });
  }
  let file = path;
  for (let hops = 0; hops < MAX_LINKS; hops++) {
    let link: ReturnType<typeof lstatSync> | undefined;
    try {
      link = lstatSync(file);
    } catch {}
    if (link?.isSymbolicLink() !== true) return realPathOf(file);
    // Relative to the directory the link is in, as the kernel reads it: its real path, since a
    // `..` in the link climbs out of where the directory really is; and joined as text, not
    // resolved, so that a `..` after a link in the target is the kernel's too (see `realPathOf`).
    const target = readlinkSync(file);
    file = isAbsolute(target) ? target : `${realPathOf(dirname(file))}${sep}${target}`;
  }
  throw Object.assign(new Error(`${path}: too many symbolic links`), { code: 'ELOOP' });
}

/** A recorded process as the commands describe it. */
export interface ProcessSummary {
  readonly processId: string;
  readonly exe: string;
  readonly startTime: string;
  readonly properties: Readonly<Record<string, string>>;
}

/** The process `--process` names, or the newest; a `CliError` when there is none or no such one. */
export async function resolveProcess(source: Source, wanted: string | undefined): Promise<ProcessSummary> {
  // An empty prefix would match every process: with one in the lake, it would be taken silently.
  if (wanted !== undefined && wanted.trim() === '') {
    throw new CliError('--process needs an id, or the start of one (`dorsal processes` lists them)');
  }
  // The newest, or those whose id starts with what was given: asked of the lake, so that a server's
  // row limit never hides an old process.
  const filter =
    wanted === undefined ? '' : `WHERE starts_with(process_id, ${quoteLiteral(wanted.toLowerCase())})`;
  const sql = `SELECT process_id, exe, start_time::VARCHAR, properties::VARCHAR FROM processes ${filter} ORDER BY start_time DESC LIMIT 2`;
  const { rows } =
    wanted !== undefined && WHOLE_ID.test(wanted)
      ? await askOf(source, wanted, sql)
      : await source.analytics.query(sql);
  if (rows.length === 0 && wanted === undefined) {
    throw new CliError(
      `${source.where} holds no recorded process: record a run first (\`npm start\`, or \`dorsal run MODULE\`)`,
    );
  }
  const exact = rows.filter((r) => r[0] === wanted);
  const matches = wanted === undefined ? rows.slice(0, 1) : exact.length > 0 ? exact : rows;
  if (matches.length > 1) {
    throw new CliError(`--process ${wanted} matches several processes: give more of its id`);
  }
  const row = matches[0];
  if (row === undefined) {
    throw new CliError(`no process ${wanted} in ${source.where}: \`dorsal processes\` lists them`);
  }
  let properties: Record<string, string> = {};
  try {
    properties = JSON.parse(String(row[3])) as Record<string, string>;
  } catch {}
  return { processId: String(row[0]), exe: String(row[1]), startTime: String(row[2]), properties };
}

/** A whole process id (what the lake gives a process), any case. */
const WHOLE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `sql` asked of process `id` alone, no rows if the lake holds no such process. A server reuses
 * its look at the whole lake for a second (`freshnessMs`) unless its own ingestion wrote since: a
 * process recorded through another server on the same lake is not in it yet, and was said not to
 * exist. A look at one process is taken afresh when it is not known yet.
 */
async function askOf(
  source: Source,
  id: string,
  sql: string,
): Promise<{ rows: readonly (readonly unknown[])[] }> {
  try {
    return await source.analytics.query(sql, { process: id });
  } catch (error) {
    if (error instanceof LakeNotFoundError) return { rows: [] };
    throw error;
  }
}

/** Runs a command's work against its source, and closes it whatever happens. */
export async function withSource<T>(
  options: SourceOptions,
  work: (source: Source) => Promise<T>,
): Promise<T> {
  const source = await openSource(options);
  try {
    return await work(source);
  } finally {
    await source.close();
  }
}

/** `--query-memory`: a size DuckDB reads ('2GB', '512MiB'). */
export function memorySize(value: string): string {
  try {
    return checkMemoryLimit(value);
  } catch {
    throw new InvalidArgumentError("expected a size from 64MiB to 1024TiB, such as '2GB' or '512MiB'");
  }
}

/** Why a query is asked again, by the server's code (see `RemoteAnalyticsOptions.retryForMs`). */
function retryReason(code: string): string {
  return code === 'DORSAL_QUERY_NOT_READY'
    ? 'the server is still reading the lake for the query (decoding blocks no query read before)'
    : 'the server is busy (as many queries, or as much reading of the lake, as it takes at once)';
}

/**
 * Codes of a connection that was never made (a refusal, a name that does not resolve, a network
 * or host out of reach, a connect that timed out): the server cannot be reached.
 */
const UNREACHED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * A TypeError of asking `origin` as a `CliError` that says what went wrong. fetch fails with
 * `TypeError('fetch failed')` whose `cause` is the network's error (undici's: an `Error` with a
 * system code, `ECONNREFUSED`, or its own, `UND_ERR_SOCKET`): "cannot reach" only when the
 * connection was never made. Any other TypeError came of reading the answer, or of what was to be
 * sent: not the server's absence.
 */
export function remoteFailure(origin: string, error: TypeError): CliError {
  const cause: unknown = error.cause;
  if (error.message === 'fetch failed' && cause instanceof Error) {
    // A connection to a host of several addresses fails with an AggregateError of each try's.
    const tries: NodeJS.ErrnoException[] = cause instanceof AggregateError ? cause.errors : [];
    const codes = [(cause as NodeJS.ErrnoException).code, ...tries.map((e) => e.code)];
    const why = cause.message || tries[0]?.message || codes.find((c) => c !== undefined) || 'no reason given';
    // fetch itself connects to no port of the Fetch standard's "bad ports" (port 1, 25, …).
    if (cause.message === 'bad port' || codes.some((c) => c !== undefined && UNREACHED.has(c))) {
      return new CliError(`cannot reach ${origin}: is \`dorsal serve\` running there? (${why})`);
    }
    return new CliError(`the request to ${origin} failed before its answer (${why})`);
  }
  return new CliError(
    `the answer of ${origin} could not be read (${error.message}): is it a \`dorsal serve\` of this dorsal's version?`,
  );
}
