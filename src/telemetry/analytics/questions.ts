import { parseDuckJson } from './duck-json.js';
import { QueryRefusedError } from './guard.js';
import { allRows, allRowsUnordered } from './paged.js';
import type { QueryFunction, QueryScope } from './query.js';
import { streamTableName } from './source-tables.js';
import { quoteIdentifier, quoteLiteral } from './sql.js';

/** Latency or processing time at the usual percentiles, in whole nanoseconds. */
export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** One group of timing records: an actor handling a stream (or either alone, by `by`). */
export interface PercentileRow {
  readonly actor?: string;
  readonly stream?: string;
  readonly count: number;
  /** From the chain's origin to the end of the handler (`end_t - origin_t`). */
  readonly latency: Percentiles;
  /** The handler alone (`end_t - start_t`). */
  readonly processing: Percentiles;
}

export interface PercentilesOptions
  extends Pick<QueryScope, 'process' | 'begin' | 'end' | 'timeoutMs' | 'timeLimit' | 'signal'> {
  /** What a row groups (default: actor and stream). */
  readonly by?: readonly ('actor' | 'stream')[];
}

/** An actor's handling of a message: its timing record, relative to the message's origin. */
export interface Handling {
  readonly actor: string;
  readonly startNs: number;
  readonly endNs: number;
  /** `end_t - origin_t`. */
  readonly latencyNs: number;
  /** `end_t - start_t`. */
  readonly processingNs: number;
}

/** A message in its tree. Times are nanoseconds since the tree's origin. */
export interface TreeNode {
  readonly stream: string;
  readonly seq: number;
  /** The actor that published it. */
  readonly actor: string | null;
  readonly fields: Readonly<Record<string, unknown>>;
  /** `publish_t - origin_t`. */
  readonly publishNs: number;
  /** This hop: its publish time less its parent's (0 for the root). */
  readonly hopNs: number;
  /** The publish time on the calendar (UTC, nanoseconds). */
  readonly publishTime: string;
  /** Its timing records: each actor that handled it. */
  readonly handled: readonly Handling[];
  readonly children: readonly TreeNode[];
  /**
   * Messages below this one left out of `children` (counted in the tree's `nodes` and latency):
   * a tree is kept `MAX_TREE_DEPTH` levels deep at most (a feedback loop makes one as deep as
   * the run, which no reader could take in, and JSON could not hold).
   */
  readonly cut?: number;
}

/** A message tree: an ingress message and everything it caused, joined by parent ids. */
export interface MessageTree {
  readonly process: string;
  /** The ingress time every message of the tree carries (ns, the process's clock). */
  readonly originT: number;
  readonly root: TreeNode;
  readonly nodes: number;
  /** The tree's latency: the latest handler end (or publish, if none) since the origin. */
  readonly latencyNs: number;
  /** True when the root's own parent is not in the lake (lost, or outside the window). */
  readonly missingParent: boolean;
}

export interface TreeOptions extends Pick<QueryScope, 'timeoutMs' | 'timeLimit' | 'signal'> {
  readonly process: string;
  readonly stream: string;
  readonly seq: number;
}

export interface SlowestTreesOptions
  extends Pick<QueryScope, 'begin' | 'end' | 'timeoutMs' | 'timeLimit' | 'signal'> {
  readonly process: string;
  /** How many trees (default 10; see `slowestTrees` for an origin whose tree is in pieces). */
  readonly n?: number;
}

/** Trees fetched at once by `slowestTrees`: the origins of their messages go into one `IN` list. */
const TREES_PER_QUERY = 200;

/**
 * The questions asked most of a lake, answered with SQL through `query`, so that they work the
 * same embedded (`Analytics`) and over HTTP (`RemoteAnalytics`).
 *
 * A tree is found through its origin time: the spine stamps every message a handler produces with
 * the origin of the message it handles, so a tree's messages all carry its root's `origin_t`; the
 * Parquet statistics of that column let DuckDB read only the row groups that hold it. The tree
 * itself is then joined exactly, by each message's parent stream and sequence.
 */
export abstract class AnalyticsQuestions {
  abstract readonly query: QueryFunction;

