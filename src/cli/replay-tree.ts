import { quoteLiteral } from '../telemetry/analytics/sql.js';
import { playTimeSql } from './replay-pages.js';
import { inPlayOrder } from './replay-recording.js';
import { ANY_TIME_SPAN, type TimeSpan, timedSql } from './replay-span.js';

/**
 * Where a recorded message stands in its tree, computed by the analytics (DuckDB) for two runs at
 * once, so that comparing a replay with its recording holds neither run in this process's memory.
 *
 * A message's place is the ingress message it descends from and the path from it, each step a
 * stream and the message's index among its parent's children of that stream (in publication
 * order), e.g. `ticks:17/books:0/orders:1`. On a stream several actors produce (multi-producer),
 * a step names the actor too (`orders@bidder:0`): siblings from two threads interleave as the
 * threads run, each actor's own in the order it published them. Two runs fed the same ingress
 * messages put a deterministic system's outputs at the same places, whatever the threads' timing.
 * A message with no ingress ancestor in the lake is the root of its own tree, placed by its order
 * among such messages of its step: `~orders:3`.
 */
export interface PlacedRuns {
  /** The recording and the replay (their process ids). */
  readonly recorded: string;
  readonly replayed: string;
  /** The streams compared, in the order the summary lists them (and siblings of different streams sort). */
  readonly streams: readonly string[];
  /** The actors whose messages are roots, in each run. */
  readonly ingress: { readonly recorded: readonly string[]; readonly replayed: readonly string[] };
  /** The streams several actors may produce. */
  readonly shared: ReadonlySet<string>;
  /** Each run's span: a publish time outside it paces nothing (see `TimeSpan`). Absent: any finite time. */
  readonly spans?: { readonly recorded: TimeSpan; readonly replayed: TimeSpan };
}

export function textList(values: Iterable<string>): string {
  return `[${[...values].map(quoteLiteral).join(', ')}]::VARCHAR[]`;
}

/** Trees deeper than this are placed in memory instead (see replay-memory.ts). */
export const MAX_LAKE_DEPTH = 64;

/** Whether a message is ingress, in either run (a SQL expression over `messages`). */
function ingressSql(runs: Pick<PlacedRuns, 'recorded' | 'replayed' | 'ingress'>): string {
  const r = quoteLiteral(runs.recorded);
  const p = quoteLiteral(runs.replayed);
  return `coalesce((process_id = ${r} AND list_contains(${textList(runs.ingress.recorded)}, actor)) OR (process_id = ${p} AND list_contains(${textList(runs.ingress.replayed)}, actor)), false)`;
}

/**
 * `WITH RECURSIVE m AS (…), k AS (…)`: every message of both runs with its step and whether it
 * is ingress (`m`), then its role (0 ingress, 1 no parent in the lake, 2 a child) and its index
 * among its siblings (`k`). Ingress messages are numbered per stream in sequence order, the order
 * the player plays each stream in (see `playOrderSql`): so the n-th of a stream in the replay is
 * the n-th of the recording, even where a recorded multi-producer stream's publish times
 * disagree with its sequence.
 */
function rolesSql(runs: PlacedRuns): string {
  const r = quoteLiteral(runs.recorded);
  const p = quoteLiteral(runs.replayed);
  const step = `CASE WHEN list_contains(${textList(runs.shared)}, stream) THEN stream || '@' || coalesce(actor, '?') ELSE stream END`;
  return `WITH RECURSIVE
m AS MATERIALIZED (
  SELECT process_id AS p, stream, seq, actor, parent_stream, parent_seq, publish_t, fields::VARCHAR AS fields, ${step} AS step, ${ingressSql(runs)} AS ingress
  FROM messages WHERE process_id IN (${r}, ${p}) AND list_contains(${textList(runs.streams)}, stream)
),
k AS MATERIALIZED (
  SELECT *, row_number() OVER (
      PARTITION BY p, role, CASE WHEN role = 0 THEN stream ELSE step END,
        CASE WHEN role = 2 THEN parent_stream END, CASE WHEN role = 2 THEN parent_seq END
      ORDER BY seq) - 1 AS idx
  FROM (
    SELECT c.*, CASE WHEN c.ingress THEN 0 WHEN a.seq IS NULL THEN 1 ELSE 2 END AS role
    FROM m c LEFT JOIN m a ON a.p = c.p AND a.stream = c.parent_stream AND a.seq = c.parent_seq
  )
)`;
}

/**
 * The depth of both runs' deepest tree, counted up to `MAX_LAKE_DEPTH` at most (a query of one
 * row, one column): the recursive placing takes a step per level, each over every message, so a
 * tree as deep as the run (a feedback loop) is placed in memory instead.
 */
