import { afterEach, describe, expect, it, vi } from 'vitest';
import { within } from '../../src/telemetry/sink/delivery.js';

describe('within: how flush and close wait for what they await', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('waits for the work however long the deadline (Infinity, or past what one Node timer takes)', async () => {
    const warnings = vi.spyOn(process, 'emitWarning');
    for (const ms of [Number.POSITIVE_INFINITY, 2 ** 31, 1e12]) {
      let done = false;
      // The work ends on a later turn than a 1 ms timer would (an overflowed timer fires after 1 ms).
      const work = new Promise<void>((resolve) =>
        setTimeout(() => {
          done = true;
          resolve();
        }, 30),
      );
      await within(work, ms);
      expect(done, `deadline ${ms}`).toBe(true);
    }
    expect(warnings).not.toHaveBeenCalled();
  });

  it('stops waiting at the deadline, and at once for none (0, negative, NaN)', async () => {
    const never = new Promise<void>(() => {});
    for (const ms of [0, -5, Number.NaN, 5]) await within(never, ms);
  });

  it('passes on the work failing', async () => {
    await expect(within(Promise.reject(new Error('down')), 1000)).rejects.toThrow('down');
  });
});