  /** p50, p90, p99, p99.9 and max of latency and processing time, per actor × stream (exact, not sketched). */
  async percentiles(options: PercentilesOptions = {}): Promise<PercentileRow[]> {
    const by = options.by ?? ['actor', 'stream'];
    for (const column of by) {
      if (column !== 'actor' && column !== 'stream') {
        throw new QueryRefusedError(
          `percentiles: by takes 'actor' and 'stream', got ${JSON.stringify(column)}`,
        );
      }
    }
    const keys = [...new Set(by)];
    const levels = '[0.5, 0.9, 0.99, 0.999]';
    // Whole nanoseconds: DuckDB sorts integers for its quantiles about twice as fast as doubles.
    const aggregates = (latency: string, processing: string) => [
      'count(*)::DOUBLE AS n',
      `quantile_disc((${latency})::BIGINT, ${levels}) AS lq`,
      `max((${latency})::BIGINT) AS lmax`,
      `quantile_disc((${processing})::BIGINT, ${levels}) AS pq`,
      `max((${processing})::BIGINT) AS pmax`,
    ];
    const order = keys.length > 0 ? ` ORDER BY ${keys.join(', ')}` : '';
    // A record whose time is no number (a damaged recording) has no latency: it would fail the
    // casts, and come first or last in every order. `untimedTimings` counts those left out.
    const timed = ` WHERE ${TIMED}`;
    let sql: string;
    if (options.process !== undefined) {
      // One process: grouped by its actors' and streams' ids over the records alone, the names
      // joined to the groups after (a join per record costs more than the quantiles).
      const ids = keys.map((k) => (k === 'actor' ? 'actor_id' : 'stream_id'));
      const joins = [
        keys.includes('actor') ? ' LEFT JOIN _actors a USING (process_id, actor_id)' : '',
        keys.includes('stream') ? ' LEFT JOIN _stream_names s USING (process_id, stream_id)' : '',
      ].join('');
      const names = keys.map((k) => (k === 'actor' ? 'a.actor' : 's.stream'));
      sql = `WITH g AS (SELECT ${['process_id', ...ids, ...aggregates('end_t - origin_t', 'end_t - start_t')].join(', ')} FROM timing_records${timed} GROUP BY ALL) SELECT ${[...names, 'n', 'lq', 'lmax', 'pq', 'pmax'].join(', ')} FROM g${joins}${order}`;
    } else {
      const group = keys.length > 0 ? ` GROUP BY ${keys.join(', ')}` : '';
      sql = `SELECT ${[...keys, ...aggregates('latency_ns', 'processing_ns')].join(', ')} FROM timings${timed}${group}${order}`;
    }
    // Whole, page after page, however few rows a server answers at once.
    const rows = await allRows(this, scopeOf(options), sql, Number.POSITIVE_INFINITY, 100_000);
    const percentiles = (q: unknown, max: unknown): Percentiles => {
      const [p50, p90, p99, p999] = (Array.isArray(q) ? q : []).map(Number);
      return {
        p50: p50 ?? Number.NaN,
        p90: p90 ?? Number.NaN,
        p99: p99 ?? Number.NaN,
        p999: p999 ?? Number.NaN,
        max: Number(max),
      };
    };
    return rows
      .filter((row) => Number(row[keys.length]) > 0)
      .map((row) => {
        const [n, lq, lmax, pq, pmax] = row.slice(keys.length);
        return {
          ...Object.fromEntries(keys.map((k, i) => [k, row[i] as string])),
          count: Number(n),
          latency: percentiles(lq, lmax),
          processing: percentiles(pq, pmax),
        };
      });
  }

  /**
   * Timing records of a process whose start, end or origin is no time (NaN, infinite, or further
   * than 127 years from the process's start: a damaged recording): the questions that aggregate times leave them out, and this says how many.
   */
  async untimedTimings(
    options: Pick<QueryScope, 'begin' | 'end' | 'timeoutMs' | 'timeLimit' | 'signal'> & {
      readonly process: string;
    },
  ): Promise<number> {
    const process = checkProcess(options.process);
    const { rows } = await this.query(`SELECT count(*)::DOUBLE FROM timing_records WHERE NOT (${TIMED})`, {
      ...scopeOf(options),
      process,
      maxRows: 1,
    });
    return Number(rows[0]?.[0] ?? 0);
  }

