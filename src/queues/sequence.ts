import { ConfigError } from '../errors.js';

/**
 * Sequence and version arithmetic of a ring of `capacity` slots.
 *
 * Sequences live in shared memory as 32-bit words and wrap modulo 2^32; every comparison is a
 * signed 32-bit difference, exact while two positions are less than 2^31 messages apart.
 *
 * A slot's version word encodes which lap of the ring it holds: lap L done is `2L + 2`, lap L
 * being written is `2L + 1` (odd), and a never-written slot reads 0, "lap -1 done". Laps are
 * taken from the 32-bit sequence, so versions wrap modulo M = 2^(33 - log2 capacity); shifting
 * a version difference left by `log2 capacity - 1` scales that modulus up to 2^32, where `| 0`
 * gives the signed distance in laps.
 */
export class SequenceMath {
  readonly capacity: number;
  readonly mask: number;
  private readonly lapShift: number;
  private readonly versionMask: number;
  private readonly compareShift: number;

  constructor(capacity: number) {
    if (
      !Number.isInteger(capacity) ||
      capacity < 2 ||
      capacity > 2 ** 30 ||
      (capacity & (capacity - 1)) !== 0
    ) {
      throw new ConfigError(`capacity must be a power of two from 2 to 2^30, got ${capacity}`);
    }
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.lapShift = Math.log2(capacity);
    this.versionMask = (2 ** (33 - this.lapShift) - 1) | 0;
    this.compareShift = this.lapShift - 1;
  }

  /** The version a slot holds once the message of `seq` is completely written (even). */
  doneVersion(seq: number): number {
    return ((((seq >>> this.lapShift) + 1) << 1) & this.versionMask) | 0;
  }

  /** The version of the previous lap of the same slot (what a producer expects to overwrite). */
  previousVersion(done: number): number {
    return ((done - 2) & this.versionMask) | 0;
  }

  /** The odd version a slot holds while the message of the lap whose done version is `done` is written. */
  writingVersion(done: number): number {
    return ((done - 1) & this.versionMask) | 0;
  }

  /**
   * Signed lap distance between a version read from a slot and the done version expected:
   * < 0, the message is not there yet (an older lap, or being written); 0, it is there;
   * > 0, the slot already holds a later lap: the reader was lapped.
   */
  compare(version: number, expected: number): number {
    return ((version - expected) << this.compareShift) | 0;
  }
}
