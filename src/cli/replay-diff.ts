import { parseDuckJson } from '../telemetry/analytics/duck-json.js';
import { offsetPagesOf } from '../telemetry/analytics/paged.js';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { quoteLiteral } from '../telemetry/analytics/sql.js';
import { chainsSql, type PlacedRuns, placedSql, textList } from './replay-tree.js';

/** How one stream compares: messages at the same place on both sides, and on one side only. */
export interface StreamComparison {
  readonly stream: string;
  /** Same place, same fields. */
  readonly matched: number;
  /** Same place, some field different. */
  readonly differing: number;
  readonly onlyRecorded: number;
  readonly onlyReplayed: number;
}

/** A message as a divergence shows it: where it is and what it holds. */
export interface DivergentMessage {
  readonly stream: string;
  readonly seq: number;
  readonly actor: string | null;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** A message of one run that the other does not have the same. */
export interface Divergence {
  readonly kind: 'differs' | 'only-recorded' | 'only-replayed';
  readonly stream: string;
  /** Its place in the tree (see `PlacedMessage.place`). */
  readonly place: string;
  /** The ingress message its tree grew from: its rank among all the ingress messages played (from 0), its stream and sequence in the recording. Null when it has none. */
  readonly ingress: { readonly rank: number; readonly stream: string; readonly seq: number } | null;
  readonly recorded: DivergentMessage | null;
  readonly replayed: DivergentMessage | null;
  /** The messages from its root down to it, on the side that has it (the recorded one when both do). */
  readonly chain: readonly DivergentMessage[];
  /** For `differs`: each field whose value is not the same. */
  readonly fields: readonly {
    readonly field: string;
    readonly recorded: unknown;
    readonly replayed: unknown;
  }[];
}

/** What a replay's diff found. */
export interface ReplayDiff {
  /** Messages that diverged in all (the rows of `streams` summed, less the matched). */
  readonly diverged: number;
  /** Per stream, in `streams` order. */
  readonly streams: readonly StreamComparison[];
  /** The first `limit` divergences, in the order of the ingress messages, then of their trees. */
  readonly divergences: readonly Divergence[];
}

/**
 * A JSON object's members as their values' texts, in order (undefined if `text` is no JSON
 * object, as DuckDB writes one: see `parseDuckJson`): what two messages' fields are compared by, exactly. Parsed into numbers, an i64 past
 * 2^53 loses its last digits and `1.0` equals `1`.
 */
function memberTexts(text: string): Map<string, string> | undefined {
  let members: Record<string, unknown>;
  try {
    const parsed = parseDuckJson(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    members = parsed as Record<string, unknown>;
  } catch {
    return undefined;
  }
  // Valid JSON: a scan for each member's value text, over strings (and their escapes) and nesting.
  const out = new Map<string, string>();
  const keys = Object.keys(members);
  let at = text.indexOf('{') + 1;
  const skipSpace = () => {
    while (at < text.length && /\s/.test(text[at]!)) at++;
  };
  const skipString = () => {
    for (at++; text[at] !== '"'; at++) if (text[at] === '\\') at++;
    at++;
  };
  for (;;) {
    skipSpace();
    if (text[at] !== '"') break;
    const keyStart = at;
    skipString();
    const key = JSON.parse(text.slice(keyStart, at)) as string;
    skipSpace();
    at++; // ':'
    skipSpace();
    const valueStart = at;
    for (let depth = 0; at < text.length; ) {
      const c = text[at]!;
      if (c === '"') skipString();
      else if (c === '{' || c === '[') {
        depth++;
        at++;
      } else if (c === '}' || c === ']') {
        if (depth === 0) break;
        depth--;
        at++;
      } else if (c === ',' && depth === 0) break;
      else at++;
    }
    out.set(key, text.slice(valueStart, at).trimEnd());
    if (text[at] === ',') at++;
  }
  // Repeated keys: the last one stands, as JSON.parse has it.
  return out.size === keys.length ? out : undefined;
}

/** A member's value for people: parsed, but a number its parse would change kept as its text. */
function shownValue(text: string): unknown {
  const value = parseDuckJson(text);
  // NaN and ±Infinity too: JSON (the diff stored in the lake, --json) would write them null.
  return typeof value === 'number' && (String(value) !== text || !Number.isFinite(value)) ? text : value;
}

/** A message's fields, parsed (their JSON text if it does not parse). */
export function parseFields(text: string): Record<string, unknown> {
  const members = memberTexts(text);
  if (members === undefined) return { fields: text };
  const out: Record<string, unknown> = {};
  for (const [key, value] of members) out[key] = shownValue(value);
  return out;
}

/** The fields whose values differ, exactly (none when the texts differ in field order only). */
export function fieldDifferences(recorded: string, replayed: string): Divergence['fields'] {
  const a = memberTexts(recorded) ?? new Map([['fields', JSON.stringify(recorded)]]);
  const b = memberTexts(replayed) ?? new Map([['fields', JSON.stringify(replayed)]]);
  const names = [...new Set([...a.keys(), ...b.keys()])];
  const shownOf = (text: string | undefined) => (text === undefined ? null : shownValue(text));
  return names
    .filter((k) => a.get(k) !== b.get(k))
    .map((k) => ({ field: k, recorded: shownOf(a.get(k)), replayed: shownOf(b.get(k)) }));
}

/** Divergences whose chains are read in one query (their rows are read in pages). */
const CHAIN_BATCH = 1000;

/** Characters of SQL that one query's targets take at most: a server takes 64 KiB of SQL in all. */
const CHAIN_BATCH_SQL = 32 * 1024;

/** A row of the analytics as a message a divergence shows. */
function shown(stream: unknown, seq: unknown, actor: unknown, fields: unknown): DivergentMessage {
  return {
    stream: String(stream),
    seq: Number(seq),
    actor: actor === null ? null : String(actor),
    fields: parseFields(String(fields)),
  };
}

/**
 * A message's fields as one value that does not depend on their order: `[key, value]` pairs by
 * key. The `messages` view writes a process's fields in its layout's order (by offset): a replay
 * whose layout widened a field (i8 to i16) moved it, and its text differed from the recording's
 * where every value matched. JSON pointers reach any key (dots, quotes, none); a double that is
 * no number (bare NaN, which DuckDB's JSON reads) compares as its text.
 */
function canonicalFields(json: string): string {
  return `list_transform(list_sort(json_keys(${json})), k -> [k, json_extract(${json}, '/' || replace(replace(k, '~', '~0'), '/', '~1'))::VARCHAR])`;
}

/**
 * Compares a replay with its recording, message by message at the same place in the tree
 * (see `placedSql`): fields compared, times and sequence numbers not. The analytics place and
 * join both runs; this process holds the per-stream counts and the first `limit` divergences
 * with their chains, never a run. `runs.streams` orders the summary and breaks ties between
 * siblings of different streams.
 */

export async function compareInLake(
  analytics: AnalyticsQuestions,
  runs: PlacedRuns,
  limit: number,
): Promise<ReplayDiff> {
  const scope = { processes: [runs.recorded, runs.replayed] };
  const r = quoteLiteral(runs.recorded);
  const p = quoteLiteral(runs.replayed);
  const joined = `${placedSql(runs)},
a AS (SELECT * FROM placed WHERE p = ${r}),
b AS (SELECT * FROM placed WHERE p = ${p}),
j AS (
  SELECT coalesce(a.stream, b.stream) AS stream, coalesce(a.place, b.place) AS place,
    coalesce(a.root, b.root) AS root, coalesce(a.path, b.path) AS path,
    a.seq AS a_seq, a.actor AS a_actor, a.fields AS a_fields,
    b.seq AS b_seq, b.actor AS b_actor, b.fields AS b_fields,
    CASE WHEN b.seq IS NULL THEN 'only-recorded' WHEN a.seq IS NULL THEN 'only-replayed'
      WHEN a.fields IS DISTINCT FROM b.fields AND ${canonicalFields('a.fields')} IS DISTINCT FROM ${canonicalFields('b.fields')} THEN 'differs' END AS kind
  FROM a FULL OUTER JOIN b ON a.place = b.place
)`;
  // In pages too: a server's row limit may be lower than the streams.
  const summary: (readonly unknown[])[] = [];
  const perStream = `${joined}
SELECT stream, count(*) FILTER (WHERE kind IS NULL), count(*) FILTER (WHERE kind = 'differs'),
  count(*) FILTER (WHERE kind = 'only-recorded'), count(*) FILTER (WHERE kind = 'only-replayed')
FROM j GROUP BY stream ORDER BY stream`;
  for await (const rows of offsetPagesOf(analytics, scope, perStream)) summary.push(...rows);
  const counts = new Map<string, StreamComparison>(
    runs.streams.map((stream) => [
      stream,
      { stream, matched: 0, differing: 0, onlyRecorded: 0, onlyReplayed: 0 },
    ]),
  );
  for (const [stream, matched, differing, onlyRecorded, onlyReplayed] of summary) {
    counts.set(String(stream), {
      stream: String(stream),
      matched: Number(matched),
      differing: Number(differing),
      onlyRecorded: Number(onlyRecorded),
      onlyReplayed: Number(onlyReplayed),
    });
  }
  const streams = [...counts.values()];
  const diverged = streams.reduce((n, s) => n + s.differing + s.onlyRecorded + s.onlyReplayed, 0);
  // The first divergences: in the order of their ingress message in the recording (then of those
  // only the replay has, then of none), then down their trees, an ancestor before its descendants;
  // siblings of one step (two actors' on a shared stream) the recorded first, in publication order.
  const found: (readonly unknown[])[] = [];
  const wanted = Math.min(limit, diverged);
  if (wanted > 0) {
    const divergent = `${joined},
recorded_roots AS (SELECT count(*) AS n FROM roots WHERE p = ${r})
SELECT j.kind, j.stream, j.place, j.a_seq, j.a_actor, j.a_fields, j.b_seq, j.b_actor, j.b_fields,
  coalesce(ra.rank, (SELECT n FROM recorded_roots) + rb.rank), coalesce(ra.stream, rb.stream), coalesce(ra.seq, rb.seq)
FROM j LEFT JOIN roots ra ON ra.p = ${r} AND ra.root = j.root LEFT JOIN roots rb ON rb.p = ${p} AND rb.root = j.root
WHERE j.kind IS NOT NULL
ORDER BY coalesce(ra.rank, (SELECT n FROM recorded_roots) + coalesce(rb.rank, 1e15)), j.path,
  j.a_seq IS NULL, list_position(${textList(runs.streams)}, j.stream), coalesce(j.a_seq, j.b_seq), j.place`;
    for await (const rows of offsetPagesOf(analytics, scope, divergent, wanted)) found.push(...rows);
  }
  const chains = await readChains(
    analytics,
    runs,
    found.map(([, stream, , aSeq, , , bSeq]) =>
      aSeq === null
        ? { p: runs.replayed, stream: String(stream), seq: Number(bSeq) }
        : { p: runs.recorded, stream: String(stream), seq: Number(aSeq) },
    ),
  );
  const divergences = found.map((row, n): Divergence => {
    const [kind, stream, place, aSeq, aActor, aFields, bSeq, bActor, bFields, rank, rootStream, rootSeq] =
      row;
    return {
      kind: kind as Divergence['kind'],
      stream: String(stream),
      place: String(place),
      ingress:
        rank === null ? null : { rank: Number(rank), stream: String(rootStream), seq: Number(rootSeq) },
      recorded: aSeq === null ? null : shown(stream, aSeq, aActor, aFields),
      replayed: bSeq === null ? null : shown(stream, bSeq, bActor, bFields),
      chain: chains[n] ?? [],
      fields: kind === 'differs' ? fieldDifferences(String(aFields), String(bFields)) : [],
    };
  });
  return { diverged, streams, divergences };
}

/** The chain of each target, from its root down to it (see `chainsSql`). */
async function readChains(
  analytics: AnalyticsQuestions,
  runs: PlacedRuns,
  targets: readonly { readonly p: string; readonly stream: string; readonly seq: number }[],
): Promise<DivergentMessage[][]> {
  const chains: DivergentMessage[][] = targets.map(() => []);
  const scope = { processes: [runs.recorded, runs.replayed] };
  for (let from = 0; from < targets.length; ) {
    // As many as fit, each naming its process and stream (one at least).
    let to = from;
    for (let sql = 0; to < targets.length && to - from < CHAIN_BATCH; to++) {
      const t = targets[to]!;
      sql += quoteLiteral(t.p).length + quoteLiteral(t.stream).length + 32;
      if (sql > CHAIN_BATCH_SQL && to > from) break;
    }
    const batch = targets.slice(from, to);
    for await (const rows of offsetPagesOf(analytics, scope, chainsSql(runs, batch))) {
      for (const [n, , stream, seq, actor, fields] of rows) {
        chains[from + Number(n)]!.push(shown(stream, seq, actor, fields));
      }
    }
    from = to;
  }
  return chains;
}