export function depthSql(runs: PlacedRuns): string {
  return `${rolesSql(runs)},
d AS (
  SELECT p, stream, seq, 0 AS depth FROM k WHERE role <> 2
  UNION ALL
  SELECT c.p, c.stream, c.seq, d.depth + 1 FROM k c
  JOIN d ON c.role = 2 AND c.p = d.p AND c.parent_stream = d.stream AND c.parent_seq = d.seq
  WHERE d.depth < ${MAX_LAKE_DEPTH}
)
SELECT coalesce(max(depth), 0) FROM d`;
}

/**
 * The common table expressions that place every message of both runs (`WITH RECURSIVE …`, to be
 * followed by a query): `m`, each message with its step and whether it is ingress; `k`, with its
 * role (0 ingress, 1 no parent in the lake, 2 a child) and index among its siblings; `placed`
 * (`p` the process, `stream`, `seq`, `actor`, `fields` as JSON text, `place`, `root`, and `path`:
 * per step below the root the stream's rank in `streams` then the index, what divergences sort
 * by); `roots`, each run's ingress roots with their rank in the order a replay plays them (all
 * ingress streams together).
 */
export function placedSql(runs: PlacedRuns): string {
  // Roots rank in the player's order (see `playOrderSql`): each ingress stream in sequence order,
  // merged by play time (the greatest timed publish time of the stream so far), ties by stream
  // as the playlist sorts them, given as a list (DuckDB's ORDER BY compares bytes).
  const byPlayOrder = textList(inPlayOrder(runs.streams));
  const spans = runs.spans ?? { recorded: ANY_TIME_SPAN, replayed: ANY_TIME_SPAN };
  const timed = `CASE WHEN p = ${quoteLiteral(runs.recorded)} THEN ${timedSql(spans.recorded)} ELSE ${timedSql(spans.replayed)} END`;
  const rootPlace = `CASE WHEN role = 0 THEN stream || ':' || idx ELSE '~' || step || ':' || idx END`;
  return `${rolesSql(runs)},
placed AS (
  SELECT p, stream, seq, actor, fields, ${rootPlace} AS place, ${rootPlace} AS root, []::BIGINT[] AS path
  FROM k WHERE role <> 2
  UNION ALL
  SELECT c.p, c.stream, c.seq, c.actor, c.fields, a.place || '/' || c.step || ':' || c.idx, a.root,
    list_concat(a.path, [list_position(${textList(runs.streams)}, c.stream)::BIGINT - 1, c.idx])
  FROM k c JOIN placed a ON c.role = 2 AND c.p = a.p AND c.parent_stream = a.stream AND c.parent_seq = a.seq
),
roots AS (
  SELECT p, stream, seq, root,
    row_number() OVER (PARTITION BY p ORDER BY play_t, list_position(${byPlayOrder}, stream), seq) - 1 AS rank
  FROM (
    SELECT p, stream, seq, stream || ':' || idx AS root,
      coalesce(${playTimeSql('seq', timed, 'p, stream')}, '-inf'::DOUBLE) AS play_t
    FROM k WHERE role = 0
  )
)`;
}

/**
 * The chain of each message in `targets` (its process, stream and sequence), from its root down
 * to it: rows of (`n`, the target's index; `depth`, 0 at the target; stream, seq, actor, fields
 * as JSON text), the deepest first. A chain goes up parent by parent and stops at an ingress
 * message or at one whose parent is not in the lake, as places do.
 */
export function chainsSql(
  runs: Pick<PlacedRuns, 'recorded' | 'replayed' | 'ingress' | 'streams'>,
  targets: readonly { readonly p: string; readonly stream: string; readonly seq: number }[],
): string {
  const r = quoteLiteral(runs.recorded);
  const p = quoteLiteral(runs.replayed);
  const ingress = ingressSql(runs);
  const values = targets
    .map((t, n) => `(${n}, ${quoteLiteral(t.p)}, ${quoteLiteral(t.stream)}, ${t.seq}::BIGINT)`)
    .join(', ');
  return `WITH RECURSIVE
m AS MATERIALIZED (
  SELECT process_id AS p, stream, seq, actor, parent_stream, parent_seq, fields::VARCHAR AS fields, ${ingress} AS ingress
  FROM messages WHERE process_id IN (${r}, ${p}) AND list_contains(${textList(runs.streams)}, stream)
),
up AS (
  SELECT t.n, 0 AS depth, m.* FROM (VALUES ${values}) t(n, p, stream, seq) JOIN m USING (p, stream, seq)
  UNION ALL
  SELECT up.n, up.depth + 1, m.* FROM up
  JOIN m ON NOT up.ingress AND m.p = up.p AND m.stream = up.parent_stream AND m.seq = up.parent_seq
)
SELECT n, depth, stream, seq, actor, fields FROM up ORDER BY n, depth DESC`;
}
