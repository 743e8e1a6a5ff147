/**
 * `dorsal replay --diff` for trees too deep for the analytics' placing (see `MAX_LAKE_DEPTH`): a
 * chain as deep as the run (an actor whose output comes back to it) makes the recursive query take
 * a step per level, each over every message. Here each run is read in pages and placed in this
 * process's memory, in one pass; the comparison is the same, and `compareInLake` is checked
 * against it. A place is a node of a table both runs share (`PlaceTable`): its parent's node and
 * its last step, so that a message costs the same at any depth (~0.5 KB with its fields); a
 * place's text is made only for the divergences shown.
 */

import { pagesOf } from '../telemetry/analytics/paged.js';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { quoteLiteral } from '../telemetry/analytics/sql.js';
import {
  type Divergence,
  type DivergentMessage,
  fieldDifferences,
  parseFields,
  type ReplayDiff,
} from './replay-diff.js';
import { playTimeOf } from './replay-pages.js';
import { inPlayOrder } from './replay-recording.js';
import { ANY_TIME_SPAN, isTimed, type TimeSpan } from './replay-span.js';
import type { PlacedRuns } from './replay-tree.js';

/** A recorded message at its place in the tree (see `PlacedRuns` for what a place is). */
export interface PlacedMessage {
  readonly stream: string;
  readonly seq: number;
  readonly actor: string | null;
  /** Its decoded fields, as JSON text. */
  readonly fields: string;
  readonly publishT: number;
  /** Its parent in the tree; undefined for a root. */
  readonly parent: PlacedMessage | undefined;
  /** Its root's key: `stream:n` for the n-th ingress message of a stream, `~stream:n` for the n-th message of a stream with no ingress ancestor. */
  readonly root: string;
  /** Its index among its parent's children of its stream (and actor, on a shared stream), or its root's n. */
  readonly index: number;
  /** Its place, a node of the runs' `PlaceTable`: its text is the root's key, then `/stream:index` (or `/stream@actor:index`) per step. */
  readonly place: number;
}

/**
 * The places of both runs compared: each a node, its parent's node and its last step (a root's:
 * its key), interned, so that a place is a number and a message at depth n costs no more than one
 * at the root (places as texts grew with the square of a chain's depth: 24,000 deep exhausted the
 * heap). Equal places of the two runs are the same node.
 */
export class PlaceTable {
  private readonly ids = new Map<string, number>();
  private readonly parents: number[] = [];
  private readonly steps: string[] = [];

  /** The node of `step` under `parent` (-1: a root, `step` its key), made if new. */
  of(parent: number, step: string): number {
    const key = `${parent} ${step}`;
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.parents.length;
      this.ids.set(key, id);
      this.parents.push(parent);
      this.steps.push(step);
    }
    return id;
  }

  /** The node of a root's key, if either run has it. */
  root(key: string): number | undefined {
    return this.ids.get(`-1 ${key}`);
  }

  /** A place's text: its root's key, then each step, `/`-separated. */
  text(place: number): string {
    const steps: string[] = [];
    for (let at = place; at >= 0; at = this.parents[at]!) steps.push(this.steps[at]!);
    return steps.reverse().join('/');
  }
}

/** Every message of a process, at its place; and the order in which its roots were published. */
export interface PlacedRun {
  /** By place (a node of the runs' `PlaceTable`). */
  readonly messages: ReadonlyMap<number, PlacedMessage>;
  /** Each ingress root's rank in publication order (all ingress streams together), by its key. */
  readonly rootOrder: ReadonlyMap<string, number>;
}

interface Draft {
  stream: string;
  seq: number;
  actor: string | null;
  fields: string;
  publishT: number;
  parentKey: string | null;
  /** Its step's name: the stream, and the actor on a shared stream. */
  step: string;
  parent: Draft | undefined;
  root: string;
  index: number;
  /** Its node in the `PlaceTable`; -1 until placed. */
  place: number;
}

/**
 * Reads every message of `streams` in one process (in pages, so that a server's row limit cuts
 * nothing) and places each in its tree; `ingress` names the actors whose messages are roots,
 * `shared` the streams several actors may produce, `span` the times that pace the roots' order.
 */
