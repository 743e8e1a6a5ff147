/**
 * The CLI's questions against a server of an earlier dorsal, whose tables lack a column added
 * since. The server is a stand-in protocol peer (the analytics' HTTP answers, as an earlier
 * `dorsal serve` gives them): an earlier build cannot run here.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { losses } from '../../src/cli/trace-queries.js';
import { RemoteAnalytics } from '../../src/telemetry/analytics/remote.js';

const PROCESS = '7f1c7a52-3a8e-4f4e-9d0c-2b1f6f0d9e11';

describe('a server of an earlier dorsal', () => {
  const asked: string[] = [];
  // Its `losses` has no `unrecorded`: DuckDB's binder refuses a query that names it.
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      const { sql } = JSON.parse(body) as { sql: string };
      asked.push(sql);
      res.setHeader('content-type', 'application/json');
      if (sql.includes('unrecorded')) {
        res.writeHead(400).end(
          JSON.stringify({
            error: {
              code: 'DORSAL_QUERY_REFUSED',
              message: 'Binder Error: Referenced column "unrecorded" not found in FROM clause!',
            },
          }),
        );
        return;
      }
      const columns = ['stream', 'consumer', 'counted_by', 'lost', 'poisoned', 'dropped', 'x'];
      res.end(
        JSON.stringify({
          columns: columns.map((name) => ({ name, type: 'VARCHAR' })),
          rows: [['ticks', 'persister', 'persister', 5, 1, 0, 0]],
          truncated: false,
        }),
      );
    });
  });
  beforeAll(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  afterAll(() => {
    server.close();
  });

  it('answers losses without unrecorded, as none', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const rows = await losses(new RemoteAnalytics({ url, retryForMs: 0 }), PROCESS);
    expect(rows).toEqual([
      {
        stream: 'ticks',
        consumer: 'persister',
        countedBy: 'persister',
        lost: 5,
        poisoned: 1,
        dropped: 0,
        unrecorded: 0,
      },
    ]);
    expect(asked).toHaveLength(2);
  });
});