  /** The whole tree a message belongs to, from its ingress root down, joined by parent ids. */
  async tree(options: TreeOptions): Promise<MessageTree> {
    const process = checkProcess(options.process);
    if (typeof options.stream !== 'string' || !Number.isSafeInteger(options.seq) || options.seq < 0) {
      throw new QueryRefusedError('tree: give a stream (a string) and a seq (an integer ≥ 0)');
    }
    const { timeoutMs, timeLimit, signal } = options;
    const scope = { ...scopeOf({ timeoutMs, timeLimit, signal }), process };
    const of = { stream: options.stream, seq: options.seq };
    // The message's origin and its tree in one query (each answer is a round trip): the tree is
    // its root's, the message itself may be below the levels kept (see `TreeNode.cut`).
    const treeOf = (message: string) =>
      this.treesOf(
        process,
        {
          with: `WITH asked AS MATERIALIZED (SELECT origin_t FROM ${message})`,
          within: 'origin_t IN (SELECT origin_t FROM asked)',
        },
        scope,
        of,
      );
    const none = () =>
      new QueryRefusedError(`tree: no message ${options.stream} #${options.seq} in process ${process}`);
    // Every stream the lake holds has a view of its own (`messages` is their union).
    const trees = await treeOf(
      `${quoteIdentifier(streamTableName(options.stream))} WHERE seq = ${options.seq}`,
    ).catch((error: unknown) => {
      // No such view: no such stream.
      throw error instanceof QueryRefusedError && error.message.startsWith('Catalog Error') ? none() : error;
    });
    const [tree] = trees;
    if (tree === undefined) throw none();
    return tree;
  }

  /**
   * The `n` trees with the largest latency (the latest handler end since their origin), slowest
   * first. Origins are ranked by their timing records (all of them: those of a message the lake
   * lost too), and their trees taken in that order up to `n`: an origin whose tree lost a message
   * in its middle gives its pieces (`missingParent`), slowest first, before the next origin's. A
   * tree is messages: timing records none of whose messages is in the lake (lost, or outside the
   * time window) make none, and are passed over for the next slowest.
   */
  async slowestTrees(options: SlowestTreesOptions): Promise<MessageTree[]> {
    const process = checkProcess(options.process);
    const n = options.n ?? 10;
    if (!Number.isSafeInteger(n) || n < 1 || n > 10_000) {
      throw new QueryRefusedError(
        `slowestTrees: n is an integer from 1 to 10000, got ${JSON.stringify(options.n)}`,
      );
    }
    const scope = { ...scopeOf(options), process };
    const slowest = async (among: string): Promise<{ trees: MessageTree[]; origins: string[] }> => {
      // The n slowest, page after page if a server answers fewer at once (ties broken by origin);
      // by the records whose times are numbers: NaN sorts first, and would rank a damaged tree
      // the slowest.
      const worst = await allRows(
        this,
        scope,
        `SELECT origin_t::VARCHAR, max(end_t - origin_t) AS worst FROM timing_records WHERE ${TIMED}${among} GROUP BY origin_t ORDER BY worst DESC, origin_t`,
        n,
      );
      const origins = worst.map((row) => String(row[0]));
      const trees: MessageTree[] = [];
      for (let at = 0; at < origins.length; at += TREES_PER_QUERY) {
        const some = origins.slice(at, at + TREES_PER_QUERY);
        const within = `origin_t IN (${some.map((o) => `${quoteLiteral(o)}::DOUBLE`).join(', ')})`;
        trees.push(...(await this.treesOf(process, { within }, scope)));
      }
      return { trees, origins };
    };
    let { trees, origins } = await slowest('');
    // Counted by origin: one whose tree lost a message in its middle makes several.
    if (new Set(trees.map((t) => t.originT)).size < origins.length) {
      // Some of the slowest origins made no tree: ranked again among those with messages (left
      // out before the grouping, by a join filter on the scan; not the first time, as it costs
      // about twice as much when every record has its messages).
      ({ trees, origins } = await slowest(' AND origin_t IN (SELECT origin_t FROM messages)'));
    }
    const byOrigin = new Map<number, MessageTree[]>();
    for (const tree of trees) byOrigin.set(tree.originT, [...(byOrigin.get(tree.originT) ?? []), tree]);
    const taken: MessageTree[] = [];
    for (const origin of origins) {
      const own = (byOrigin.get(Number(origin)) ?? []).sort((a, b) => b.latencyNs - a.latencyNs);
      taken.push(...own.slice(0, n - taken.length));
      if (taken.length === n) break;
    }
    return taken.sort((a, b) => b.latencyNs - a.latencyNs);
  }