export async function readPlacedRun(
  analytics: AnalyticsQuestions,
  places: PlaceTable,
  process: string,
  streams: readonly string[],
  ingress: readonly string[],
  shared: ReadonlySet<string>,
  span: TimeSpan = ANY_TIME_SPAN,
): Promise<PlacedRun> {
  const byStream = new Map<string, Draft[]>();
  for (const stream of streams) {
    // Page by page into drafts: the rows of a page are dropped as soon as it is read.
    const drafts: Draft[] = [];
    const pages = pagesOf(
      analytics,
      process,
      (after, limit) =>
        `SELECT seq, actor, parent_stream, parent_seq, publish_t::VARCHAR, fields::VARCHAR FROM messages WHERE stream = ${quoteLiteral(stream)} AND seq > ${after} ORDER BY seq LIMIT ${limit}`,
    );
    for await (const rows of pages) {
      for (const r of rows) {
        drafts.push({
          stream,
          seq: Number(r[0]),
          actor: r[1] === null ? null : String(r[1]),
          step: shared.has(stream) ? `${stream}@${r[1] === null ? '?' : String(r[1])}` : stream,
          parentKey: r[2] === null ? null : `${String(r[2])}#${Number(r[3])}`,
          // As text: exact through a server's JSON answer, where a NaN or ±inf would be null (0).
          publishT: playTimeOf([r[4]]),
          fields: String(r[5]),
          parent: undefined,
          root: '',
          index: 0,
          place: -1,
        });
      }
    }
    byStream.set(stream, drafts);
  }
  return placeMessages(places, byStream, new Set(ingress), span);
}

/**
 * Places messages (each stream's in sequence order) in their trees. Ingress messages are numbered
 * per stream in sequence order, and ranked in the order the player plays them (see
 * `playOrderSql`), as `placedSql` does.
 */
function placeMessages(
  places: PlaceTable,
  byStream: ReadonlyMap<string, readonly Draft[]>,
  ingress: ReadonlySet<string>,
  span: TimeSpan,
): PlacedRun {
  const byKey = new Map<string, Draft>();
  for (const drafts of byStream.values()) for (const d of drafts) byKey.set(`${d.stream}#${d.seq}`, d);
  const roots: Draft[] = [];
  const siblings = new Map<string, number>();
  const unrooted = new Map<string, number>();
  for (const [stream, drafts] of byStream) {
    let ingressCount = 0;
    for (const d of drafts) {
      const parent = d.parentKey === null ? undefined : byKey.get(d.parentKey);
      if (d.actor !== null && ingress.has(d.actor)) {
        d.index = ingressCount++;
        d.root = `${stream}:${d.index}`;
        d.place = places.of(-1, d.root);
        roots.push(d);
      } else if (parent === undefined) {
        // No ingress ancestor in the lake: placed by its order in its stream.
        d.index = unrooted.get(d.step) ?? 0;
        unrooted.set(d.step, d.index + 1);
        d.root = `~${d.step}:${d.index}`;
        d.place = places.of(-1, d.root);
      } else {
        d.parent = parent;
        const family = `${d.parentKey}>${d.step}`;
        d.index = siblings.get(family) ?? 0;
        siblings.set(family, d.index + 1);
      }
    }
  }
  const messages = new Map<number, PlacedMessage>();
  const chain: Draft[] = [];
  for (const drafts of byStream.values()) {
    for (const d of drafts) {
      // Up to the nearest placed ancestor, then down (no recursion: chains may be long).
      for (let at: Draft | undefined = d; at !== undefined && at.place < 0; at = at.parent) chain.push(at);
      for (let i = chain.length - 1; i >= 0; i--) {
        const c = chain[i]!;
        c.root = c.parent!.root;
        c.place = places.of(c.parent!.place, `${c.step}:${c.index}`);
      }
      chain.length = 0;
      messages.set(d.place, d as PlacedMessage);
    }
  }
  return { messages, rootOrder: new Map(inPlayOrderOfRoots(roots, span).map((r, i) => [r.root, i])) };
}

