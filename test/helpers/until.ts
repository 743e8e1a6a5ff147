/**
 * Waits until `condition()` holds, polling every few ms; throws naming `what` after `timeoutMs`.
 * Tests wait for what they need to have happened instead of sleeping for a guessed duration:
 * on a loaded 2-core machine a thread may not run for hundreds of ms.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
