import { ConfigError } from '../../errors.js';
import { isTimerMs, MAX_TIMER_MS, TIMER_MS_RANGE } from '../../timer-ms.js';
import { untilAborted, withinDeadline } from '../analytics/deadline.js';
import { QueryRefusedError } from '../analytics/guard.js';
import {
  answerInSlot,
  DEFAULT_MAX_CONCURRENT_QUERIES,
  DEFAULT_MAX_QUEUE_WAIT_MS,
  DEFAULT_MAX_WAITING_QUERIES,
  inSlot,
  QuerySlots,
} from '../analytics/query-slots.js';
import type { AnalyticsQuestions } from '../analytics/questions.js';
import { quoteLiteral } from '../analytics/sql.js';
import { LakeNotFoundError } from '../errors.js';
import type { ExtraRoute, RouteAnswer, RouteRequest } from '../ingestion/http.js';
import { esc } from './format.js';
import { LiveSamples } from './live.js';
import { type PickedProcess, processPicker } from './picker.js';
import { gatherReport, type ReportLimits } from './report-data.js';
import { htmlPage, renderReport } from './report-html.js';

/** Options of `viewRoutes`. */
export interface ViewRoutesOptions {
  /** The analytics the views ask (opened on first use, shared with the query route). */
  readonly analytics: () => Promise<AnalyticsQuestions>;
  /** Time between two live samples of a process, in ms (default 1000). */
  readonly liveIntervalMs?: number;
  /**
   * The query slots a page and a live sample take one of while they are asked, shared with the
   * query route (`AnalyticsRouteOptions.slots`), so that pages count among the queries a server
   * runs at once; default: the views' own, of the query route's defaults.
   */
  readonly slots?: QuerySlots;
  /** How long the SQL of each query of a page or a live sample may run, in ms (default 30 000, the query route's). */
  readonly timeoutMs?: number;
  /**
   * How long a page, or a live sample, may take from when its slot was taken, in ms, looking at
   * the lake and decoding blocks included (default 4 × `timeoutMs`): past it, it is answered 503
   * with `Retry-After` (`DORSAL_QUERY_NOT_READY`) while the reading goes on for the next request.
   */
  readonly pageTimeoutMs?: number;
}

/** A page's limits: its queries' time limit, and the signal that stops them (see `withinDeadline`). */
type Limits = ReportLimits & { readonly signal: AbortSignal };

/** Processes the picker lists at most. */
const PICKER_PROCESSES = 500;

const HTML = 'text/html; charset=utf-8';

/**
 * The views of `dorsal serve`, for people, behind the same Host and key checks as every route
 * (a browser is asked for the key as a Basic password):
 *
 * - `GET /[?process=ID]`: the process picker and the report of one process (default the newest),
 *   the same views as `dorsal report`'s file, with a live section fed by `/live`;
 * - `GET /views/data?process=ID`: what that page draws, as JSON (`ReportData`);
 * - `GET /live?process=ID`: server-sent events, one `sample` a second (`LiveSample`): the last
 *   whole second's rates per stream and latency percentiles per actor × stream.
 *
 * Every number is aggregated by the analytics' SQL; the page gets only what it draws. A page, and
 * each live sample, takes one of the server's query slots while it is asked; each of its queries'
 * SQL is bounded by `timeoutMs`, all of it by `pageTimeoutMs`, and it stops when its client goes
 * away: a busy server answers 503 (`DORSAL_BUSY`), a page past its limit 503 too
 * (`DORSAL_QUERY_NOT_READY`), both with `Retry-After`.
 */
