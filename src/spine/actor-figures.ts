/**
 * An actor's figures in shared memory: what its adapter counted per stream, where its system can
 * read them once the actor's thread has ended without a report (terminated at a stop), with the
 * consumer entries its adapter tagged. See `SpineAdapter`'s `figures`.
 */

/**
 * Numbers per stream in an adapter's figures (see `SpineAdapter`'s `figures`), and their places:
 * handled, skipped, failed, lost and poisoned (as its consumer counted them), and the stream's
 * published count when this adapter's producer of it began (-1: it has none), from which a reader
 * of the settled queue counts what it produced. All as of the consumer's last commit.
 */
export const FIGURES = 6;
export const HANDLED = 0;
export const SKIPPED = 1;
export const FAILED = 2;
export const LOST = 3;
export const POISONED = 4;
export const PRODUCED_FROM = 5;

/** Bytes of padding on either side of an adapter's figures in their buffer: a cache line. */
const FIGURES_PAD = 64;

/**
 * A buffer for an adapter's figures of `streams` streams, a cache line of padding on either side:
 * its thread stores into them at every drain, and another allocation sharing their cache lines
 * (another thread's figures) would bounce those lines between cores at every message.
 */
export function createFigures(streams: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(2 * FIGURES_PAD + streams * FIGURES * Float64Array.BYTES_PER_ELEMENT);
  // No producer yet, should its thread end before its adapter exists.
  const figures = figuresOf(buffer);
  for (let i = 0; i < streams; i++) figures[i * FIGURES + PRODUCED_FROM] = -1;
  return buffer;
}

/** The figures in a buffer `createFigures` made. */
export function figuresOf(buffer: SharedArrayBuffer): Float64Array {
  return new Float64Array(
    buffer,
    FIGURES_PAD,
    (buffer.byteLength - 2 * FIGURES_PAD) / Float64Array.BYTES_PER_ELEMENT,
  );
}

/** What an adapter's figures say of stream `index` (see `FIGURES`). */
export function streamFigures(
  figures: Float64Array,
  index: number,
): {
  readonly handled: number;
  readonly skipped: number;
  readonly failed: number;
  readonly lost: number;
  readonly poisoned: number;
  /** The stream's published count when this adapter's producer of it began; -1: it has none. */
  readonly producedFrom: number;
} {
  const at = index * FIGURES;
  return {
    handled: figures[at + HANDLED]!,
    skipped: figures[at + SKIPPED]!,
    failed: figures[at + FAILED]!,
    lost: figures[at + LOST]!,
    poisoned: figures[at + POISONED]!,
    producedFrom: figures[at + PRODUCED_FROM]!,
  };
}

/** The tag of an actor's consumer entries (`ConsumerOptions.owner`): positive, never 1. */
export function actorConsumerOwner(actorId: number): number {
  return actorId + 2;
}
