import type { Spine } from '../spine/index.js';

/**
 * Waits until `threadsIdle()` holds, every consumer of every stream and timing queue has read
 * all, and no stream moved for two checks in a row: what a graceful stop waits for before it
 * tells threads to exit. Resolves false if that does not happen within `timeoutMs`.
 * `gone()`: the owner tags of consumers whose threads ended and will not read again (a worker
 * dead without giving its entries back): their lag is what they left unread, not work to wait for.
 */
export async function untilQuiet(
  spine: Spine,
  threadsIdle: () => boolean,
  timeoutMs: number,
  gone: () => ReadonlySet<number> = () => new Set(),
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let previous = '';
  let calm = 0;
  while (Date.now() < deadline) {
    const idle = threadsIdle();
    const ended = gone();
    const streams = spine.names.map((_, i) => spine.queue(i).stats());
    // Observers of timing queues drain too: the last handlers' records are read before exit.
    const timings = [...spine.timings.values()].map((q) => q.stats());
    const caughtUp = [...streams, ...timings].every((s) =>
      s.consumers.every((c) => c.lag === 0 || ended.has(c.owner)),
    );
    const heads = streams.map((s) => s.published).join(',');
    calm = idle && caughtUp && heads === previous ? calm + 1 : 0;
    if (calm >= 2) return true;
    previous = heads;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}
