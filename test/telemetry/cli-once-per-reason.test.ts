import { expect, it } from 'vitest';
import { oncePerReason } from '../../src/cli/once-per-reason.js';

it("dorsal serve tells a sweep's failure once per reason, remembering a bounded number of reasons", () => {
  const told: string[] = [];
  const tell = oncePerReason((reason) => told.push(reason), 3);
  for (const reason of ['a', 'b', 'a', 'a', 'b', 'c', 'd', 'a']) tell(reason);
  expect(told).toEqual(['a', 'b', 'c']);
});