  /**
   * Every tree whose messages' `origin_t` meets `origins.within` (after `origins.with`, common
   * table expressions it names).
   */
  private async treesOf(
    process: string,
    origins: { readonly with?: string; readonly within: string },
    scope: QueryScope,
    of?: { readonly stream: string; readonly seq: number },
  ): Promise<MessageTree[]> {
    const { within } = origins;
    // One query for both: each answer is a round trip (over HTTP, and to the Parquet files). In
    // one answer of up to a million rows, unsorted, or, from a server that answers fewer, page
    // after page in their order (a message by its stream and sequence, a handler call by its
    // actor and start too: a restarted actor may handle a message twice).
    const rows = await allRowsUnordered(
      this,
      scope,
      `${origins.with ?? ''} SELECT 'm' AS kind, stream, seq::DOUBLE AS seq, actor, parent_stream, parent_seq::DOUBLE AS parent_seq, origin_t, publish_t, publish_time::VARCHAR AS publish_time, fields::VARCHAR AS fields, NULL::DOUBLE AS start_t, NULL::DOUBLE AS end_t FROM messages WHERE ${within}
       UNION ALL
       SELECT 't', stream, seq::DOUBLE, actor, NULL, NULL, origin_t, publish_t, NULL, NULL, start_t, end_t FROM timings WHERE ${within}`,
      'kind, stream, seq, actor, start_t',
      1_000_000,
    );
    const messages = rows.filter((r) => r[0] === 'm').map((r) => r.slice(1, 10));
    const timings = rows.filter((r) => r[0] === 't').map((r) => [r[1], r[2], r[3], r[6], r[10], r[11]]);
    return assembleTrees(process, messages, timings, of);
  }
}

interface Draft {
  stream: string;
  seq: number;
  actor: string | null;
  parent: string | null;
  originT: number;
  publishT: number;
  publishTime: string;
  fields: Record<string, unknown>;
  handled: Handling[];
  children: Draft[];
}

/**
 * A time a record can hold, in ns since its process's start: a number, within ±4e18 ns (127
 * years), so that the difference of two is a BIGINT. Another is a damaged recording's (1e19 failed
 * the percentiles' casts as NaN did).
 */
export const timed = (column: string): string =>
  `(isfinite(${column}) AND abs(${column}) < ${TIME_BOUND_NS})`;

/** How far from its process's start a time may lie, in ns (see `timed`). */
export const TIME_BOUND_NS = 4e18;

/**
 * SQL of one row, `lo` and `hi`: the times a process's records can hold, those of its blocks of
 * records (the persister stamps a block with its records' first and last times), give or take a
 * millisecond (a block's ticks are rounded to whole ns); a block of no record, stamped 0, says
 * nothing. A record's time outside them is one a block's payload holds and its header does not
 * (a payload damaged since it was written), even one `timed` takes; a time the recorder itself
 * took wrong is in its block's header too, and within. NULLs for a process with no record.
 */
export const BLOCK_SPAN_SQL =
  'SELECT min(begin_ticks)::DOUBLE - 1e6 AS lo, max(end_ticks)::DOUBLE + 1e6 AS hi FROM blocks WHERE object_count > 0';

/** `timed` for a time read back. */
export const isTime = (t: number): boolean => Number.isFinite(t) && Math.abs(t) < TIME_BOUND_NS;

/** The condition that a timing record's times are times (see `timed`, `untimedTimings`). */
export const TIMED = `${timed('start_t')} AND ${timed('end_t')} AND ${timed('origin_t')}`;

/** Levels of a tree kept at most (see `TreeNode.cut`). */
export const MAX_TREE_DEPTH = 256;

/**
 * Joins messages into trees by parent ids, with each message's timing records; with `of`, only
 * the tree that holds that message (none if no tree does).
 */
