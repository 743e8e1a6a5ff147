import type { UnreadableBlock } from './query.js';

/** Blocks remembered at most (the oldest are forgotten first: they are read again). */
const MAX_REMEMBERED = 100_000;

/**
 * The blocks an analytics found unreadable (a blob missing or damaged), each left alone for
 * `retryMs` before it is read again: a server looks at the lake every second, and a lake whose
 * blobs are gone would otherwise be read, and fail, block by block at every look (and a merge
 * that needs one of them decode its other blocks again, for nothing).
 */
export class UnreadableBlocks {
  private readonly retryMs: number;
  private readonly now: () => number;
  /** By block id, the oldest first. */
  private readonly known = new Map<string, { readonly block: UnreadableBlock; readonly retryAt: number }>();

  constructor(retryMs: number, now: () => number = () => performance.now()) {
    this.retryMs = retryMs;
    this.now = now;
  }

  /** The block as it was found unreadable, if that was less than `retryMs` ago. */
  recent(blockId: string): UnreadableBlock | undefined {
    const known = this.known.get(blockId);
    if (known === undefined) return undefined;
    if (this.now() < known.retryAt) return known.block;
    this.known.delete(blockId);
    return undefined;
  }

  /** A block found unreadable now. */
  failed(block: UnreadableBlock): void {
    if (this.retryMs <= 0) return;
    this.known.delete(block.blockId);
    this.known.set(block.blockId, { block, retryAt: this.now() + this.retryMs });
    if (this.known.size > MAX_REMEMBERED) this.known.delete(this.known.keys().next().value as string);
  }

  /** A block read after all. */
  read(blockId: string): void {
    this.known.delete(blockId);
  }

  get size(): number {
    return this.known.size;
  }
}
