/**
 * The two placings of `dorsal replay --diff` against each other: the analytics' (recursive SQL,
 * both runs joined in DuckDB) and the one in memory (for trees too deep for it), on random trees
 * that a real run seldom makes: messages whose parent is not in the lake, ingress messages with a
 * parent, shared streams and null actors, streams one run lacks, gaps in sequences, ties in time,
 * times that go back or are no number, names with quotes, slashes and colons, a row limit of 3 (paging). Both read a real DuckDB
 * table shaped as the analytics' `messages` view, through the one call they make
 * (`query` with a process scope and a row limit): crafting such trees through a System is not
 * possible, and what is compared is the placing, not the lake.
 */
import { isDeepStrictEqual } from 'node:util';
import { type DuckDBConnection, DuckDBInstance, JsonDuckDBValueConverter } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareInLake } from '../../src/cli/replay-diff.js';
import { compareInMemory } from '../../src/cli/replay-memory.js';
import { diffText } from '../../src/cli/replay-text.js';
import { depthSql, MAX_LAKE_DEPTH, type PlacedRuns } from '../../src/cli/replay-tree.js';
import type { QueryFunction, QueryResult } from '../../src/telemetry/analytics/query.js';
import { AnalyticsQuestions } from '../../src/telemetry/analytics/questions.js';

interface Row {
  p: string;
  stream: string;
  seq: number;
  actor: string | null;
  ps: string | null;
  pseq: number | null;
  t: number;
  fields: string;
}

/** The analytics' `query` over a DuckDB table, with its scope and row limit. */
class TableAnalytics extends AnalyticsQuestions {
  constructor(
    private readonly connection: DuckDBConnection,
    private readonly rowLimit: number,
  ) {
    super();
  }

  readonly query: QueryFunction = async (sql, scope = {}): Promise<QueryResult> => {
    const processes = scope.processes ?? (scope.process === undefined ? [] : [scope.process]);
    await this.connection.run(
      `CREATE OR REPLACE TEMP VIEW messages AS SELECT * FROM all_messages WHERE process_id IN (${processes.map((p) => `'${p}'`).join(', ')})`,
    );
    const max = Math.min(scope.maxRows ?? this.rowLimit, this.rowLimit);
    const result = await this.connection.stream(sql);
    const rows: unknown[][] = [];
    let truncated = false;
    read: for await (const chunk of result) {
      for (let i = 0; i < chunk.rowCount; i++) {
        if (rows.length === max) {
          truncated = true;
          break read;
        }
        rows.push(chunk.convertRowValues(i, JsonDuckDBValueConverter) as unknown[]);
      }
    }
    return {
      columns: [],
      rows,
      truncated,
      decodedBlocks: 0,
      unreadable: { blocks: 0, records: 0 },
      unreadableBlocks: [],
    };
  };
}