function assembleTrees(
  process: string,
  messages: readonly (readonly unknown[])[],
  timings: readonly (readonly unknown[])[],
  of?: { readonly stream: string; readonly seq: number },
): MessageTree[] {
  const key = (stream: unknown, seq: unknown) => `${String(stream)}#${Number(seq)}`;
  const drafts = new Map<string, Draft>();
  /** Handler calls whose times are not all times (`TIMED`): drawn, but they measure nothing. */
  const untimed = new WeakSet<object>();
  for (const [
    stream,
    seq,
    actor,
    parentStream,
    parentSeq,
    originT,
    publishT,
    publishTime,
    fields,
  ] of messages) {
    drafts.set(key(stream, seq), {
      stream: String(stream),
      seq: Number(seq),
      actor: actor === null ? null : String(actor),
      parent: parentStream === null ? null : key(parentStream, parentSeq),
      originT: Number(originT),
      publishT: Number(publishT),
      publishTime: String(publishTime),
      fields: parseFields(fields),
      handled: [],
      children: [],
    });
  }
  for (const [stream, seq, actor, originT, startT, endT] of timings) {
    const draft = drafts.get(key(stream, seq));
    if (draft === undefined) continue;
    const origin = Number(originT);
    const call = {
      actor: String(actor),
      startNs: Number(startT) - origin,
      endNs: Number(endT) - origin,
      latencyNs: Number(endT) - origin,
      processingNs: Number(endT) - Number(startT),
    };
    if (!(isTime(origin) && isTime(Number(startT)) && isTime(Number(endT)))) untimed.add(call);
    draft.handled.push(call);
  }
  const roots: Draft[] = [];
  for (const draft of drafts.values()) {
    const parent = draft.parent === null ? undefined : drafts.get(draft.parent);
    if (parent !== undefined && parent.originT === draft.originT) parent.children.push(draft);
    else roots.push(draft);
  }
  if (of !== undefined) {
    // Up from the message to its root, as the children were joined above (at most a step per
    // message: parents that loop lead to no root).
    let at = drafts.get(key(of.stream, of.seq));
    for (let steps = 0; at !== undefined && steps <= drafts.size; steps++) {
      const parent = at.parent === null ? undefined : drafts.get(at.parent);
      if (parent === undefined || parent.originT !== at.originT) break;
      at = parent;
    }
    roots.splice(0, roots.length, ...(at !== undefined && roots.includes(at) ? [at] : []));
  }
  return roots.map((root) => {
    let nodes = 0;
    let latencyNs = 0;
    const node = (draft: Draft, parentPublishT: number, children: TreeNode[]): TreeNode => {
      draft.handled.sort((a, b) => a.startNs - b.startNs);
      return {
        stream: draft.stream,
        seq: draft.seq,
        actor: draft.actor,
        fields: draft.fields,
        publishNs: draft.publishT - draft.originT,
        hopNs: draft.publishT - parentPublishT,
        publishTime: draft.publishTime,
        handled: draft.handled,
        children,
      };
    };
    // Depth first with a stack of our own (a chain may be as deep as the run), children in
    // publication order; below MAX_TREE_DEPTH, messages are counted, not kept.
    const top: TreeNode[] = [];
    const stack: { draft: Draft; parentPublishT: number; depth: number; into: TreeNode[] | undefined }[] = [
      { draft: root, parentPublishT: root.publishT, depth: 0, into: top },
    ];
    const cutAt = new Map<TreeNode, number>();
    let cutting: TreeNode | undefined;
    for (let at = stack.pop(); at !== undefined; at = stack.pop()) {
      const { draft, parentPublishT, depth, into } = at;
      nodes++;
      // A time that is no time (a damaged record: NaN, infinite, or past `TIME_BOUND_NS`, as
      // `TIMED` tells in the queries that ranked the tree) is drawn, but measures nothing.
      if (isTime(draft.publishT) && isTime(draft.originT))
        latencyNs = Math.max(latencyNs, draft.publishT - draft.originT);
      for (const h of draft.handled) if (!untimed.has(h)) latencyNs = Math.max(latencyNs, h.latencyNs);
      draft.children.sort(
        (a, b) => a.publishT - b.publishT || a.stream.localeCompare(b.stream) || a.seq - b.seq,
      );
      let children: TreeNode[] | undefined;
      if (into !== undefined) {
        const made = node(draft, parentPublishT, []);
        into.push(made);
        if (depth + 1 < MAX_TREE_DEPTH) children = made.children as TreeNode[];
        else if (draft.children.length > 0) {
          cutting = made;
          cutAt.set(made, 0);
        }
      } else cutAt.set(cutting!, cutAt.get(cutting!)! + 1);
      for (let i = draft.children.length - 1; i >= 0; i--) {
        stack.push({
          draft: draft.children[i]!,
          parentPublishT: draft.publishT,
          depth: depth + 1,
          into: children,
        });
      }
    }
    for (const [made, below] of cutAt) (made as { cut?: number }).cut = below;
    return {
      process,
      originT: root.originT,
      root: top[0]!,
      nodes,
      latencyNs,
      missingParent: root.parent !== null,
    };
  });
}

/** A message's fields, from their JSON as DuckDB writes it (see `parseDuckJson`); {} if it is none. */
export function parseFields(value: unknown): Record<string, unknown> {
  if (typeof value === 'string') {
    try {
      const parsed = parseDuckJson(value);
      return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function checkProcess(process: unknown): string {
  if (typeof process !== 'string' || process.length === 0) {
    throw new QueryRefusedError('give the process (its id) the question is about');
  }
  return process;
}

/** What of a question's options its queries take: the scope and the limits. */
const SCOPE_KEYS = ['process', 'begin', 'end', 'timeoutMs', 'timeLimit', 'signal'];

function scopeOf(
  options: Pick<QueryScope, 'process' | 'begin' | 'end' | 'timeoutMs' | 'timeLimit' | 'signal'>,
): QueryScope {
  return Object.fromEntries(
    Object.entries(options).filter(([k, v]) => v !== undefined && SCOPE_KEYS.includes(k)),
  );
}