/**
 * Ingress roots (each stream's in sequence order) in the player's order: by play time (the
 * greatest timed publish time of their stream so far, within `span`, -inf before the first),
 * then stream (as the playlist sorts them), then seq.
 */
function inPlayOrderOfRoots(roots: readonly Draft[], span: TimeSpan): Draft[] {
  const streamRank = new Map(inPlayOrder(new Set(roots.map((r) => r.stream))).map((s, i) => [s, i]));
  const playTime = new Map<Draft, number>();
  const latest = new Map<string, number>();
  for (const r of roots) {
    let t = latest.get(r.stream) ?? Number.NEGATIVE_INFINITY;
    if (isTimed(r.publishT, span) && r.publishT > t) t = r.publishT;
    latest.set(r.stream, t);
    playTime.set(r, t);
  }
  // Play times are never NaN, but two -inf differ by NaN: compared, not subtracted.
  const compare = (x: number, y: number) => (x < y ? -1 : x > y ? 1 : 0);
  return [...roots].sort(
    (a, b) =>
      compare(playTime.get(a)!, playTime.get(b)!) ||
      streamRank.get(a.stream)! - streamRank.get(b.stream)! ||
      a.seq - b.seq,
  );
}

/** The messages from a message's root down to it. */
export function chainOf(message: PlacedMessage): PlacedMessage[] {
  const chain: PlacedMessage[] = [];
  for (let at: PlacedMessage | undefined = message; at !== undefined; at = at.parent) chain.push(at);
  return chain.reverse();
}
function shown(message: PlacedMessage): DivergentMessage {
  return {
    stream: message.stream,
    seq: message.seq,
    actor: message.actor,
    fields: parseFields(message.fields),
  };
}

interface Found {
  readonly kind: Divergence['kind'];
  readonly recorded: PlacedMessage | undefined;
  readonly replayed: PlacedMessage | undefined;
  readonly fields: Divergence['fields'];
}

/**
 * Compares a replay with its recording, message by message at the same place in the tree:
 * fields compared, times and sequence numbers not. `streams` orders the summary and breaks
 * ties between siblings of different streams; `limit` caps the divergences described.
 */
export function compareRuns(
  places: PlaceTable,
  recorded: PlacedRun,
  replayed: PlacedRun,
  streams: readonly string[],
  limit: number,
): ReplayDiff {
  const counts = new Map<
    string,
    { matched: number; differing: number; onlyRecorded: number; onlyReplayed: number }
  >(streams.map((s) => [s, { matched: 0, differing: 0, onlyRecorded: 0, onlyReplayed: 0 }]));
  const countOf = (stream: string) => {
    let c = counts.get(stream);
    if (c === undefined) {
      c = { matched: 0, differing: 0, onlyRecorded: 0, onlyReplayed: 0 };
      counts.set(stream, c);
    }
    return c;
  };
  const found: Found[] = [];
  for (const [place, mine] of recorded.messages) {
    const twin = replayed.messages.get(place);
    const c = countOf(mine.stream);
    if (twin === undefined) {
      c.onlyRecorded++;
      found.push({ kind: 'only-recorded', recorded: mine, replayed: undefined, fields: [] });
    } else if (twin.fields === mine.fields) c.matched++;
    else {
      const fields = fieldDifferences(mine.fields, twin.fields);
      if (fields.length === 0) c.matched++;
      else {
        c.differing++;
        found.push({ kind: 'differs', recorded: mine, replayed: twin, fields });
      }
    }
  }
  for (const [place, theirs] of replayed.messages) {
    if (recorded.messages.has(place)) continue;
    countOf(theirs.stream).onlyReplayed++;
    found.push({ kind: 'only-replayed', recorded: undefined, replayed: theirs, fields: [] });
  }
  const rank = (root: string) =>
    recorded.rootOrder.get(root) ??
    recorded.rootOrder.size + (replayed.rootOrder.get(root) ?? Number.MAX_SAFE_INTEGER);
  const streamRank = new Map([...counts.keys()].map((s, i) => [s, i]));
  // Root rank, then the path: each step by stream, then index; an ancestor before its descendants
  // (ties in the order found). Each message's key is that path; as a whole per message, the keys
  // of a chain as deep as the run grow with the square of its depth: they are a trie's nodes here,
  // numbered in its order.
  const order = pathOrder(
    found.map((f) => (f.recorded ?? f.replayed)!),
    (m) => (m.parent === undefined ? [rank(m.root)] : [streamRank.get(m.stream) ?? 0, m.index]),
  );
  const keyed = found.map((f) => ({ f, key: order.get((f.recorded ?? f.replayed)!)! }));
  keyed.sort((x, y) => x.key - y.key);
  const divergences = keyed.slice(0, limit).map(({ f }): Divergence => {
    const either = (f.recorded ?? f.replayed)!;
    const chain = chainOf(either);
    const root = chain[0]!;
    const rootRank = rank(either.root);
    return {
      kind: f.kind,
      stream: either.stream,
      place: places.text(either.place),
      ingress: either.root.startsWith('~')
        ? null
        : {
            rank: rootRank,
            stream: root.stream,
            seq: recorded.messages.get(places.root(either.root) ?? -1)?.seq ?? root.seq,
          },
      recorded: f.recorded === undefined ? null : shown(f.recorded),
      replayed: f.replayed === undefined ? null : shown(f.replayed),
      chain: chain.map(shown),
      fields: f.fields,
    };
  });
  const rows = [...counts].map(([stream, c]) => ({ stream, ...c }));
  return {
    diverged: rows.reduce((n, r) => n + r.differing + r.onlyRecorded + r.onlyReplayed, 0),
    streams: rows,
    divergences,
  };
}

