import { DorsalError } from '../errors.js';

/** One line for a failure: the message of a typed error, the stack of anything else. */
export function describeFailure(error: unknown): string {
  if (error instanceof DorsalError) return `dorsal: ${error.message} (${error.code})`;
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') {
    return `dorsal: ${error.message}`;
  }
  return `dorsal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
}
