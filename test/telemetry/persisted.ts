/** Finding what a persister wrote, in what `readPersisted` reads back. */
import { expect } from 'vitest';
import type { PersistedSourceData } from '../../src/persist.js';

/** The one lake stream tagged `tag` (`log`, `metrics`, `spans`) of the thread named `thread`. */
export function streamOf(
  data: readonly PersistedSourceData[],
  tag: string,
  thread: string,
): PersistedSourceData {
  const found = data.filter((d) => d.stream.tags.includes(tag) && d.stream.properties.thread === thread);
  expect(found, `one ${tag} stream of thread ${thread}`).toHaveLength(1);
  return found[0]!;
}
