import { accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { makeDirectoriesSync } from '../directories.js';
import { checkAnalyticsCacheDir } from '../telemetry/analytics/cache-dir.js';
import { LazyAnalytics } from '../telemetry/analytics/lazy.js';
import {
  DEFAULT_MAX_CONCURRENT_QUERIES,
  DEFAULT_MAX_WAITING_QUERIES,
  QuerySlots,
} from '../telemetry/analytics/query-slots.js';
import { analyticsQueryRoute } from '../telemetry/analytics/route.js';
import {
  DEFAULT_LARGE_BODY_BUDGET_BYTES,
  DEFAULT_STALL_TIMEOUT_MS,
  type ExtraRoute,
} from '../telemetry/ingestion/http.js';
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  type IngestionServer,
  startIngestionServer,
} from '../telemetry/ingestion/server.js';
import { DEFAULT_ANSWER_TIMEOUT_MS, DEFAULT_WRITE_TIMEOUT_MS } from '../telemetry/ingestion/write-chunks.js';
import { isLakeDown } from '../telemetry/lake/down.js';
import { Lake } from '../telemetry/lake/lake.js';
import { localLakeDirectories } from '../telemetry/lake/open.js';
import type { RetentionReport } from '../telemetry/lake/retention.js';
import { viewRoutes } from '../telemetry/views/routes.js';
import { DEFAULT_MAX_BLOCK_BYTES, DEFAULT_MAX_COMPRESSION_RATIO } from '../telemetry/wire/index.js';
import { analyticsCacheDir } from './analytics-cache-dir.js';
import { oncePerReason } from './once-per-reason.js';
import { atLeast, integer, type LakeOptions, lakeLocation, withLakeOptions } from './options.js';
import { describeRetention } from './retention.js';
import { CliError, memorySize } from './source.js';

interface ServeOptions extends LakeOptions {
  readonly host: string;
  readonly port: number;
  readonly insecure: boolean;
  readonly bodyLimit: number;
  readonly maxBlockBytes: number;
  readonly maxRatio: number;
  readonly stallTimeout: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly largeBodyBudget: number;
  readonly writeTimeout: number;
  readonly answerTimeout: number;
  readonly retentionDays?: number;
  readonly role: 'ingestion' | 'analytics' | 'all';
  readonly analyticsCache?: string;
  readonly queryRows: number;
  readonly queryBytes: number;
  readonly queryTimeout: number;
  readonly queryMemory?: string;
  readonly queryConcurrency: number;
  readonly queryQueue: number;
  readonly queryQueueWait?: number;
  readonly pageTimeout?: number;
}