export function viewRoutes(options: ViewRoutesOptions): ExtraRoute[] {
  const slots =
    options.slots ??
    new QuerySlots(DEFAULT_MAX_CONCURRENT_QUERIES, DEFAULT_MAX_WAITING_QUERIES, DEFAULT_MAX_QUEUE_WAIT_MS);
  const timeoutMs = checkedMs('timeoutMs', options.timeoutMs ?? 30_000);
  const pageTimeoutMs = checkedMs(
    'pageTimeoutMs',
    options.pageTimeoutMs ?? Math.min(4 * timeoutMs, MAX_TIMER_MS),
  );
  const samples = new LiveSamples(options.analytics, {
    ...(options.liveIntervalMs === undefined ? {} : { intervalMs: options.liveIntervalMs }),
    slots,
    timeoutMs,
    sampleTimeoutMs: pageTimeoutMs,
  });
  /**
   * A page: it takes a query slot for all its queries, held until it is sent; they are stopped
   * when its client goes away, or at its time limit.
   */
  const page = (request: RouteRequest, work: (limits: Limits) => Promise<RouteAnswer>) =>
    answerInSlot(slots, request.signal, () =>
      withinDeadline(pageTimeoutMs, request.signal, (signal) => work({ timeoutMs, signal })),
    );
  /** The shared analytics, within a page's limits: their opening on first use included. */
  const analytics = (limits: Limits) => untilAborted(options.analytics(), limits.signal);
  const href = (id: string) => `/?process=${encodeURIComponent(id)}`;
  const listed = async (limits: Limits): Promise<PickedProcess[]> => {
    const { rows } = await (await analytics(limits)).query(
      `SELECT process_id, exe, start_time::VARCHAR, properties->>'dorsal.replay_of' FROM processes ORDER BY start_time DESC LIMIT ${PICKER_PROCESSES}`,
      { maxRows: PICKER_PROCESSES, ...limits },
    );
    return rows.map((r) => ({
      processId: String(r[0]),
      exe: String(r[1]),
      startTime: String(r[2]),
      replayOf: r[3] === null || r[3] === undefined ? null : String(r[3]),
    }));
  };
  /** The processes whose id starts with `start` (two at most: one, or more than one). */
  const starting = async (start: string, limits: Limits): Promise<string[]> => {
    const { rows } = await (await analytics(limits)).query(
      `SELECT process_id FROM processes WHERE starts_with(process_id, ${quoteLiteral(start.toLowerCase())}) ORDER BY process_id LIMIT 2`,
      { maxRows: 2, ...limits },
    );
    return rows.map((r) => String(r[0]));
  };
  /** The process a request names, or the newest `list` gives (undefined: the lake holds none). */
  const chosen = async (request: RouteRequest, list: () => Promise<readonly PickedProcess[]>) => {
    const wanted = request.query.get('process');
    if (wanted === null || wanted === '') return (await list())[0]?.processId;
    return wanted;
  };
  const get = (path: string, handle: ExtraRoute['handle']): ExtraRoute => ({
    method: 'GET',
    path,
    mediaType: 'application/octet-stream',
    bodyLimit: 0,
    browser: true,
    handle,
  });
  return [
    // A person's page: refused for now (busy, or the lake still read for it), it says so and asks again.
    get('/', (_body, request) =>
      page(request, async (limits) => {
        const processes = await listed(limits);
        const wanted = await chosen(request, async () => processes);
        // The start of an id names the one process it starts, as the CLI takes it.
        const found = wanted === undefined || UUID.test(wanted) ? [] : await starting(wanted, limits);
        const processId =
          found.length === 1
            ? found[0]
            : wanted !== undefined && UUID.test(wanted)
              ? wanted.toLowerCase()
              : wanted;
        const picker = processPicker(processes, processId, href);
        if (processId === undefined) {
          return { status: 200, contentType: HTML, body: htmlPage('dorsal', `<h1>dorsal</h1>${picker}`) };
        }
        if (found.length > 1) {
          return {
            status: 404,
            contentType: HTML,
            body: htmlPage(
              'dorsal',
              `<h1>dorsal</h1><p>${esc(processId)} starts the ids of several processes: give more of its id.</p>${picker}`,
            ),
          };
        }
        const data = await gatherReport(await analytics(limits), processId, limits).catch(
          (error: unknown) => {
            if (error instanceof LakeNotFoundError) return undefined;
            throw error;
          },
        );
        // Not in the lake: the picker, saying so (a page, not the API's JSON).
        if (data === undefined) {
          return {
            status: 404,
            contentType: HTML,
            body: htmlPage(
              'dorsal',
              `<h1>dorsal</h1><p>No process ${esc(processId)} in this lake.</p>${picker}`,
            ),
          };
        }
        const body = renderReport(data, {
          processHref: href,
          before: picker,
          live: `/live?process=${encodeURIComponent(processId)}`,
        });
        return { status: 200, contentType: HTML, body };
      }).catch(refusedPage),
    ),
    get('/views/data', (_body, request) =>
      page(request, async (limits) => {
        const processId = await chosen(request, () => listed(limits));
        if (processId === undefined) throw new QueryRefusedError('this lake holds no recorded process');
        const data = await gatherReport(await analytics(limits), processId, limits);
        return { status: 200, contentType: 'application/json', body: JSON.stringify(data) };
      }),
    ),
    // The stream holds no slot: each sample takes one while it is asked (`LiveSamples`), and
    // those still being asked stop when the server does.
    {
      ...get('/live', async (_body, request) => {
        const processId = await chosen(request, () =>
          inSlot(slots, request.signal, () =>
            withinDeadline(pageTimeoutMs, request.signal, (signal) => listed({ timeoutMs, signal })),
          ),
        );
        if (processId === undefined) throw new QueryRefusedError('this lake holds no recorded process');
        // A process not in the lake is answered 404 (an EventSource then stops), not streamed a
        // problem a second for ever: asked of the process itself (the lake's list is looked at once
        // a second: a process just come would be missed), in the request's slot and time. A lake
        // that cannot say now (busy, opening) leaves it to the stream's samples.
        const unknown = await inSlot(slots, request.signal, () =>
          withinDeadline(pageTimeoutMs, request.signal, async (signal) => {
            const scope = { process: processId, maxRows: 1, timeoutMs, signal };
            await (await analytics({ timeoutMs, signal })).query('SELECT 1 FROM processes', scope);
            return false;
          }),
        ).catch((error: unknown) => error instanceof LakeNotFoundError);
        if (unknown) throw new LakeNotFoundError(`no process ${processId} in the lake`);
        return {
          status: 200,
          contentType: 'text/event-stream; charset=utf-8',
          stream: samples.events(processId, request.signal),
        };
      }),
      close: async () => samples.close(),
    },
  ];
}

/** `ms`, or a `ConfigError` naming `name` when no timer can wait by it. */
function checkedMs(name: string, ms: number): number {
  if (!isTimerMs(ms)) throw new ConfigError(`view option '${name}' must be ${TIMER_MS_RANGE}, got ${ms}`);
  return ms;
}

/** A whole process id (any case). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Seconds after which a refused page asks again. */
const PAGE_RETRY_SECONDS = 5;

/**
 * A page refused for now (the server busy, or the lake still being read for it) as a page that
 * says so and reloads itself (`Refresh`), not as the API's JSON; any other error as it is.
 */
function refusedPage(error: unknown): RouteAnswer {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'DORSAL_BUSY' && code !== 'DORSAL_QUERY_NOT_READY') throw error;
  const message = error instanceof Error ? error.message : String(error);
  return {
    status: 503,
    contentType: HTML,
    headers: { 'retry-after': String(PAGE_RETRY_SECONDS), refresh: String(PAGE_RETRY_SECONDS) },
    body: htmlPage(
      'dorsal: not yet',
      `<h1>dorsal</h1><p>Not yet: ${esc(message)}</p><p>This page asks again in ${PAGE_RETRY_SECONDS} s.</p>`,
    ),
  };
}
