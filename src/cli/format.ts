/** How the commands print for people: tables, durations, colour on a terminal only, trees. */
import { count } from '../telemetry/views/format.js';

/** True when standard output is a terminal that takes colour (and NO_COLOR is not set). */
export const COLOUR = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;

const paint = (code: number) => (text: string) => (COLOUR ? `\x1b[${code}m${text}\x1b[0m` : text);
export const bold = paint(1);
export const dim = paint(2);
export const red = paint(31);
export const green = paint(32);
export const yellow = paint(33);
export const cyan = paint(36);

/** Visible width of a string (colour codes take none). */
function width(text: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the escape of a colour code
  return text.replace(/\x1b\[[0-9;]*m/g, '').length;
}

const NUMERIC = /^(?:[-+]?[\d,]*\.?\d+(?: [nµm]?s)?|—)$/;

/**
 * A table: a header row and rows, columns padded; numbers (and durations) right-aligned. The rows'
 * cells are recorded text (a process's exe, an actor's or a stream's name), printed `printable`.
 */
export function table(headings: readonly string[], cells: readonly (readonly string[])[]): string {
  // Headings too may be recorded text (a query's column names quote its data).
  const header = headings.map(printable);
  const rows = cells.map((r) => r.map(printable));
  // A loop, not Math.max(...rows): spread, a few hundred thousand rows overflowed the stack.
  const widths = header.map((h, i) => {
    let widest = width(h);
    for (const r of rows) widest = Math.max(widest, width(r[i] ?? ''));
    return widest;
  });
  // A column of numbers (a count, a duration: `1,234`, `3.07 ms`) is right-aligned.
  const right = header.map((_, i) => rows.length > 0 && rows.every((r) => NUMERIC.test(r[i] ?? '—')));
  const line = (cells: readonly string[], style = (t: string) => t) =>
    cells
      .map((cell, i) => {
        const pad = ' '.repeat(Math.max(0, widths[i]! - width(cell)));
        return right[i] ? pad + style(cell) : style(cell) + pad;
      })
      .join('  ')
      .trimEnd();
  return [line(header, bold), ...rows.map((r) => line(r))].join('\n');
}

export { count, duration } from '../telemetry/views/format.js';

/** `n` (grouped as `count` does) and the noun that goes with it: `1 message`, `2 messages`. */
export function counted(n: number, one: string, many: string): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}

const BARS = '▁▂▃▄▅▆▇█';

/** A small histogram: one bar per bucket, heights relative to the fullest. */
export function sparkline(counts: readonly number[]): string {
  const max = Math.max(...counts, 1);
  return counts
    .map((c) => (c === 0 ? ' ' : BARS[Math.min(BARS.length - 1, Math.floor((c / max) * (BARS.length - 1)))]))
    .join('');
}

/** Fields of a message, abridged to `max` characters: `{symbol: ACME, bid: 100.01, …}`. */
export function abridge(fields: Readonly<Record<string, unknown>>, max = 60): string {
  const parts = Object.entries(fields).map(
    // An integer exactly (a count, an id: 1039399 is no 1039400); a fraction as `fraction` has it.
    ([k, v]) =>
      `${printable(k)}: ${typeof v === 'number' ? (Number.isInteger(v) ? String(v) : fraction(v)) : printable(String(v))}`,
  );
  let text = `{${parts.join(', ')}}`;
  if (text.length > max) text = `${text.slice(0, max - 2)}…}`;
  return text;
}

/**
 * A number that is no integer, short: to 6 significant digits, but its integer part whole
 * (123456789.5 is 123456789.5, not 123457000) and always with a point or an exponent (12345.99999
 * is 12346.0, not 12346): rounded to 6 digits, a fraction read as an exact integer.
 */
function fraction(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const whole = String(Math.trunc(Math.abs(v)));
  const digits = Math.max(6, whole === '0' ? 0 : whole.length + 1);
  // Trailing zeros of the fraction dropped, one kept: 2.50000 is 2.5, 2.00000 is 2.0.
  const [mantissa = '', exponent] = v.toPrecision(digits).split('e');
  const short = mantissa.includes('.') ? mantissa.replace(/0+$/, '').replace(/\.$/, '.0') : mantissa;
  return exponent === undefined ? short : `${short}e${exponent}`;
}

/**
 * Recorded text made safe to print on a terminal: control characters (an escape sequence, a
 * line break that would split a row) as JSON writes them, `\u001b`, `\n`.
 */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it escapes
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) =>
    c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** A node of a drawn tree: its line, and its children. */
export interface DrawnNode {
  readonly line: string;
  readonly children: readonly DrawnNode[];
}

/**
 * A tree drawn with box-drawing lines, one node per line. Below `maxIndent` levels, lines are
 * indented no further (a chain thousands deep, each level a step more, would be drawn in a
 * number of characters that grows with the square of its depth).
 */
export function drawTree(root: DrawnNode, maxIndent = Number.POSITIVE_INFINITY): string {
  const lines = [root.line];
  // Depth first with a stack of our own: a chain may be thousands deep.
  const stack: { node: DrawnNode; prefix: string; last: boolean; depth: number }[] = [];
  const push = (node: DrawnNode, prefix: string, depth: number) => {
    for (let i = node.children.length - 1; i >= 0; i--) {
      stack.push({ node: node.children[i]!, prefix, last: i === node.children.length - 1, depth });
    }
  };
  push(root, '', 1);
  for (let at = stack.pop(); at !== undefined; at = stack.pop()) {
    lines.push(`${at.prefix}${at.last ? '└─ ' : '├─ '}${at.node.line}`);
    const deeper = at.depth < maxIndent ? `${at.prefix}${at.last ? '   ' : '│  '}` : at.prefix;
    push(at.node, deeper, at.depth + 1);
  }
  return lines.join('\n');
}

/** Prints `value` as indented JSON on standard output (or on `to`). */
export function printJson(value: unknown, to: NodeJS.WritableStream = process.stdout): void {
  to.write(`${JSON.stringify(value, null, 2)}\n`);
}
