import { count, esc, short } from './format.js';
import type { ReportData } from './report-data.js';

const COLUMN_W = 220;
const ROW_H = 64;
const NODE_W = 120;
const NODE_H = 30;

interface Node {
  readonly id: string;
  readonly kind: 'actor' | 'stream';
  readonly name: string;
  rank: number;
  x: number;
  y: number;
}

/**
 * The system as a graph: actors (boxes) publish to streams (pills) that actors consume. Each edge
 * carries its message count and mean rate over the run (`data-count`, `data-rate`: none for a run of one time), and a
 * consuming edge the sequences its actor skipped (`data-lost`, red when not 0) and what its
 * consumer counted as lost (`data-lapped`, when the run's counts are in the lake). A stream the
 * persister lost records of says so under its name.
 */
export function topologySvg(data: ReportData): string {
  const { produced, consumed, persister } = data.topology;
  const seconds = (data.time.endNs - data.time.beginNs) / 1e9;
  // A run of one time tells no rate: the edge says its count instead (one message was 1 G/s).
  const label = (n: number) => (data.time.spanned ? `${short(n / seconds)}/s` : `${count(n)} msg`);
  const rate = (n: number) => (data.time.spanned ? ` data-rate="${(n / seconds).toFixed(3)}"` : '');
  const nodes = new Map<string, Node>();
  const node = (kind: Node['kind'], name: string): Node => {
    const id = `${kind}:${name}`;
    let found = nodes.get(id);
    if (found === undefined) {
      found = { id, kind, name, rank: 0, x: 0, y: 0 };
      nodes.set(id, found);
    }
    return found;
  };
  for (const e of produced) {
    node('actor', e.actor);
    node('stream', e.stream);
  }
  for (const e of consumed) {
    node('stream', e.stream);
    node('actor', e.actor);
  }
  // Ranks by longest path from the actors that consume nothing; a cycle stops growing after |nodes| rounds.
  for (let round = 0; round < nodes.size; round++) {
    let changed = false;
    for (const e of produced) {
      const from = node('actor', e.actor);
      const to = node('stream', e.stream);
      if (to.rank < from.rank + 1) {
        to.rank = from.rank + 1;
        changed = true;
      }
    }
    for (const e of consumed) {
      const from = node('stream', e.stream);
      const to = node('actor', e.actor);
      if (to.rank < from.rank + 1) {
        to.rank = from.rank + 1;
        changed = true;
      }
    }
    if (!changed) break;
  }
  const columns = new Map<number, Node[]>();
  for (const n of nodes.values()) columns.set(n.rank, [...(columns.get(n.rank) ?? []), n]);
  const tallest = Math.max(1, ...[...columns.values()].map((c) => c.length));
  const width = Math.max(1, columns.size) * COLUMN_W + 40;
  const height = tallest * ROW_H + 40;
  for (const [rank, column] of columns) {
    column.sort((a, b) => a.name.localeCompare(b.name));
    column.forEach((n, i) => {
      n.x = 20 + rank * COLUMN_W;
      n.y = 20 + (height - 40 - column.length * ROW_H) / 2 + i * ROW_H + (ROW_H - NODE_H) / 2;
    });
  }
  // Summed by name: two threads' streams may share one (an actor named as the main thread).
  const lostOf = new Map<string, number>();
  // What the lake holds of neither is missing from the picture too.
  for (const p of persister)
    lostOf.set(p.stream, (lostOf.get(p.stream) ?? 0) + p.lost + p.dropped + p.unrecorded);
  const parts = [
    `<svg class="topology" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" data-chart="topology" data-nodes="${nodes.size}" role="img" aria-label="topology">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#888"/></marker></defs>',
  ];
  const edge = (from: Node, to: Node, n: number, lost: number, firstSeq?: number, lapped?: number | null) => {
    const x1 = from.x + NODE_W;
    const y1 = from.y + NODE_H / 2;
    const x2 = to.x - 2;
    const y2 = to.y + NODE_H / 2;
    const bend = Math.max(30, (x2 - x1) / 2);
    const timingsLost = lostOf.get(`timings:${to.name}`) ?? 0;
    const why =
      to.kind === 'actor' && lost > 0 && timingsLost > 0
        ? ` (the persister lost ${count(timingsLost)} of ${to.name}'s timing records: some of these are those)`
        : '';
    parts.push(
      `<g class="edge${lost > 0 ? ' lossy' : ''}" data-from="${esc(from.id)}" data-to="${esc(to.id)}" data-count="${n}"${rate(n)} data-lost="${lost}"${firstSeq === undefined ? '' : ` data-first-seq="${firstSeq}"`}${lapped === undefined || lapped === null ? '' : ` data-lapped="${lapped}"`}><path d="M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}" marker-end="url(#arrow)"/><text x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2 - 5}" text-anchor="middle">${esc(label(n))}</text>${lost > 0 ? `<text x="${(x1 + x2) / 2}" y="${(y1 + y2) / 2 + 13}" text-anchor="middle">${esc(`${count(lost)} skipped`)}</text>` : ''}<title>${esc(`${from.name} → ${to.name}: ${count(n)} messages${lost > 0 ? `, ${count(lost)} sequences skipped${why}` : ''}${lapped ? `, ${count(lapped)} lost by ${to.name}'s consumer` : ''}`)}</title></g>`,
    );
  };
  for (const e of produced) edge(node('actor', e.actor), node('stream', e.stream), e.count, 0);
  for (const e of consumed)
    edge(node('stream', e.stream), node('actor', e.actor), e.count, e.gaps, e.firstSeq, e.lapped);
  for (const n of nodes.values()) {
    const lost = n.kind === 'stream' ? (lostOf.get(n.name) ?? 0) : 0;
    const radius = n.kind === 'stream' ? NODE_H / 2 : 4;
    parts.push(
      `<g class="node ${n.kind}" data-node="${esc(n.id)}"><rect x="${n.x}" y="${n.y}" width="${NODE_W}" height="${NODE_H}" rx="${radius}"/><text x="${n.x + NODE_W / 2}" y="${n.y + NODE_H / 2 + 4}" text-anchor="middle">${esc(n.name.length > 16 ? `${n.name.slice(0, 15)}…` : n.name)}</text>${lost > 0 ? `<text class="lost" x="${n.x + NODE_W / 2}" y="${n.y + NODE_H + 12}" text-anchor="middle">persister lost ${count(lost)}</text>` : ''}</g>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}
