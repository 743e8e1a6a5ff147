import { ConfigError } from '../../errors.js';

/** Gives back what `acquire` or `tryAcquire` took (once; later calls do nothing). */
export type Release = () => void;

/**
 * A number of bytes shared by the requests under way: decompressions being verified, large bodies
 * being received. `acquire` waits its turn (first come, first served, so a large request is not
 * starved by small ones); `tryAcquire` takes now or not at all. A request larger than the whole
 * budget takes all of it: it runs alone rather than never.
 *
 * @example
 * const budget = new ByteBudget(256 * 1024 * 1024);
 * const release = await budget.acquire(size);
 * try { await work(); } finally { release(); }
 */
export class ByteBudget {
  readonly capacity: number;
  private used = 0;
  private readonly waiting: { readonly bytes: number; readonly grant: () => void }[] = [];

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new ConfigError(`a byte budget must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  /** Bytes taken now. */
  get inUse(): number {
    return this.used;
  }

  /** Takes `bytes` (at most the capacity) once they are free and everyone before has had theirs. */
  acquire(bytes: number): Promise<Release> {
    const want = Math.min(bytes, this.capacity);
    if (this.waiting.length === 0 && this.used + want <= this.capacity) {
      return Promise.resolve(this.take(want));
    }
    return new Promise((resolve) => {
      this.waiting.push({ bytes: want, grant: () => resolve(this.take(want)) });
    });
  }

  /** Whether `tryAcquire(bytes)` would take them now (without taking them). */
  hasRoom(bytes: number): boolean {
    return this.waiting.length === 0 && this.used + Math.min(bytes, this.capacity) <= this.capacity;
  }

  /** Takes `bytes` if they are free now and nobody is waiting; `undefined` otherwise. */
  tryAcquire(bytes: number): Release | undefined {
    const want = Math.min(bytes, this.capacity);
    if (this.waiting.length > 0 || this.used + want > this.capacity) return undefined;
    return this.take(want);
  }

  private take(bytes: number): Release {
    this.used += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.grantWaiting();
    };
  }

  private grantWaiting(): void {
    for (let next = this.waiting[0]; next !== undefined; next = this.waiting[0]) {
      if (this.used + next.bytes > this.capacity) return;
      this.waiting.shift();
      next.grant();
    }
  }
}
