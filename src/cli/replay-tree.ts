import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { quoteLiteral } from '../telemetry/analytics/sql.js';
import { pagesOf } from './paged.js';

/**
 * A recorded message at its place in the tree: the ingress message it descends from and the path
 * from it, each step a stream and the message's index among its parent's children of that stream
 * (in publication order), e.g. `ticks:17/books:0/orders:1`. On a stream several actors produce
 * (multi-producer), a step names the actor too (`orders@bidder:0`): siblings from two threads
 * interleave as the threads run, each actor's own in the order it published them. Two runs fed
 * the same ingress messages put a deterministic system's outputs at the same places, whatever the
 * threads' timing.
 */
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
  /** Its place: the root's key, then `/stream:index` (or `/stream@actor:index`) per step. */
  readonly place: string;
}

/** Every message of a process, at its place; and the order in which its roots were published. */
export interface PlacedRun {
  /** By place. */
  readonly messages: ReadonlyMap<string, PlacedMessage>;
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
  place: string;
}

/**
 * Reads every message of `streams` in one process (in pages, so that a server's row limit cuts
 * nothing) and places each in its tree; `ingress` names the actors whose messages are roots,
 * `shared` the streams several actors may produce.
 */
export async function readPlacedRun(
  analytics: AnalyticsQuestions,
  process: string,
  streams: readonly string[],
  ingress: readonly string[],
  shared: ReadonlySet<string>,
): Promise<PlacedRun> {
  const byStream = new Map<string, Draft[]>();
  for (const stream of streams) {
    // Page by page into drafts: the rows of a page are dropped as soon as it is read.
    const drafts: Draft[] = [];
    const pages = pagesOf(
      analytics,
      process,
      (after, limit) =>
        `SELECT seq, actor, parent_stream, parent_seq, publish_t, fields::VARCHAR FROM messages WHERE stream = ${quoteLiteral(stream)} AND seq > ${after} ORDER BY seq LIMIT ${limit}`,
    );
    for await (const rows of pages) {
      for (const r of rows) {
        drafts.push({
          stream,
          seq: Number(r[0]),
          actor: r[1] === null ? null : String(r[1]),
          step: shared.has(stream) ? `${stream}@${r[1] === null ? '?' : String(r[1])}` : stream,
          parentKey: r[2] === null ? null : `${String(r[2])}#${Number(r[3])}`,
          publishT: Number(r[4]),
          fields: String(r[5]),
          parent: undefined,
          root: '',
          index: 0,
          place: '',
        });
      }
    }
    byStream.set(stream, drafts);
  }
  return placeMessages(byStream, new Set(ingress));
}

/** Places messages (each stream's in sequence order) in their trees. */
function placeMessages(
  byStream: ReadonlyMap<string, readonly Draft[]>,
  ingress: ReadonlySet<string>,
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
        d.place = d.root;
        roots.push(d);
      } else if (parent === undefined) {
        // No ingress ancestor in the lake: placed by its order in its stream.
        d.index = unrooted.get(d.step) ?? 0;
        unrooted.set(d.step, d.index + 1);
        d.root = `~${d.step}:${d.index}`;
        d.place = d.root;
      } else {
        d.parent = parent;
        const family = `${d.parentKey}>${d.step}`;
        d.index = siblings.get(family) ?? 0;
        siblings.set(family, d.index + 1);
      }
    }
  }
  const messages = new Map<string, PlacedMessage>();
  const chain: Draft[] = [];
  for (const drafts of byStream.values()) {
    for (const d of drafts) {
      // Up to the nearest placed ancestor, then down (no recursion: chains may be long).
      for (let at: Draft | undefined = d; at !== undefined && at.place === ''; at = at.parent) chain.push(at);
      for (let i = chain.length - 1; i >= 0; i--) {
        const c = chain[i]!;
        c.root = c.parent!.root;
        c.place = `${c.parent!.place}/${c.step}:${c.index}`;
      }
      chain.length = 0;
      messages.set(d.place, d as PlacedMessage);
    }
  }
  roots.sort((a, b) => a.publishT - b.publishT || a.stream.localeCompare(b.stream) || a.seq - b.seq);
  return { messages, rootOrder: new Map(roots.map((r, i) => [r.root, i])) };
}

/** The messages from a message's root down to it. */
export function chainOf(message: PlacedMessage): PlacedMessage[] {
  const chain: PlacedMessage[] = [];
  for (let at: PlacedMessage | undefined = message; at !== undefined; at = at.parent) chain.push(at);
  return chain.reverse();
}