interface PathNode {
  readonly step: readonly number[];
  readonly children: Map<string, PathNode>;
  order: number;
}

/**
 * Each message's rank in the lexicographic order of its path (the steps of its chain from the
 * root, each `step(m)`), a prefix first: the paths are put in a trie (messages of equal paths
 * share a node), then numbered depth first, children in the order of their steps.
 */
function pathOrder(
  messages: readonly PlacedMessage[],
  step: (m: PlacedMessage) => readonly number[],
): Map<PlacedMessage, number> {
  const top: PathNode = { step: [], children: new Map(), order: 0 };
  const nodes = new Map<PlacedMessage, PathNode>();
  const chain: PlacedMessage[] = [];
  for (const message of messages) {
    // Up to the nearest ancestor with a node, then down (no recursion: chains may be long).
    for (let at: PlacedMessage | undefined = message; at !== undefined && !nodes.has(at); at = at.parent)
      chain.push(at);
    for (let i = chain.length - 1; i >= 0; i--) {
      const m = chain[i]!;
      const parent = m.parent === undefined ? top : nodes.get(m.parent)!;
      const s = step(m);
      const key = s.join(',');
      let node = parent.children.get(key);
      if (node === undefined) {
        node = { step: s, children: new Map(), order: 0 };
        parent.children.set(key, node);
      }
      nodes.set(m, node);
    }
    chain.length = 0;
  }
  const byStep = (a: PathNode, b: PathNode) => {
    for (let i = 0; i < Math.min(a.step.length, b.step.length); i++) {
      const d = a.step[i]! - b.step[i]!;
      if (d !== 0) return d;
    }
    return a.step.length - b.step.length;
  };
  let next = 0;
  const stack = [...top.children.values()].sort(byStep).reverse();
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    node.order = next++;
    stack.push(...[...node.children.values()].sort(byStep).reverse());
  }
  return new Map(messages.map((m) => [m, nodes.get(m)!.order]));
}

/** Both runs read and placed here, then compared (see `compareRuns`). */
export async function compareInMemory(
  analytics: AnalyticsQuestions,
  runs: PlacedRuns,
  limit: number,
): Promise<ReplayDiff> {
  const places = new PlaceTable();
  const before = await readPlacedRun(
    analytics,
    places,
    runs.recorded,
    runs.streams,
    runs.ingress.recorded,
    runs.shared,
    runs.spans?.recorded,
  );
  const after = await readPlacedRun(
    analytics,
    places,
    runs.replayed,
    runs.streams,
    runs.ingress.replayed,
    runs.shared,
    runs.spans?.replayed,
  );
  return compareRuns(places, before, after, runs.streams, limit);
}
