import { describe, expect, it } from 'vitest';
import { table } from '../src/cli/format.js';
import { diffText } from '../src/cli/replay-text.js';
import { drawMessageTree } from '../src/cli/tree.js';

/** Recorded text a client sent: an escape that clears the screen, one that colours, a line break. */
const EVIL = 'ticks\u001b[2J\u001b[31m\nnext';

/** Whether `text` holds a control character other than the line breaks between its lines. */
const controls = (text: string) =>
  [...text].some((c) => c !== '\n' && (c.charCodeAt(0) < 0x20 || c === '\u007f'));

/** What the commands draw of recorded text holds no control character of its own. */
describe('recorded text, drawn for a terminal', () => {
  it('is escaped in a tree, its head too', () => {
    const root = {
      stream: EVIL,
      seq: 1,
      actor: EVIL,
      fields: { [EVIL]: EVIL },
      publishNs: 0,
      hopNs: 0,
      publishTime: '',
      handled: [{ actor: EVIL, processingNs: 1 }],
      children: [],
    };
    const drawn = drawMessageTree({
      process: 'p',
      originT: 0,
      root,
      nodes: 1,
      latencyNs: 0,
      missingParent: false,
    } as never);
    expect(controls(drawn)).toBe(false);
    expect(drawn.split('\n')).toHaveLength(2);
    expect(drawn).toContain('ticks\\u001b[2J\\u001b[31m\\nnext');
  });

  it('is escaped in a diff: its table, the divergence, its tree and its place', () => {
    const text = diffText({
      diverged: 1,
      streams: [{ stream: EVIL, matched: 0, differing: 1, onlyRecorded: 0, onlyReplayed: 0 }],
      divergences: [
        {
          kind: 'differs',
          stream: EVIL,
          place: `${EVIL}:1`,
          ingress: { rank: 0, stream: EVIL, seq: 1 },
          recorded: { seq: 1 },
          replayed: { seq: 1 },
          chain: [{ stream: EVIL, seq: 1, actor: EVIL, fields: {} }],
          fields: [{ field: EVIL, recorded: EVIL, replayed: 1 }],
        },
      ],
    } as never);
    expect(controls(text)).toBe(false);
    expect(text).toContain('ticks\\u001b[2J');
  });

  it('is escaped in every cell of a table', () => {
    expect(table(['a'], [[EVIL]])).toBe('a\nticks\\u001b[2J\\u001b[31m\\nnext');
  });
});
