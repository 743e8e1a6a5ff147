import { QueryRefusedError } from './guard.js';

/**
 * `ask`'s answer with `unrecorded::DOUBLE` for the column of `losses` a server of an earlier
 * dorsal lacks (its binder refuses the name), or with `0::DOUBLE` from such a server: none of its
 * losses is counted so.
 */
export function withUnrecorded<T>(ask: (unrecorded: string) => Promise<T>): Promise<T> {
  return ask('unrecorded::DOUBLE').catch((error: unknown) => {
    if (error instanceof QueryRefusedError && /"unrecorded" not found/.test(error.message))
      return ask('0::DOUBLE');
    throw error;
  });
}
