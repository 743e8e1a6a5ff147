import { DorsalError } from '../errors.js';
import { printable } from './format.js';

/**
 * One line for a failure: the message of a typed error, the stack of anything else. Made
 * printable: a message may quote recorded data (DuckDB's errors quote the values they fail on),
 * whose escape sequences would reach the terminal.
 */
export function describeFailure(error: unknown): string {
  if (error instanceof DorsalError) return `dorsal: ${printable(error.message)} (${error.code})`;
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') {
    return `dorsal: ${printable(error.message)}`;
  }
  // A stack keeps its lines.
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return `dorsal: ${text.split('\n').map(printable).join('\n')}`;
}
