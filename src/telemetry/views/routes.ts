import { QueryRefusedError } from '../analytics/guard.js';
import type { AnalyticsQuestions } from '../analytics/questions.js';
import type { ExtraRoute, RouteRequest } from '../ingestion/http.js';
import { LiveSamples } from './live.js';
import { type PickedProcess, processPicker } from './picker.js';
import { gatherReport } from './report-data.js';
import { htmlPage, renderReport } from './report-html.js';

/** Options of `viewRoutes`. */
export interface ViewRoutesOptions {
  /** The analytics the views ask (opened on first use, shared with the query route). */
  readonly analytics: () => Promise<AnalyticsQuestions>;
  /** Time between two live samples of a process, in ms (default 1000). */
  readonly liveIntervalMs?: number;
}

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
 * Every number is aggregated by the analytics' SQL; the page gets only what it draws.
 */
export function viewRoutes(options: ViewRoutesOptions): ExtraRoute[] {
  const samples = new LiveSamples(options.analytics, {
    ...(options.liveIntervalMs === undefined ? {} : { intervalMs: options.liveIntervalMs }),
  });
  const href = (id: string) => `/?process=${encodeURIComponent(id)}`;
  const listed = async (): Promise<PickedProcess[]> => {
    const { rows } = await (await options.analytics()).query(
      `SELECT process_id, exe, start_time::VARCHAR, properties->>'dorsal.replay_of' FROM processes ORDER BY start_time DESC LIMIT ${PICKER_PROCESSES}`,
      { maxRows: PICKER_PROCESSES },
    );
    return rows.map((r) => ({
      processId: String(r[0]),
      exe: String(r[1]),
      startTime: String(r[2]),
      replayOf: r[3] === null || r[3] === undefined ? null : String(r[3]),
    }));
  };
  /** The process a request names, or the newest (undefined: the lake holds none). */
  const chosen = async (request: RouteRequest, processes?: readonly PickedProcess[]) => {
    const wanted = request.query.get('process');
    if (wanted !== null && wanted !== '') return wanted;
    return (processes ?? (await listed()))[0]?.processId;
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
    get('/', async (_body, request) => {
      const processes = await listed();
      const processId = await chosen(request, processes);
      const picker = processPicker(processes, processId, href);
      if (processId === undefined) {
        return { status: 200, contentType: HTML, body: htmlPage('dorsal', `<h1>dorsal</h1>${picker}`) };
      }
      const data = await gatherReport(await options.analytics(), processId);
      const body = renderReport(data, {
        processHref: href,
        before: picker,
        live: `/live?process=${encodeURIComponent(processId)}`,
      });
      return { status: 200, contentType: HTML, body };
    }),
    get('/views/data', async (_body, request) => {
      const processId = await chosen(request);
      if (processId === undefined) throw new QueryRefusedError('this lake holds no recorded process');
      const data = await gatherReport(await options.analytics(), processId);
      return { status: 200, contentType: 'application/json', body: JSON.stringify(data) };
    }),
    get('/live', async (_body, request) => {
      const processId = await chosen(request);
      if (processId === undefined) throw new QueryRefusedError('this lake holds no recorded process');
      return {
        status: 200,
        contentType: 'text/event-stream; charset=utf-8',
        stream: samples.events(processId, request.signal),
      };
    }),
  ];
}
