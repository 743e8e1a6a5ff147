import { MAX_TREE_DEPTH, type MessageTree, type TreeNode } from '../analytics/questions.js';
import { duration, esc } from './format.js';

const W = 900;
const LABEL_W = 260;
const ROW_H = 20;
const TOP = 24;

/** One row of a tree's timeline: a message and one actor that handled it (or none). */
interface Row {
  readonly depth: number;
  readonly node: TreeNode;
  readonly handler?: TreeNode['handled'][number];
}

/**
 * Rows in the tree's order, depth first: a message handled by two actors takes two rows. Also
 * the messages below the levels a tree keeps (`TreeNode.cut`), which have no row.
 */
function rowsOf(root: TreeNode): { rows: Row[]; cut: number } {
  const rows: Row[] = [];
  let cut = 0;
  // An explicit stack: a tree is kept up to 256 levels deep.
  const stack: { node: TreeNode; depth: number }[] = [{ node: root, depth: 0 }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { node, depth } = top;
    cut += node.cut ?? 0;
    if (node.handled.length === 0) rows.push({ depth, node });
    for (const handler of node.handled) rows.push({ depth, node, handler });
    for (let i = node.children.length - 1; i >= 0; i--)
      stack.push({ node: node.children[i]!, depth: depth + 1 });
  }
  return { rows, cut };
}

/** Rows drawn at most per tree (the rest are counted below it). */
const MAX_ROWS = 200;

/**
 * A message tree as a Gantt chart from its origin to its last handler's end: a row per message
 * and handling actor, each a queue wait (`data-kind="wait"`: from its publish to the handler's
 * start) then the handler (`data-kind="handler"`); a message nobody handled is a tick at its
 * publish (`data-kind="publish"`).
 */
export function treeTimeline(tree: MessageTree, index: number): string {
  const { rows: all, cut } = rowsOf(tree.root);
  const rows = all.slice(0, MAX_ROWS);
  const span = Math.max(tree.latencyNs, 1);
  const plotW = W - LABEL_W - 16;
  const x = (ns: number) => LABEL_W + (Math.max(0, ns) / span) * plotW;
  const height = TOP + rows.length * ROW_H + 8;
  const parts = [
    `<svg class="timeline" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" data-timeline="${index}" data-rows="${rows.length}" role="img" aria-label="timeline of ${esc(`${tree.root.stream} #${tree.root.seq}`)}">`,
  ];
  for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
    const at = LABEL_W + fraction * plotW;
    parts.push(
      `<line class="grid" x1="${at}" y1="${TOP - 6}" x2="${at}" y2="${height}"/><text class="tick" x="${at}" y="${TOP - 10}" text-anchor="${fraction === 1 ? 'end' : 'middle'}">+${esc(duration(fraction * span))}</text>`,
    );
  }
  rows.forEach((row, i) => {
    const y = TOP + i * ROW_H;
    const { node, handler } = row;
    const label = `${node.stream} #${node.seq}${handler === undefined ? '' : ` → ${handler.actor}`}`;
    parts.push(
      `<text class="row-label" x="${6 + row.depth * 12}" y="${y + 14}">${esc(label.length > 36 ? `${label.slice(0, 35)}…` : label)}</text>`,
    );
    const publish = x(node.publishNs);
    if (handler === undefined) {
      parts.push(
        `<rect data-kind="publish" x="${(publish - 1.5).toFixed(1)}" y="${y + 3}" width="3" height="${ROW_H - 6}"><title>${esc(`${node.stream} #${node.seq} published by ${node.actor ?? '?'} at +${duration(node.publishNs)}`)}</title></rect>`,
      );
      return;
    }
    const start = x(handler.startNs);
    const end = x(handler.endNs);
    parts.push(
      `<rect data-kind="wait" x="${publish.toFixed(1)}" y="${y + 5}" width="${Math.max(0.5, start - publish).toFixed(1)}" height="${ROW_H - 10}"><title>${esc(`${node.stream} #${node.seq} waited ${duration(handler.startNs - node.publishNs)} in its queue for ${handler.actor}`)}</title></rect>`,
      `<rect data-kind="handler" x="${start.toFixed(1)}" y="${y + 3}" width="${Math.max(1, end - start).toFixed(1)}" height="${ROW_H - 6}"><title>${esc(`${handler.actor} handled ${node.stream} #${node.seq} in ${duration(handler.processingNs)} (done at +${duration(handler.endNs)})`)}</title></rect>`,
    );
  });
  parts.push('</svg>');
  const notDrawn = [
    ...(all.length > rows.length ? [`${all.length - rows.length} more rows`] : []),
    ...(cut > 0
      ? [`${cut} message${cut === 1 ? '' : 's'} below the ${MAX_TREE_DEPTH} levels a tree keeps`]
      : []),
  ];
  const more = notDrawn.length > 0 ? `<p class="note">${notDrawn.join(' and ')} not drawn.</p>` : '';
  return parts.join('') + more;
}

/**
 * The slowest trees: a list to click (`data-tree`), and each tree's timeline, the first shown,
 * the others hidden until their row is clicked.
 */
export function slowestTrees(trees: readonly MessageTree[]): string {
  if (trees.length === 0) return '<p class="note">No message tree in this process.</p>';
  const list = trees
    .map(
      (t, i) =>
        `<li><button type="button" data-tree="${i}"${i === 0 ? ' aria-pressed="true"' : ''}><b>${esc(duration(t.latencyNs))}</b> ${esc(`${t.root.stream} #${t.root.seq}`)} <span class="dim">${t.nodes} messages${t.missingParent ? ', root’s parent not in the lake' : ''}</span></button></li>`,
    )
    .join('');
  const timelines = trees
    .map(
      (t, i) =>
        `<div class="tree" data-tree-view="${i}"${i === 0 ? '' : ' hidden'}><h3>${esc(`${t.root.stream} #${t.root.seq}`)}: ${t.nodes} messages, ${esc(duration(t.latencyNs))} from origin to leaf</h3>${treeTimeline(t, i)}</div>`,
    )
    .join('');
  return `<div class="trees"><ol class="tree-list">${list}</ol><div class="tree-views"><p class="legend"><span class="key"><i class="wait"></i>queue wait</span><span class="key"><i class="handler"></i>handler</span><span class="key"><i class="publish"></i>published, not handled</span></p>${timelines}</div></div>`;
}
