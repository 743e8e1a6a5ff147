/**
 * An actor's figures in shared memory: what its adapter counted per stream, where its system can
 * read them once the actor's thread has ended without a report (terminated at a stop), with the
 * consumer entries its adapter tagged. See `SpineAdapter`'s `figures`.
 */

/**
 * Numbers per stream in an adapter's figures (see `SpineAdapter`'s `figures`), and their places.
 * Two copies of a drain's counts, `COUNTS` numbers each: handled, skipped, failed, lost and
 * poisoned (as its consumer counted them), and `NEXT`, the exact sequence its consumer reads next
 * once they are committed (-1: no drain of the stream ended yet). Then `PRODUCED_FROM`, the
 * stream's published count when this adapter's producer of it began (-1: it has none, or the
 * stream has several producers), from which a reader of the settled queue counts what it
 * produced; and `PRODUCED`, the count its producer of a multi-producer stream keeps there itself
 * (`ProducerOptions.counter`), whose share of the stream the queue's count cannot tell.
 *
 * A drain's end writes the copy its last one did not, then commits its consumer's position (an SC
 * store): the current copy is the one whose `NEXT` is the committed position. A thread terminated
 * anywhere in a drain's end leaves a whole copy that agrees with its committed position, and so
 * counts every message once: handled as of that copy, or unread from there.
 */
export const COUNTS = 6;
export const HANDLED = 0;
export const SKIPPED = 1;
export const FAILED = 2;
export const LOST = 3;
export const POISONED = 4;
export const NEXT = 5;
export const PRODUCED_FROM = 2 * COUNTS;
export const PRODUCED = PRODUCED_FROM + 1;
export const FIGURES = PRODUCED + 1;

/** Bytes of padding on either side of an adapter's figures in their buffer: a cache line. */
const FIGURES_PAD = 64;

/**
 * A buffer for an adapter's figures of `streams` streams, a cache line of padding on either side:
 * its thread stores into them at every drain, and another allocation sharing their cache lines
 * (another thread's figures) would bounce those lines between cores at every message.
 */
export function createFigures(streams: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(2 * FIGURES_PAD + streams * FIGURES * Float64Array.BYTES_PER_ELEMENT);
  // No drain ended and no producer yet, should its thread end before its adapter exists.
  const figures = figuresOf(buffer);
  for (let i = 0; i < streams; i++) {
    figures[i * FIGURES + NEXT] = -1;
    figures[i * FIGURES + COUNTS + NEXT] = -1;
    figures[i * FIGURES + PRODUCED_FROM] = -1;
  }
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

/** What a copy of an adapter's figures says of a stream (see `FIGURES`). */
export interface StreamFigures {
  readonly handled: number;
  readonly skipped: number;
  readonly failed: number;
  readonly lost: number;
  readonly poisoned: number;
  /**
   * The stream's published count when this adapter's producer of it began; -1: it has none, or
   * the stream has several producers (then see `produced`).
   */
  readonly producedFrom: number;
  /** What its producer of a multi-producer stream published (0 for any other stream). */
  readonly produced: number;
}

/** What copy `copy` (0 or 1) of an adapter's figures says of stream `index`. */
export function streamFigures(figures: Float64Array, index: number, copy: number): StreamFigures {
  const base = index * FIGURES;
  const at = base + copy * COUNTS;
  return {
    handled: figures[at + HANDLED]!,
    skipped: figures[at + SKIPPED]!,
    failed: figures[at + FAILED]!,
    lost: figures[at + LOST]!,
    poisoned: figures[at + POISONED]!,
    producedFrom: figures[base + PRODUCED_FROM]!,
    produced: figures[base + PRODUCED]!,
  };
}

/**
 * What an ended thread's adapter figures say of stream `index`, given its consumer's committed
 * position (`committed`, read after an SC load of the entry's committed word, which synchronizes
 * with the commit: the copy written before it is seen whole), or undefined if it never consumed
 * the stream: the copy that agrees with that position (none if no drain of it ended: zeros).
 */
export function committedFigures(
  figures: Float64Array,
  index: number,
  committed: number | undefined,
): StreamFigures {
  const base = index * FIGURES;
  for (const copy of [0, 1]) {
    if (committed !== undefined && figures[base + copy * COUNTS + NEXT] === committed)
      return streamFigures(figures, index, copy);
  }
  const producedFrom = figures[base + PRODUCED_FROM]!;
  const produced = figures[base + PRODUCED]!;
  return { handled: 0, skipped: 0, failed: 0, lost: 0, poisoned: 0, producedFrom, produced };
}

/** The tag of an actor's consumer entries (`ConsumerOptions.owner`): positive, never 1. */
export function actorConsumerOwner(actorId: number): number {
  return actorId + 2;
}
