/**
 * The persister's thread dying before it could say which consumer entries it holds: at its start
 * (a source it cannot attach to), it had claimed entries in the sources before that one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createThreadBuffers, currentThreadBuffers, ThreadBuffersReader } from '../../src/index.js';
import { shipInstrumentation } from '../../src/persist.js';
import { tempDir } from './fixtures.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('the persister’s thread dies at its start', () => {
  it('the consumer entries it had claimed are given back: a failed start leaves no reader behind', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    // A worker's buffers whose logs allow one reader, already taken: the persister's thread
    // cannot attach to them, after attaching to the main thread's buffers.
    const busy = createThreadBuffers({ name: 'busy', maxReaders: 1 });
    const taken = ThreadBuffersReader.attach(busy).queue('logs').consumer();
    const main = ThreadBuffersReader.attach(currentThreadBuffers());
    const readers = () =>
      (['logs', 'metrics', 'spans'] as const).map((q) => main.queue(q).stats().consumers.length);
    const before = readers();
    await expect(shipInstrumentation({ data: dir, threads: [busy] })).rejects.toThrow(/consumers/);
    // Else each failed start leaves a reader stuck at its start in every queue of the main
    // thread (8 of them at most: the ninth start fails for want of one).
    expect(readers()).toEqual(before);
    taken.close();
  });
});
