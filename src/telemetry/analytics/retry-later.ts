/** Entries remembered at most (the oldest are forgotten first: they are tried again). */
const MAX_REMEMBERED = 100_000;

/**
 * What an analytics found failing, by key, each left alone for `retryMs` before it is tried
 * again: a server looks at the lake every second, and a block whose blob is gone (or a merge of
 * partitions that fails the same way each time) would otherwise be tried, and fail, at every look.
 * `T`: what is remembered of each (an unreadable block's row and error, say).
 */
export class RetryLater<T> {
  private readonly retryMs: number;
  private readonly now: () => number;
  /** By key, the oldest first. */
  private readonly known = new Map<string, { readonly value: T; readonly retryAt: number }>();

  constructor(retryMs: number, now: () => number = () => performance.now()) {
    this.retryMs = retryMs;
    this.now = now;
  }

  /** What was remembered of `key` when it failed, if that was less than `retryMs` ago. */
  recent(key: string): T | undefined {
    const known = this.known.get(key);
    if (known === undefined) return undefined;
    if (this.now() < known.retryAt) return known.value;
    this.known.delete(key);
    return undefined;
  }

  /** `key` failed now. */
  failed(key: string, value: T): void {
    if (this.retryMs <= 0) return;
    this.known.delete(key);
    this.known.set(key, { value, retryAt: this.now() + this.retryMs });
    if (this.known.size > MAX_REMEMBERED) this.known.delete(this.known.keys().next().value as string);
  }

  /** `key` went well after all. */
  succeeded(key: string): void {
    this.known.delete(key);
  }

  get size(): number {
    return this.known.size;
  }
}
