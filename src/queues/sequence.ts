import { ConfigError } from '../errors.js';

/** 2^32: sequences wrap modulo this in 32-bit words. */
export const WRAP = 4294967296;

/**
 * The version of a multi-producer slot abandoned half written (see MultiProducer): -1, which no
 * lap's version takes in a ring of 4 slots or more (versions then fit in 31 bits).
 */
export const ABANDONED_VERSION = -1;

/**
 * Sequence and version arithmetic of a ring of `capacity` slots.
 *
 * A message's sequence is exact up to 2^53. In shared memory a slot holds it in two words: the
 * version, which encodes the lap of the low 32 bits, and the epoch, the high part (see
 * `epochOf`). A slot's version encodes which lap of the ring it holds: lap L done is `2L + 2`,
 * lap L being written is `2L + 1` (odd), and a never-written slot reads 0, "lap -1 done". Laps
 * are taken from the 32-bit sequence, so versions wrap modulo M = 2^(33 - log2 capacity). A
 * version alone therefore tells a message from another only modulo 2^32 messages; with the epoch
 * word, exactly (`exactOf`).
 */
export class SequenceMath {
  readonly capacity: number;
  readonly mask: number;
  private readonly lapShift: number;
  private readonly versionMask: number;
  private readonly lapMask: number;
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
    this.lapMask = 2 ** (32 - this.lapShift) - 1;
    this.compareShift = this.lapShift - 1;
  }

  /** The version a slot holds once the message of `seq` (mod 2^32) is completely written (even). */
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
   * Signed lap distance between two versions, exact while the laps are less than 2^31 messages
   * apart: < 0, `version` is an older lap than `expected` (or its own lap being written); 0, the
   * same; > 0, a later lap. Only for versions known to be close (a producer's view of a slot it
   * claimed); a consumer, which may be any distance behind, compares exact sequences.
   */
  compare(version: number, expected: number): number {
    return ((version - expected) << this.compareShift) | 0;
  }

  /** Laps from done version `older` to done version `newer` of the same slot (both within 2^31 messages). */
  lapsBetween(older: number, newer: number): number {
    return ((newer - older) & this.versionMask) >>> 1;
  }

  /**
   * The exact sequence of the message a slot holds, done or being written, from its version, its
   * epoch word and its index; -Infinity for a slot never written. Exact when both words were read
   * in one consistent read; a racy pair (a writer between its claim and its epoch store) may date
   * a message being written one epoch early.
   */
  exactOf(version: number, epoch: number, index: number): number {
    if (epoch === 0) return Number.NEGATIVE_INFINITY;
    const done = version & 1 ? (version + 1) & this.versionMask : version;
    const lap = ((done >>> 1) - 1) & this.lapMask;
    return (epoch - 1) * WRAP + lap * this.capacity + index;
  }
}

/** The epoch word of a message with exact sequence `exact`: its high 32 bits plus one (0: never written). */
export function epochOf(exact: number): number {
  return exact < 0 ? 0 : ((exact / WRAP) | 0) + 1;
}

/** The exact sequence ≡ `low32` (mod 2^32) closest to `near` (an exact sequence known to be within 2^31). */
export function closestExact(low32: number, near: number): number {
  const delta = (low32 - (near % WRAP)) >>> 0;
  return delta >= 2 ** 31 ? near + delta - WRAP : near + delta;
}