/** `dorsal serve`: the ingestion service and the analytics' queries over HTTP until SIGINT or SIGTERM. */
export function serveCommand(): Command {
  return withLakeOptions(
    new Command('serve')
      .description('run the ingestion service and the analytics (HTTP) in front of a lake')
      .option('--host <host>', 'interface to listen on', '127.0.0.1')
      .option('--port <port>', 'port to listen on (0: any free port)', integer(0, 65_535), 8081),
  )
    .option('--insecure', 'listen beyond loopback although the lake has no API key', false)
    .option('--body-limit <bytes>', 'largest request body', integer(1, 2 ** 31), 100 * 1024 * 1024)
    .option(
      '--max-block-bytes <bytes>',
      "largest decompressed size of a block's payload",
      integer(1, 2 ** 32),
      DEFAULT_MAX_BLOCK_BYTES,
    )
    .option(
      '--max-ratio <n>',
      'largest decompressed / compressed size of a payload part over 1 MiB',
      integer(1, 1024),
      DEFAULT_MAX_COMPRESSION_RATIO,
    )
    .option(
      '--stall-timeout <ms>',
      'headers must arrive, and a body bring 16 KiB, within this many ms; else 408',
      integer(10, 3_600_000),
      DEFAULT_STALL_TIMEOUT_MS,
    )
    .option(
      '--max-connections <n>',
      'connections open at once',
      integer(1, 1_000_000),
      DEFAULT_MAX_CONNECTIONS,
    )
    .option(
      '--max-connections-per-address <n>',
      'connections open at once from one client address (behind a proxy: --max-connections)',
      integer(1, 1_000_000),
      DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    )
    .option(
      '--large-body-budget <bytes>',
      'bytes of bodies over 1 MiB held at once (more get 503)',
      integer(1, 2 ** 40),
      DEFAULT_LARGE_BODY_BUDGET_BYTES,
    )
    .option(
      '--write-timeout <ms>',
      'a client that takes none of an answer written in chunks (a query, /live) for this many ms is disconnected',
      integer(10, 3_600_000),
      DEFAULT_WRITE_TIMEOUT_MS,
    )
    .option(
      '--answer-timeout <ms>',
      'a query answer not all taken by its client within this many ms is cut (its query slot freed)',
      integer(10, 3_600_000),
      DEFAULT_ANSWER_TIMEOUT_MS,
    )
    .option(
      '--retention-days <n>',
      'delete what was inserted more than N days ago, at start and hourly',
      atLeast(0),
    )
    .addOption(
      new Option(
        '--role <role>',
        'what to serve: ingestion (POST /ingestion/*), analytics (POST /analytics/query, the views at GET /) or all',
      )
        .choices(['ingestion', 'analytics', 'all'])
        .default('all'),
    )
    .option(
      '--analytics-cache <dir>',
      "local directory for the analytics' partitions (default: <data>/analytics, or one per lake under the temporary directory with --db or --blobs)",
    )
    .option('--query-rows <n>', 'rows a query returns at most', integer(1, 10_000_000), 10_000)
    .option(
      '--query-bytes <n>',
      "the size of a query answer's rows at most, as JSON (bytes)",
      // At most 256 MiB: a client reads an answer as one JavaScript string, which holds 512 Mi
      // characters at most (and the server holds the rows of each answer it is sending).
      integer(1024, 256 * 1024 * 1024),
      64 * 1024 * 1024,
    )
    .option('--query-timeout <ms>', 'how long a query may run', integer(1, 3_600_000), 30_000)
    .option(
      '--query-concurrency <n>',
      'queries run or answered at once (each holds its rows until its client took them); more wait',
      integer(1, 1024),
      DEFAULT_MAX_CONCURRENT_QUERIES,
    )
    .option(
      '--query-queue <n>',
      'queries waiting for their turn at most; more get 503 and Retry-After',
      integer(0, 100_000),
      DEFAULT_MAX_WAITING_QUERIES,
    )
    .option(
      '--query-queue-wait <ms>',
      'how long a query waits for its turn at most, then 503 and Retry-After (default: --query-timeout)',
      integer(1, 3_600_000),
    )
    .option(
      '--page-timeout <ms>',
      'how long a page of the views (or a live sample) may take, reading the lake for it included, then 503 and Retry-After (default: 4 × --query-timeout)',
      integer(1, 4 * 3_600_000),
    )
    .option(
      '--query-memory <size>',
      "the analytics' memory at most, e.g. 2GB (default DuckDB's: 80% of RAM); past it, queries spill to the cache dir",
      memorySize,
    )
    .action(async (options: ServeOptions) => {
      const location = lakeLocation(options);
      const lake = Lake.open(location);
      const analytics = options.role !== 'ingestion';
      const cacheDir = analyticsCacheDir(options);
      try {
        if (analytics) checkAnalyticsCacheDir(lake, cacheDir);
        await checkLake(lake, options);
        // After the lake: the default cache is in --data, and a --data that is a file is said as such.
        if (analytics) makeAnalyticsCacheDir(cacheDir, options);
      } catch (error) {
        await lake.close();
        throw error;
      }
      // The same failure at every sweep (a minute apart, say): told once per reason.
      const tellSweepFailure = oncePerReason((reason) =>
        console.error(
          `dorsal analytics: sweeping the cache of deleted processes failed (their copies stay; tried again at later looks; told once): ${reason}`,
        ),
      );
      const shared = new LazyAnalytics({
        lake,
        cacheDir,
        maxRows: options.queryRows,
        maxBytes: options.queryBytes,
        timeoutMs: options.queryTimeout,
        ...(options.queryMemory === undefined ? {} : { memoryLimit: options.queryMemory }),
        // Answers lose nothing by it (they read the small partitions), but an operator should know.
        onMergeFailed: (failure) =>
          console.error(
            `dorsal analytics: merging ${failure.partitionIds.length} partitions of stream '${failure.stream}' of process ${failure.processId} failed (queries read them unmerged; tried again in 10 s): ${failure.error}`,
          ),
        onSweepFailed: (error) => tellSweepFailure(error.message),
      });
      const routes = analytics ? analyticsRoutes(options, lake, cacheDir, shared) : [];
      let server: IngestionServer;
      try {
        server = await startIngestionServer({
          host: options.host,
          port: options.port,
          lake,
          routes,
          ingest: options.role !== 'analytics',
          insecure: options.insecure,
          bodyLimit: options.bodyLimit,
          maxBlockBytes: options.maxBlockBytes,
          maxCompressionRatio: options.maxRatio,
          stallTimeoutMs: options.stallTimeout,
          maxConnections: options.maxConnections,
          maxConnectionsPerAddress: options.maxConnectionsPerAddress,
          largeBodyBudgetBytes: options.largeBodyBudget,
          writeTimeoutMs: options.writeTimeout,
          answerTimeoutMs: options.answerTimeout,
          ...(options.retentionDays === undefined
            ? {}
            : {
                retentionDays: options.retentionDays,
                onRetention: (report: RetentionReport) =>
                  console.error(`dorsal ${describeRetention(report)}`),
              }),
          onInternalError: (error) => console.error('dorsal ingestion: internal error:', error),
          // Its own directories, the longest first (the cache may lie in the lake's directory).
          hiddenPaths: [resolve(cacheDir), ...localLakeDirectories(location)].sort(
            (a, b) => b.length - a.length,
          ),
          onLakeUnavailable: (error) =>
            console.error(
              `dorsal: the lake is unavailable: ${error instanceof Error ? error.message : String(error)}`,
            ),
        });
      } catch (error) {
        await lake.close();
        throw error;
      }
      if (options.insecure) {
        console.error(
          'dorsal: --insecure: anyone who reaches this server may write to the lake unless it has keys',
        );
      }
      const serving = { ingestion: 'ingestion', analytics: 'analytics', all: 'ingestion and analytics' }[
        options.role
      ];
      const stop = (): void => {
        server
          .close()
          .then(() => lake.close())
          .then(
            () => process.exit(0),
            () => process.exit(1),
          );
      };
      // Before the line a supervisor waits for: a SIGTERM right after it killed the process
      // outright (the first signal listener takes a while to install), its lake not closed.
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      console.log(`dorsal ${serving} listening on ${server.url}`);
    });
}

