import { type FileHandle, open } from 'node:fs/promises';

/** One directory's sync state. */
interface DirectoryState {
  handle: FileHandle | undefined;
  /** Generation of the last sync of this directory that completed. */
  done: number;
  /** The sync under way, if any. */
  running: Promise<void> | null;
}

/** Directories whose handles stay open; beyond that, idle ones are closed (and reopened when needed). */
const MAX_OPEN = 64;

/**
 * Group commit of directory syncs. A new name in a directory is durable once the directory is
 * synced after the name was created. A writer takes a `mark()` once its name exists, and
 * `sync(dir, mark)` resolves when a sync of `dir` that started after the mark has completed:
 * writers whose names were created while a sync ran share the next one, and a writer whose name
 * an earlier sync already covered issues none.
 *
 * Generations are one sequence for all directories, so a directory whose state was dropped and
 * made again can never count an old mark as covered.
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
  async sync(dir: string, mark: number): Promise<void> {
    for (;;) {
      // Looked up again each round: an idle state may have been dropped meanwhile.
      const state = this.state(dir);
      if (state.done > mark) return;
      state.running ??= this.start(state, dir);
      await state.running;
    }
  }

  /** Closes the directory handles (after the syncs under way). */
  async close(): Promise<void> {
    const states = [...this.states.values()];
    this.states.clear();
    await Promise.allSettled(states.map((s) => s.running));
    await Promise.allSettled(states.map((s) => s.handle?.close()));
  }

  private async start(state: DirectoryState, dir: string): Promise<void> {
    // Taken before the call: names created from now on may or may not be in this sync.
    const generation = ++this.generation;
    try {
      state.handle ??= await open(dir, 'r');
      await state.handle.sync();
      state.done = generation;
      this.syncs += 1;
    } catch (error) {
      // Opened afresh next time: the directory may have been replaced.
      void state.handle?.close().catch(() => undefined);
      state.handle = undefined;
      throw error;
    } finally {
      state.running = null;
    }
  }

  private state(dir: string): DirectoryState {
    let state = this.states.get(dir);
    if (state === undefined) {
      if (this.states.size >= MAX_OPEN) this.closeIdle();
      state = { handle: undefined, done: 0, running: null };
      this.states.set(dir, state);
    }
    return state;
  }

  /** Drops the idle directories opened longest ago (a Map iterates in insertion order). */
  private closeIdle(): void {
    for (const [dir, state] of this.states) {
      if (this.states.size < MAX_OPEN / 2) return;
      if (state.running !== null) continue;
      this.states.delete(dir);
      void state.handle?.close().catch(() => undefined);
    }
  }
}
