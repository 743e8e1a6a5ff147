import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, Option } from 'commander';
import { actorModuleUrl, isSystemDefinition, type SystemDefinition } from '../actors/define-system.js';
import { System } from '../actors/system.js';
import type { SystemReport } from '../actors/system-options.js';
import { isTypeScriptModule } from '../module-worker.js';
import type { SpineDefinition } from '../spine/index.js';
import { bold, COLOUR, count, dim, printable, printJson, table } from './format.js';
import { atLeast, integer } from './options.js';
import { CliError, openSource, resolveProcess, type SourceOptions, withSourceOptions } from './source.js';
import { statsTable } from './stats.js';
import { listenForStop } from './stop-signals.js';
import { drawMessageTree } from './tree.js';

/** Where a run is recorded, and for how long it runs. */
export interface RunCommandOptions extends Omit<SourceOptions, 'process'> {
  readonly seconds: number;
}

/**
 * Loads a system module (`export default defineSystem(…)`). A TypeScript module needs tsx, which
 * is registered for it when it is installed.
 */
export async function loadSystemModule(
  specifier: string | URL,
): Promise<{ url: URL; definition: SystemDefinition }> {
  let url: URL;
  if (specifier instanceof URL) url = specifier;
  else {
    const path = isAbsolute(specifier) ? specifier : resolve(specifier);
    if (!existsSync(path)) throw new CliError(`no system module at ${specifier}`);
    url = pathToFileURL(path);
  }
  if (isTypeScriptModule(url)) {
    try {
      const { register } = (await import('tsx/esm/api')) as { register: () => void };
      register();
    } catch {
      throw new CliError(
        `${specifier} is TypeScript: install tsx (npm i -D tsx) or build it to JavaScript first`,
      );
    }
  }
  let module: { default?: unknown };
  try {
    module = (await import(url.href)) as { default?: unknown };
  } catch (error) {
    throw new CliError(
      `cannot load ${specifier}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
    );
  }
  if (!isSystemDefinition(module.default)) {
    throw new CliError(`${specifier} must export default defineSystem({ spine, actors }) (from 'dorsal')`);
  }
  return { url, definition: module.default };
}

/** What a run needs besides its definition. */
export interface RunSystemOptions {
  readonly seconds: number;
  readonly persist: ({ readonly data: string } | { readonly url: string; readonly key?: string }) & {
    readonly flushTimeoutMs?: number;
  };
  /** More properties of the recorded process. */
  readonly properties?: Readonly<Record<string, string>>;
  /** Actors to leave out (a replay leaves out the ingress ones) and actors to add (its player, an ingress one). */
  readonly include?: (actor: SystemDefinition['actors'][number]) => boolean;
  readonly extra?: readonly { readonly module: URL; readonly args?: unknown; readonly ingress?: boolean }[];
  /** A line a second while it runs (on a terminal). */
  readonly progress?: boolean;
  /** Ends the run early (e.g. once a replay has played everything); checked every 100 ms. */
  readonly done?: (system: System<SpineDefinition>) => boolean;
  /**
   * Ends the run, as Ctrl-C does: for a caller that listens for the stop signals itself (from
   * before the run, to know why it ended; see `listenForStop`). Without it, the run listens for
   * them from before its start to the end of its stop.
   */
  readonly signal?: AbortSignal;
}

/**
 * Runs a system definition with the persister on, for `seconds` or until Ctrl-C, and stops it
 * gracefully. The recorded process says which of its actors are ingress (`dorsal.ingress`: their
 * ids, as in `dorsal.actors`), what a replay plays back.
 */
export async function runSystem(
  definition: SystemDefinition,
  options: RunSystemOptions,
): Promise<SystemReport> {
  const included = definition.actors.filter((actor) => options.include?.(actor) ?? true);
  const extra = options.extra ?? [];
  // Actor ids are given in spawn order: the included actors, then the extra ones.
  const ingress = [...included, ...extra].flatMap((actor, id) => (actor.ingress === true ? [id] : []));
  const system = new System(definition.spine, {
    ...definition.options,
    persist: {
      ...options.persist,
      properties: { 'dorsal.ingress': JSON.stringify(ingress), ...options.properties },
    },
  });
  for (const actor of included) {
    system.spawn(actorModuleUrl(actor), {
      ...(actor.args === undefined ? {} : { args: actor.args }),
      ...(actor.thread === undefined ? {} : { thread: actor.thread }),
      ...(actor.wait === undefined ? {} : { wait: actor.wait }),
      ...(actor.restarts === undefined ? {} : { restarts: actor.restarts }),
    });
  }
  for (const actor of extra) {
    system.spawn(actor.module, actor.args === undefined ? {} : { args: actor.args });
  }
  // Listened for from before the start to the stop's end: a Ctrl-C (or a SIGTERM, a SIGHUP) while
  // the actors start ends the run once they have, and one while it stops lets the stop flush (a
  // listener only from the start on, or only until the stop, would leave it to Node's default,
  // which kills the process with nothing flushed).
  let interrupted = false;
  // One while the actors start stops them too: an onInit that does not return would otherwise
  // hold the run until the start's own timeout.
  let starting = true;
  const stopStart = () => {
    if (starting) system.stop().catch(() => {});
  };
  const release =
    options.signal === undefined
      ? listenForStop(() => {
          interrupted = true;
          stopStart();
        })
      : () => {};
  options.signal?.addEventListener('abort', stopStart, { once: true });
  try {
    const started = system.start();
    // Aborted before it listened (a replay interrupted while it prepared): no event comes.
    if (options.signal?.aborted === true) stopStart();
    await started;
  } catch (error) {
    release();
    throw error;
  } finally {
    starting = false;
    options.signal?.removeEventListener('abort', stopStart);
  }
  const started = performance.now();
  const queues = system.spine.names.map((_, i) => system.spine.queue(i));
  let lastPublished = 0;
  let lastAt = started;
  try {
    while (
      !interrupted &&
      options.signal?.aborted !== true &&
      system.failure === undefined &&
      performance.now() - started < options.seconds * 1000 &&
      !(options.done?.(system) ?? false)
    ) {
      await new Promise((r) => setTimeout(r, 100));
      const now = performance.now();
      if (options.progress === true && now - lastAt >= 1000) {
        const stats = queues.map((q) => q.stats());
        const published = stats.reduce((n, s) => n + s.published, 0);
        const lag = Math.max(0, ...stats.flatMap((s) => s.consumers.map((c) => c.lag)));
        const lost = stats.reduce((n, s) => n + s.consumers.reduce((m, c) => m + c.lost, 0), 0);
        const rate = ((published - lastPublished) * 1000) / (now - lastAt);
        process.stderr.write(
          `\r${dim('running')} ${count(rate)} msg/s · lag ${count(lag)} · lost ${count(lost)} · ${((now - started) / 1000).toFixed(0)}/${options.seconds} s   `,
        );
        lastPublished = published;
        lastAt = now;
      }
    }
  } finally {
    if (options.progress === true && COLOUR) process.stderr.write('\r\x1b[K');
    else if (options.progress === true) process.stderr.write('\n');
  }
  try {
    return await system.stop();
  } finally {
    release();
  }
}

/** The totals the last line of a run says: persisted per kind, and lost. */
export function persistTotals(report: SystemReport): {
  messages: number;
  timings: number;
  events: number;
  lost: number;
} {
  const sources = report.persist?.sources ?? [];
  const persisted = (kinds: readonly string[]) =>
    sources.filter((s) => kinds.includes(s.kind)).reduce((n, s) => n + s.persisted, 0);
  return {
    messages: persisted(['messages']),
    timings: persisted(['timings']),
    events: persisted(['log', 'metrics', 'spans']),
    lost: sources.reduce((n, s) => n + s.lost, 0),
  };
}

/**
 * What a run says when it ends: per actor × stream what was handled, produced and lost; the
 * percentiles of the recorded process; its slowest tree; the totals recorded. JSON with `--json`.
 */
export async function summarize(report: SystemReport, options: SourceOptions): Promise<void> {
  const totals = persistTotals(report);
  const where = options.url ?? options.data;
  const processId = report.persist?.processId;
  const actors = report.actors.flatMap((a) =>
    a.streams
      .filter((s) => s.handled + s.produced + s.lost + s.failed + s.unread > 0)
      .map((s) => ({
        actor: a.name,
        stream: s.stream,
        handled: s.handled,
        produced: s.produced,
        lost: s.lost,
        failed: s.failed,
        unread: s.unread,
      })),
  );
  const recorded =
    `${count(totals.messages)} messages, ${count(totals.timings)} timing records, ${count(totals.events)} events recorded in ${where}; ${count(totals.lost)} lost` +
    `${
      report.persist?.failure !== undefined
        ? ` (the persister failed: ${report.persist.failure})`
        : report.persist?.flushed === false
          ? ` (the flush did not finish: some blocks may be missing${report.persist.deliveryError === undefined ? '' : `; ${printable(report.persist.deliveryError)}`})`
          : ''
    }${
      report.persist?.restarts === undefined
        ? ''
        : `; the persister's thread was started again ${report.persist.restarts.length === 1 ? 'once' : `${report.persist.restarts.length} times`} (the last time after: ${report.persist.restarts.at(-1)})`
    }`;
  // How the stop went, when not as it should: a run that did not drain, or threads terminated.
  const stopped = [
    ...(report.drained ? [] : ['the stop did not drain in time: some messages may not have been handled']),
    ...(report.terminated.length === 0
      ? []
      : [`terminated at the stop, not ended in time: ${report.terminated.join(', ')}`]),
  ];
  const actorTable = () =>
    table(
      ['actor', 'stream', 'handled', 'produced', 'lost', 'failed', 'unread'],
      actors.map((a) => [
        a.actor,
        a.stream,
        count(a.handled),
        count(a.produced),
        count(a.lost),
        count(a.failed),
        count(a.unread),
      ]),
    );
  let source: Awaited<ReturnType<typeof openSource>> | undefined;
  try {
    source = await openSource(options);
    const process = await resolveProcess(source, processId);
    const { rows, text } = await statsTable(source.analytics, process.processId, ['actor', 'stream']);
    const [slowest] = await source.analytics.slowestTrees({ process: process.processId, n: 1 });
    if (options.json) {
      printJson({
        process: process.processId,
        actors,
        percentiles: rows,
        slowest: slowest ?? null,
        ...totals,
        where,
        drained: report.drained,
        terminated: report.terminated,
        // The crash that stopped the run, as the command says it on stderr (it exits 1).
        ...(report.failure === undefined ? {} : { failure: crashLine(report.failure) }),
      });
    } else {
      console.log(bold('what each actor did'));
      console.log(actorTable());
      console.log(
        `\n${bold('latency since the origin, and handler time')} ${dim(`(process ${process.processId})`)}`,
      );
      // No timing, no table: its header's latency axis would span nothing (10 s … 32 ns).
      console.log(rows.length === 0 ? dim(`process ${process.processId} recorded no timing`) : text);
      if (slowest !== undefined)
        console.log(`\n${bold('the slowest message tree')}\n${drawMessageTree(slowest)}`);
      console.log(`\n${recorded}`);
      for (const line of stopped) console.log(line);
    }
  } catch (error) {
    // The recording cannot be read back (a server gone mid-run, say): what the run itself
    // counted is said all the same, then why the rest cannot be.
    if (!options.json)
      console.log(`${bold('what each actor did')}\n${actorTable()}\n\n${[recorded, ...stopped].join('\n')}`);
    // A crash stopped the run too: said before the error, which is not why the run ended.
    if (report.failure !== undefined) console.error(`dorsal: ${crashLine(report.failure)}`);
    throw error;
  } finally {
    await source?.close();
  }
  stoppedByCrash(report);
}

/** A run a crash stopped fails the command, once its summary is out: the crash, in one line. */
function stoppedByCrash(report: SystemReport): void {
  const { failure } = report;
  if (failure === undefined) return;
  throw new CliError(crashLine(failure));
}

/** The crash that stopped a run, in one line. */
function crashLine(failure: Error): string {
  return `${failure.message.split('\n')[0]} — the system stopped there`;
}

/** The persister target of a recording command's options, and its stop's wait for the last blocks. */
export function persistTarget(options: SourceOptions): RunSystemOptions['persist'] {
  const flush = options.flushTimeout === undefined ? {} : { flushTimeoutMs: options.flushTimeout };
  return options.url
    ? { url: options.url, ...(options.key ? { key: options.key } : {}), ...flush }
    : { data: options.data, ...flush };
}

/** `dorsal run MODULE`: runs a system module with the persister on, then says what it saw. */
export function runCommand(): Command {
  return withSourceOptions(
    new Command('run')
      .description('run a system module (export default defineSystem(…)) with every message recorded')
      .argument('<module>', 'the system module, e.g. examples/market/system.js')
      .option('--seconds <n>', 'how long to run (Ctrl-C stops it sooner)', atLeast(0), 10)
      .addHelpText('after', '\nExample:\n  $ dorsal run dist/examples/market/system.js --seconds 5'),
    false,
    true,
  ).action(async (module: string, options: RunCommandOptions) => {
    const { url, definition } = await loadSystemModule(module);
    const report = await runSystem(definition, {
      seconds: options.seconds,
      persist: persistTarget(options),
      properties: { 'dorsal.system': url.href },
      progress: process.stderr.isTTY === true,
    });
    await summarize(report, options);
  });
}

/** The demo's system module: the market pipeline of `examples/market`. */
export const DEMO_SYSTEM = new URL(
  `../../examples/market/system${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
  import.meta.url,
);

interface DemoOptions extends RunCommandOptions {
  readonly rate: number;
}

/** `dorsal demo`: the market pipeline, recorded, then its summary (what `npm start` runs). */
export function demoCommand(): Command {
  return withSourceOptions(
    new Command('demo')
      .description(
        'run the market pipeline (feed → book-builder → strategy → gateway), recorded, then summarize it',
      )
      .option('--seconds <n>', 'how long to run', atLeast(0), 3)
      .addOption(
        new Option('--rate <ticks/s>', 'ticks the feed publishes per second')
          .argParser(integer(1, 10_000_000))
          .default(20_000),
      )
      .addHelpText('after', '\nExample:\n  $ dorsal demo --seconds 5 --rate 50000'),
    false,
    true,
  ).action(async (options: DemoOptions) => {
    const { url, definition } = await loadSystemModule(DEMO_SYSTEM);
    const demo: SystemDefinition = {
      ...definition,
      actors: definition.actors.map((a) =>
        a.ingress ? { ...a, args: { ...(a.args as object), ratePerSecond: options.rate } } : a,
      ),
    };
    if (!options.json) {
      console.log(
        dim(
          `dorsal: the market pipeline for ${options.seconds} s at ${count(options.rate)} ticks/s (feed → book-builder → strategy → gateway)\n`,
        ),
      );
    }
    const report = await runSystem(demo, {
      seconds: options.seconds,
      persist: persistTarget(options),
      properties: { 'dorsal.system': url.href },
      progress: process.stderr.isTTY === true,
    });
    await summarize(report, options);
  });
}