/** An error's message on one line, to go in another's. */
const oneLine = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ');

/** A check of the lake that failed, and the option that chose what it checked. */
interface Failure {
  readonly option: string;
  readonly error: unknown;
}

/** `check`'s failure, if it fails. */
async function failureOf(option: string, check: () => Promise<unknown>): Promise<Failure[]> {
  try {
    await check();
    return [];
  } catch (error) {
    return [{ option, error }];
  }
}

/**
 * Opens the lake's metadata database (made or migrated: `serve` may start a new lake) and reads
 * its keys, as every request does, and checks its blob store, before the server listens: a lake
 * it cannot use (a file that is no database, a --data that is a file) stops it here, in one line,
 * rather than every client getting 503 for as long as it runs. A lake that is down (a database not
 * up yet) is served all the same, as the ingestion service is made to be: 503 until it is back.
 */
async function checkLake(lake: Lake, options: ServeOptions): Promise<void> {
  const failures = (
    await Promise.all([
      failureOf(options.db === undefined ? '--data' : '--db', async () => {
        await lake.metadata.ready();
        await lake.metadata.countApiKeys();
      }),
      failureOf(options.blobs === undefined ? '--data' : '--blobs', () => lake.blobs.ping()),
    ])
  ).flat();
  const unusable = failures.find(({ error }) => !isLakeDown(error));
  if (unusable !== undefined) {
    throw new CliError(`${unusable.option} names a lake this server cannot use: ${oneLine(unusable.error)}`);
  }
  for (const { error } of failures) {
    console.error(
      `dorsal: the lake is unavailable (served all the same: 503 until it is back): ${oneLine(error)}`,
    );
  }
}

/**
 * Makes the analytics' cache directory, and checks that it is writable, before the server listens:
 * the analytics open at the first query, and analytics that cannot would fail every query with an
 * internal error while the server says it is ready.
 */
function makeAnalyticsCacheDir(cacheDir: string, options: ServeOptions): void {
  try {
    makeDirectoriesSync(cacheDir);
    accessSync(cacheDir, constants.W_OK);
  } catch (error) {
    const named =
      options.analyticsCache === undefined
        ? `the analytics cache directory ${cacheDir} (give another with --analytics-cache)`
        : `--analytics-cache ${cacheDir}`;
    throw new CliError(`${named} cannot hold the analytics' partitions: ${oneLine(error)}`);
  }
}

/** The query route and the views, over the shared analytics: they take turns in the same slots. */
function analyticsRoutes(
  options: ServeOptions,
  lake: Lake,
  cacheDir: string,
  shared: LazyAnalytics,
): ExtraRoute[] {
  const slots = new QuerySlots(
    options.queryConcurrency,
    options.queryQueue,
    options.queryQueueWait ?? options.queryTimeout,
  );
  return [
    analyticsQueryRoute({
      lake,
      cacheDir,
      maxRows: options.queryRows,
      maxBytes: options.queryBytes,
      timeoutMs: options.queryTimeout,
      shared,
      slots,
    }),
    ...viewRoutes({
      analytics: () => shared.get(),
      slots,
      timeoutMs: options.queryTimeout,
      ...(options.pageTimeout === undefined ? {} : { pageTimeoutMs: options.pageTimeout }),
    }),
  ];
}
