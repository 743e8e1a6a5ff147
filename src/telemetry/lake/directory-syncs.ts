import { open } from 'node:fs/promises';

/** One directory's sync state. */
interface DirectoryState {
  /** The highest generation of a sync of this directory that completed. */
  done: number;
  /** The sync started last, while it runs. */
  latest: { readonly generation: number; readonly synced: Promise<void> } | null;
  /** Syncs under way. */
  running: number;
}

/** Directories whose state is kept; beyond that, idle ones are forgotten (and made anew when needed). */
const MAX_KEPT = 64;

/**
 * Group commit of directory syncs. A new name in a directory is durable once the directory is
 * synced after the name was created. A writer takes a `mark()` once its name exists, and
 * `sync(dir, mark)` resolves when a sync of `dir` that started after the mark has completed: the
 * writers whose names were made before a sync started share it, and a writer whose name a
 * completed sync covered issues none. A writer that a running sync does not cover starts the
 * next one at once rather than waiting for it: it waits for one sync, not one and a half.
 *
 * Generations are one sequence for all directories, so a directory whose state was dropped and
 * made again can never count an old mark as covered.
 *
 * Each sync opens the directory by its path: a handle kept open would outlive the directory's
 * removal (retention's, perhaps in another process) and sync the unlinked one, not the one made
 * again under that name, whose new entries would then be counted durable and were not.
 */
export class DirectorySyncs {
  private generation = 0;
  private syncs = 0;
  private readonly states = new Map<string, DirectoryState>();

  /** Directory syncs completed so far. */
  get completed(): number {
    return this.syncs;
  }

  /** The current generation: take it once the name to make durable exists. */
  mark(): number {
    return this.generation;
  }

  /** Resolves once a sync of `dir` that started after `mark` has completed; rejects with its error. */
  sync(dir: string, mark: number): Promise<void> {
    const state = this.state(dir);
    if (state.done > mark) return Promise.resolve();
    if (state.latest !== null && state.latest.generation > mark) return state.latest.synced;
    // Taken before the call: names made from now on may or may not be in this sync.
    const generation = ++this.generation;
    const synced = this.run(state, dir, generation);
    state.latest = { generation, synced };
    return synced;
  }

  /** Waits for the syncs under way. */
  async close(): Promise<void> {
    const states = [...this.states.values()];
    this.states.clear();
    await Promise.allSettled(states.map((s) => s.latest?.synced));
  }

  private async run(state: DirectoryState, dir: string, generation: number): Promise<void> {
    state.running += 1;
    try {
      const handle = await open(dir, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (generation > state.done) state.done = generation;
      this.syncs += 1;
    } finally {
      state.running -= 1;
      if (state.latest?.generation === generation) state.latest = null;
    }
  }

  private state(dir: string): DirectoryState {
    let state = this.states.get(dir);
    if (state === undefined) {
      if (this.states.size >= MAX_KEPT) this.forgetIdle();
      state = { done: 0, latest: null, running: 0 };
      this.states.set(dir, state);
    }
    return state;
  }

  /** Drops the idle directories seen longest ago (a Map iterates in insertion order). */
  private forgetIdle(): void {
    for (const [dir, state] of this.states) {
      if (this.states.size < MAX_KEPT / 2) return;
      if (state.running > 0) continue;
      this.states.delete(dir);
    }
  }
}
