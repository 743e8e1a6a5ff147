import { chainOf, type PlacedMessage, type PlacedRun } from './replay-tree.js';

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

/** A message's fields, parsed (their JSON text if it does not parse). */
function parseFields(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null) return value as Record<string, unknown>;
  } catch {}
  return { fields: text };
}

/** The fields whose values differ (none when the texts differ in field order only). */
function fieldDifferences(recorded: string, replayed: string): Divergence['fields'] {
  const a = parseFields(recorded);
  const b = parseFields(replayed);
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return names
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => ({ field: k, recorded: a[k] ?? null, replayed: b[k] ?? null }));
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
  /** Root rank, then the path: each step by stream, then index; an ancestor before its descendants. */
  const sortKey = (message: PlacedMessage): number[] => [
    rank(message.root),
    ...chainOf(message)
      .slice(1)
      .flatMap((m) => [streamRank.get(m.stream) ?? 0, m.index]),
  ];
  const keyed = found.map((f) => ({ f, key: sortKey((f.recorded ?? f.replayed)!) }));
  keyed.sort((x, y) => {
    for (let i = 0; i < Math.min(x.key.length, y.key.length); i++) {
      const d = x.key[i]! - y.key[i]!;
      if (d !== 0) return d;
    }
    return x.key.length - y.key.length;
  });
  const divergences = keyed.slice(0, limit).map(({ f }): Divergence => {
    const either = (f.recorded ?? f.replayed)!;
    const chain = chainOf(either);
    const root = chain[0]!;
    const rootRank = rank(either.root);
    return {
      kind: f.kind,
      stream: either.stream,
      place: either.place,
      ingress: either.root.startsWith('~')
        ? null
        : { rank: rootRank, stream: root.stream, seq: recorded.messages.get(either.root)?.seq ?? root.seq },
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
