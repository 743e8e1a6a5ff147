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
