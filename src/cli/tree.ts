import { Command, InvalidArgumentError } from 'commander';
import type { MessageTree, TreeNode } from '../telemetry/analytics/questions.js';
import {
  abridge,
  bold,
  counted,
  cyan,
  type DrawnNode,
  dim,
  drawTree,
  duration,
  printable,
  printJson,
  yellow,
} from './format.js';
import { integer } from './options.js';
import { resolveProcess, type SourceOptions, withSource, withSourceOptions } from './source.js';

interface TreeOptions extends SourceOptions {
  readonly slowest?: number;
  readonly message?: { stream: string; seq: number };
}

/** `STREAM:SEQ`, e.g. `orders:42`. */
function messageRef(value: string): { stream: string; seq: number } {
  const at = value.lastIndexOf(':');
  // Decimal digits only: Number() reads '' as 0, '0x10' as 16 and ' 7' as 7.
  const digits = value.slice(at + 1);
  const seq = /^[0-9]+$/.test(digits) ? Number(digits) : Number.NaN;
  if (at <= 0 || !Number.isSafeInteger(seq)) {
    throw new InvalidArgumentError('expected STREAM:SEQ, e.g. orders:42');
  }
  return { stream: value.slice(0, at), seq };
}

function drawnNode(node: TreeNode): DrawnNode {
  const handled = node.handled.map((h) => `${printable(h.actor)} ${duration(h.processingNs)}`).join(', ');
  const hop =
    node.hopNs === 0 && node.publishNs === 0 ? '' : ` ${dim('hop')} ${yellow(duration(node.hopNs))}`;
  return {
    line: `${bold(`${printable(node.stream)} #${node.seq}`)} ${cyan(printable(node.actor ?? '?'))} ${abridge(node.fields)} ${dim('at')} +${duration(node.publishNs)}${hop}${handled ? ` ${dim(`handled by ${handled}`)}` : ''}`,
    children:
      node.cut === undefined
        ? node.children.map(drawnNode)
        : [
            {
              line: dim(`… ${node.cut.toLocaleString('en-US')} more messages below, not drawn`),
              children: [],
            },
          ],
  };
}

/** A tree, drawn: its root line says the tree's latency and size. */
export function drawMessageTree(tree: MessageTree): string {
  const head = `${dim('tree of')} ${printable(tree.root.stream)} #${tree.root.seq}: ${counted(tree.nodes, 'message', 'messages')}, latency ${yellow(duration(tree.latencyNs))}${tree.missingParent ? dim(' (its parent is not in the lake)') : ''}`;
  return `${head}\n${drawTree(drawnNode(tree.root))}`;
}

/** `dorsal tree`: message trees drawn as trees. */
export function treeCommand(): Command {
  return withSourceOptions(
    new Command('tree')
      .description('draw message trees: the slowest ones, or the tree of one message')
      .option('--slowest <n>', 'the n trees with the largest latency (default 1)', integer(1, 1000))
      .option('--message <stream:seq>', 'the tree of this message, e.g. orders:42', messageRef)
      .addHelpText('after', '\nExamples:\n  $ dorsal tree --slowest 3\n  $ dorsal tree --message orders:42'),
  ).action(async (options: TreeOptions) => {
    if (options.slowest !== undefined && options.message !== undefined) {
      throw new InvalidArgumentError('give --slowest N or --message STREAM:SEQ, not both');
    }
    await withSource(options, async (source) => {
      const process = await resolveProcess(source, options.process);
      const trees =
        options.message === undefined
          ? await source.analytics.slowestTrees({ process: process.processId, n: options.slowest ?? 1 })
          : [await source.analytics.tree({ process: process.processId, ...options.message })];
      if (options.json) return printJson(trees);
      if (trees.length === 0)
        return console.log(dim(`process ${process.processId} recorded no handled message`));
      console.log(trees.map(drawMessageTree).join('\n\n'));
    });
  });
}