let seed = 1;
const random = () => {
  seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

/** Two runs of random trees over a few streams, and what a replay would be told of them. */
function randomRuns(): { rows: Row[]; runs: PlacedRuns } {
  const pool = ['ticks', 'books', 'orders', 'acks', "we'ird:1/x", 'B', 'a'];
  const streams = [...new Set(Array.from({ length: 2 + Math.floor(random() * 4) }, () => pick(pool)))];
  const shared = new Set(streams.filter(() => random() < 0.3));
  const actors = ['feed', 'feed2', 'bidder', 'asker', 'gw', null];
  const ingressR = random() < 0.15 ? [] : ['feed', ...(random() < 0.3 ? ['feed2'] : [])];
  const ingressP = random() < 0.15 ? [] : random() < 0.8 ? ingressR : ['feed'];
  const rows: Row[] = [];
  for (const p of ['r', 'p']) {
    const seqs = new Map<string, number>();
    const mine: Row[] = [];
    let t = 0;
    for (let i = 5 + Math.floor(random() * 60); i > 0; i--) {
      const stream = pick(streams);
      const seq = seqs.get(stream) ?? 0;
      seqs.set(stream, seq + 1 + (random() < 0.05 ? 3 : 0));
      let ps: string | null = null;
      let pseq: number | null = null;
      if (mine.length > 0 && random() < 0.75) {
        const parent = pick(mine);
        ps = parent.stream;
        pseq = parent.seq;
      } else if (random() < 0.1) {
        ps = pick(pool);
        pseq = 999;
      }
      t += random() < 0.2 ? 0 : 1;
      // Now and then a time earlier than the one before (two producers of a stream stamp, then
      // claim), or no number at all (a damaged recording): ingress roots rank in play order.
      const odd = random();
      const stamped =
        odd < 0.1
          ? t - 1 - Math.floor(random() * 3)
          : odd < 0.14
            ? pick([Number.NaN, Infinity, -Infinity])
            : t;
      const fields = JSON.stringify({ v: Math.floor(random() * 2), w: 'x' });
      mine.push({ p, stream, seq, actor: pick(actors), ps, pseq, t: stamped, fields });
    }
    rows.push(...mine);
  }
  return {
    rows,
    runs: {
      recorded: 'r',
      replayed: 'p',
      streams,
      ingress: { recorded: ingressR, replayed: ingressP },
      shared,
    },
  };
}

/** Runs of one stream whose ingress actor is `feed`. */
function oneStream(stream: string): PlacedRuns {
  return {
    recorded: 'r',
    replayed: 'p',
    streams: [stream],
    ingress: { recorded: ['feed'], replayed: ['feed'] },
    shared: new Set(),
  };
}

/** In each run, a chain of `n` echoes (a feedback loop), the message at `seq` holding `fields(run, seq)`. */
function echoChain(n: number, fields: (run: string, seq: number) => object): Row[] {
  const rows: Row[] = [];
  for (const p of ['r', 'p']) {
    for (let seq = 0; seq < n; seq++) {
      const parent = seq === 0 ? { ps: null, pseq: null } : { ps: 'echo', pseq: seq - 1 };
      const actor = seq === 0 ? 'feed' : 'echo';
      rows.push({ p, stream: 'echo', seq, actor, ...parent, t: seq, fields: JSON.stringify(fields(p, seq)) });
    }
  }
  return rows;
}

describe('the placings of a replay’s diff', () => {
  let db: DuckDBInstance;
  let connection: DuckDBConnection;

  async function load(rows: readonly Row[]): Promise<void> {
    await connection.run(
      'CREATE OR REPLACE TABLE all_messages (process_id VARCHAR, stream VARCHAR, seq BIGINT, actor VARCHAR, parent_stream VARCHAR, parent_seq BIGINT, publish_t DOUBLE, fields JSON)',
    );
    const appender = await connection.createAppender('all_messages');
    for (const r of rows) {
      appender.appendVarchar(r.p);
      appender.appendVarchar(r.stream);
      appender.appendBigInt(BigInt(r.seq));
      if (r.actor === null) appender.appendNull();
      else appender.appendVarchar(r.actor);
      if (r.ps === null) appender.appendNull();
      else appender.appendVarchar(r.ps);
      if (r.pseq === null) appender.appendNull();
      else appender.appendBigInt(BigInt(r.pseq));
      appender.appendDouble(r.t);
      appender.appendVarchar(r.fields);
      appender.endRow();
    }
    appender.closeSync();
  }

  beforeAll(async () => {
    db = await DuckDBInstance.create(':memory:');
    connection = await db.connect();
  });
  afterAll(() => {
    connection?.closeSync();
    db?.closeSync();
  });

  it('agree on random trees: the same counts, the same first divergences, in the same order, with the same chains', async () => {
    const mismatches: string[] = [];
    for (let n = 0; n < 80; n++) {
      seed = 1000 + n;
      const { rows, runs } = randomRuns();
      await load(rows);
      const limit = pick([0, 1, 3, 10, 1000]);
      const analytics = new TableAnalytics(connection, pick([3, 1e9, 1e9]));
      const inLake = JSON.parse(JSON.stringify(await compareInLake(analytics, runs, limit)));
      const inMemory = JSON.parse(JSON.stringify(await compareInMemory(analytics, runs, limit)));
      if (!isDeepStrictEqual(inLake, inMemory)) mismatches.push(`seed ${1000 + n}`);
    }
    expect(mismatches).toEqual([]);
  }, 120_000);

  it('agree on an i64 field whose values differ past 2^53 (the replay is told it diverged, by either placing)', async () => {
    // The same layout in both runs; the i64 ids differ by one, beyond a JavaScript number's precision.
    const rows: Row[] = ['r', 'p'].map((p) => ({
      p,
      stream: 'orders',
      seq: 0,
      actor: 'feed',
      ps: null,
      pseq: null,
      t: 0,
      fields: `{"id":${p === 'r' ? '9007199254740993' : '9007199254740992'}}`,
    }));
    await load(rows);
    const runs = oneStream('orders');
    const analytics = new TableAnalytics(connection, 1e9);
    const inLake = JSON.parse(JSON.stringify(await compareInLake(analytics, runs, 5)));
    const inMemory = JSON.parse(JSON.stringify(await compareInMemory(analytics, runs, 5)));
    expect(inMemory.streams).toEqual([
      { stream: 'orders', matched: 0, differing: 1, onlyRecorded: 0, onlyReplayed: 0 },
    ]);
    expect(inLake).toEqual(inMemory);
    // The divergence names the field that differs.
    expect(inLake.divergences[0].fields.map((f: { field: string }) => f.field)).toEqual(['id']);
    // Shown as the digits stored, not as the nearest JavaScript number.
    expect(inLake.divergences[0].fields[0].recorded).toBe('9007199254740993');
  }, 60_000);

  it('tells the first divergences of a chain 100,000 deep that differs from its root down, shallowest first (places as texts as long as their paths ran out of heap at 24,000)', async () => {
    // An echo whose output comes back to it; the replay's differs from the first echo on.
    const n = 100_000;
    await load(echoChain(n, (p, seq) => ({ n: p === 'p' && seq > 0 ? -seq : seq })));
    const diff = await compareInMemory(new TableAnalytics(connection, 1e9), oneStream('echo'), 3);
    expect(diff.diverged).toBe(n - 1);
    // The shallowest first, each with its chain from the root.
    expect(diff.divergences.map((d) => [d.recorded!.seq, d.chain.length])).toEqual([
      [1, 2],
      [2, 3],
      [3, 4],
    ]);
  }, 120_000);

  it('draws a divergence 20,000 deep (each level indented one step more: 600 million characters, past the longest string)', () => {
    const n = 20_000;
    const chain = Array.from({ length: n }, (_, seq) => ({
      stream: 'orders',
      seq,
      actor: 'echo',
      fields: { tick: seq, side: 0 },
    }));
    const text = diffText({
      diverged: 1,
      streams: [{ stream: 'orders', matched: n - 1, differing: 1, onlyRecorded: 0, onlyReplayed: 0 }],
      divergences: [
        {
          kind: 'differs',
          stream: 'orders',
          place: 'ticks:0',
          ingress: null,
          recorded: chain[n - 1]!,
          replayed: { ...chain[n - 1]!, fields: { tick: n - 1, side: 1 } },
          chain,
          fields: [{ field: 'side', recorded: 0, replayed: 1 }],
        },
      ],
    });
    // Every message of the chain a line, the divergent one last.
    const lines = text.split('\n').filter((l) => /orders #\d+ echo/.test(l));
    expect(lines).toHaveLength(n);
    expect(lines.at(-1)).toMatch(/orders #19999 echo/);
    expect(text.length).toBeLessThan(100 * 2 ** 20);
  });

  it('finds a tree too deep for the recursive placing, and both placings agree on it', async () => {
    // One chain of 100 in each run: an echo whose output comes back to it; the replay's last differs.
    const rows = echoChain(100, (p, seq) => ({ n: p === 'p' && seq === 99 ? -1 : seq }));
    await load(rows);
    const runs = oneStream('echo');
    const analytics = new TableAnalytics(connection, 1e9);
    const depth = await analytics.query(depthSql(runs), { processes: ['r', 'p'] });
    expect(Number(depth.rows[0]![0])).toBe(MAX_LAKE_DEPTH);
    const inMemory = await compareInMemory(analytics, runs, 5);
    expect(inMemory.streams).toEqual([
      { stream: 'echo', matched: 99, differing: 1, onlyRecorded: 0, onlyReplayed: 0 },
    ]);
    expect(inMemory.divergences[0]!.chain).toHaveLength(100);
    expect(JSON.parse(JSON.stringify(await compareInLake(analytics, runs, 5)))).toEqual(
      JSON.parse(JSON.stringify(inMemory)),
    );
    // A tree as deep as the limit is not too deep.
    await load(rows.filter((r) => r.seq < MAX_LAKE_DEPTH));
    const shallow = await analytics.query(depthSql(runs), { processes: ['r', 'p'] });
    expect(Number(shallow.rows[0]![0])).toBe(MAX_LAKE_DEPTH - 1);
  }, 60_000);
});
