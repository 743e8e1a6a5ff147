/**
 * A handler or an actor's `loopBody` runs to its end before the next message: an `async` one
 * returns a promise at its first `await`, and what it does after (and whether it throws) happens
 * outside the consume loop, timed by nobody, counted nowhere. Such a return is refused as a throw
 * of the call that returned it (counted `failed`, restartable, naming the stream); the promise
 * itself is let go, its rejection caught (an unhandled one ended the thread, blamed on another).
 */
export function refuseAsync(returned: unknown, what: string): void {
  if (typeof returned !== 'object' && typeof returned !== 'function') return;
  const then = (returned as { then?: unknown } | null)?.then;
  if (typeof then !== 'function') return;
  then.call(returned, undefined, () => {});
  throw new TypeError(
    `${what} returned a promise: it must be synchronous (an async one's work after its first await runs outside the consume loop, untimed, and its errors are counted nowhere)`,
  );
}
