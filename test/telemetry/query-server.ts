import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { type AnalyticsRouteOptions, analyticsQueryRoute } from '../../src/telemetry/analytics/route.js';
import { type IngestionServerOptions, startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { Lake } from '../../src/telemetry/lake/lake.js';

/** An answer of about 40 MB of JSON: 4000 rows of a 10,000-character string. */
export const BIG = "SELECT repeat('x', 10000) AS x FROM range(4000)";

/**
 * A query route on a real server over a real SQLite lake in `dir` (DuckDB answers), with the
 * server's answers to `/analytics/query` kept to look at what each holds.
 */
export async function serveQueries(
  dir: string,
  routeOptions: Partial<AnalyticsRouteOptions>,
  serverOptions: IngestionServerOptions,
) {
  const lake = Lake.open({ data: dir });
  const route = analyticsQueryRoute({ lake, cacheDir: join(dir, 'analytics'), ...routeOptions });
  const server = await startIngestionServer({ port: 0, lake, routes: [route], ...serverOptions });
  const responses: ServerResponse[] = [];
  server.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/analytics/query') responses.push(res);
  });
  return {
    route,
    server,
    responses,
    close: async () => {
      await server.close();
      await lake.close();
    },
  };
}

/** Asks `/analytics/query` of the server at `url` with fetch: `sql`, and any other field of the request. */
export function query(url: string, sql: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${url}/analytics/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sql, ...extra }),
  });
}

/** The body of a chunked HTTP/1.1 answer. Sizes count bytes: the answers here are ASCII. */
export function dechunk(text: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n', at);
    const size = Number.parseInt(text.slice(at, end), 16);
    if (size === 0) return out;
    out += text.slice(end + 2, end + 2 + size);
    at = end + 2 + size + 2;
  }
}
