/** What asks a command that runs a system to stop: Ctrl-C, `kill`'s default, a terminal closed. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Listens for the stop signals until the function returned is called. The first calls `stop`: the
 * command then stops its system gracefully, which flushes what it recorded to the lake (ended by
 * Node's default instead, a run left messages in the lake whose parents were never flushed, and
 * counted nothing lost). Another signal while it stops ends the process at once by that signal, as
 * the default would, saying first that what was not flushed is lost.
 */
export function listenForStop(stop: (signal: NodeJS.Signals) => void): () => void {
  let asked = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (!asked) {
      asked = true;
      stop(signal);
      return;
    }
    release();
    process.stderr.write(
      `\ndorsal: ended by ${signal} while stopping: what was not flushed to the lake is lost\n`,
    );
    process.kill(process.pid, signal);
  };
  const release = () => {
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  return release;
}
