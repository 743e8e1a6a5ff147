/** How a replay's diff reads for people: the per-stream table, then the first divergences. */
import {
  abridge,
  bold,
  count,
  cyan,
  type DrawnNode,
  dim,
  drawTree,
  green,
  printable,
  red,
  table,
  yellow,
} from './format.js';
import type { Divergence, DivergentMessage, ReplayDiff } from './replay-diff.js';

/** `17th`, `1st`, `112th`. */
function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${count(n)}${suffix}`;
}

function value(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Levels of a chain drawn each indented one step more; the deeper ones line up below them. */
const CHAIN_INDENT = 64;

/** The chain from the root to the divergent message, drawn as a tree; the last line is the message. */
function drawChain(chain: readonly DivergentMessage[], mark: string): string {
  const line = (m: DivergentMessage, last: boolean) =>
    `${bold(`${printable(m.stream)} #${m.seq}`)} ${cyan(printable(m.actor ?? '?'))} ${abridge(m.fields)}${last ? ` ${mark}` : ''}`;
  let node: DrawnNode | undefined;
  for (let i = chain.length - 1; i >= 0; i--) {
    node = { line: line(chain[i]!, i === chain.length - 1), children: node === undefined ? [] : [node] };
  }
  if (node === undefined) return '';
  const drawn = drawTree(node, CHAIN_INDENT);
  return chain.length > CHAIN_INDENT + 1
    ? `${dim(`(${count(chain.length)} messages deep: from the ${ordinal(CHAIN_INDENT + 1)} down, each below the one before)`)}\n${drawn}`
    : drawn;
}

function indent(text: string, by = '   '): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

/** One divergence: what it is, in which tree, the chain down to it, and the fields that differ. */
function describe(d: Divergence, n: number): string {
  const tree =
    d.ingress === null
      ? 'in no ingress message’s tree'
      : `in the tree of the ${ordinal(d.ingress.rank + 1)} ingress message, ${printable(d.ingress.stream)} #${d.ingress.seq}`;
  const head =
    d.kind === 'differs'
      ? `${printable(d.stream)} #${d.recorded!.seq} differs from its replayed twin #${d.replayed!.seq}`
      : d.kind === 'only-recorded'
        ? `${printable(d.stream)} #${d.recorded!.seq} was recorded, and not replayed`
        : `${printable(d.stream)} #${d.replayed!.seq} was replayed, and not recorded`;
  const mark = red(
    d.kind === 'differs' ? '← differs' : d.kind === 'only-recorded' ? '← recorded only' : '← replayed only',
  );
  const lines = [
    `${bold(`${n}.`)} ${head} ${dim(`(${tree}; at ${printable(d.place)})`)}`,
    indent(drawChain(d.chain, mark)),
  ];
  if (d.fields.length > 0) {
    lines.push(
      indent(
        table(
          ['field', 'recorded', 'replayed'],
          d.fields.map((f) => [f.field, value(f.recorded), value(f.replayed)]),
        ),
      ),
    );
  }
  return lines.join('\n');
}

/**
 * The diff as text: a table per stream, then the verdict and the first divergences. `incomplete`:
 * what the recording lost, said just before the verdict (see `incompleteNote`).
 */
export function diffText(diff: ReplayDiff, incomplete?: string): string {
  const lines = [
    bold('the replay against the recording, message by message at the same place in the tree'),
    table(
      ['stream', 'matched', 'differing', 'only recorded', 'only replayed'],
      diff.streams.map((s) => [
        s.stream,
        count(s.matched),
        count(s.differing),
        count(s.onlyRecorded),
        count(s.onlyReplayed),
      ]),
    ),
    '',
  ];
  if (incomplete !== undefined) lines.push(yellow(incomplete));
  if (diff.diverged === 0) {
    lines.push(green('no divergence: the replay produced what was recorded'));
    return lines.join('\n');
  }
  const shown = diff.divergences.length;
  lines.push(
    red(
      `${count(diff.diverged)} message${diff.diverged === 1 ? '' : 's'} diverged${shown < diff.diverged ? `; the first ${shown}:` : ':'}`,
    ),
  );
  diff.divergences.forEach((d, i) => {
    lines.push('', describe(d, i + 1));
  });
  return lines.join('\n');
}
