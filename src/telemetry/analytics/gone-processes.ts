import { appendFileSync, readFileSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDirectoriesSync } from '../../directories.js';
import type { PartitionStore } from './partitions.js';

/** A process id as the lake writes it, and as the cache names directories by it. */
const PROCESS_ID = /^[0-9a-f-]{36}$/;
const PREFIX = 'process_id=';

/**
 * The file, in a directory of cached partitions, naming the lakes whose partitions it holds (one
 * `Lake.identity` a line): a sweep lets go of nothing in a directory that serves several. Each
 * lake's copies have a directory of their own (`lakeCacheDir`, named by a digest of the identity):
 * the mark guards against two identities whose digests collide.
 */
export const SERVED_LAKES_FILE = 'lakes';

/** Files a sweep removes at most, by default: the rest go at later sweeps. */
export const DEFAULT_SWEEP_MAX_FILES = 500;

/** What a sweep asks of the lake. */
export interface SweptLake {
  /** What tells the lake from another (`Lake.identity`). */
  readonly identity: string;
  /** Those of `processIds` the lake holds (`Lake.processIdsIn`: by id, a batch at a time). */
  processIdsIn(processIds: readonly string[]): Promise<string[]>;
}

/**
 * Removes the local partition files of processes the lake no longer lists, under `root`
 * (`views/{view}/process_id={process}/…`), and their row lists in `rowsDir` (`{process}.json`)
 * when the store keeps them there: retention deleted those processes, their blocks and their
 * partitions, and no look at the lake names them again, so nothing else would let go of them
 * (`LakePartitionStore.list` does so for the partitions of a process it lists).
 *
 * First (before any await: a sweep begun at a look marks the directory before the look copies
 * anything into it) `root` is marked as serving this lake (`SERVED_LAKES_FILE`); a directory
 * that serves another lake too is left alone, since the other's processes are not in this one
 * (an error says so).
 * Then what the directory holds is read, and the lake asked about those ids only: a process with
 * files here was in the lake before them, so one missing from the answer was deleted since, not
 * inserted after. Removes about `maxFiles` files at most (whole processes, at least one), all
 * asynchronously; the other gone processes go at later sweeps. Returns the ids let go of.
 */
export async function forgetGoneProcesses(
  root: string,
  lake: SweptLake,
  rowsDir?: string,
  maxFiles = DEFAULT_SWEEP_MAX_FILES,
): Promise<string[]> {
  if (!markServedLake(root, lake.identity)) {
    throw new Error(
      `the cache directory ${root} serves several lakes (its '${SERVED_LAKES_FILE}' file names them): not swept`,
    );
  }
  const views = join(root, 'views');
  const held = new Map<string, string[]>();
  const hold = (processId: string, path: string) => {
    if (PROCESS_ID.test(processId)) held.set(processId, [...(held.get(processId) ?? []), path]);
  };
  // The row lists first, removed first: a store that lists the process meanwhile finds no rows
  // rather than rows without files (which it would forget one at a time, and rebuild).
  if (rowsDir !== undefined) {
    for (const entry of await entries(rowsDir)) {
      if (entry.endsWith('.json')) hold(entry.slice(0, -'.json'.length), join(rowsDir, entry));
    }
  }
  for (const view of await entries(views)) {
    for (const entry of await entries(join(views, view))) {
      if (entry.startsWith(PREFIX)) hold(entry.slice(PREFIX.length), join(views, view, entry));
    }
  }
  if (held.size === 0) return [];
  const listed = new Set(await lake.processIdsIn([...held.keys()]));
  const gone = [...held.keys()].filter((processId) => !listed.has(processId)).sort();
  const forgotten: string[] = [];
  let removed = 0;
  for (const processId of gone) {
    if (removed >= maxFiles) break;
    // Another lake's analytics may have begun to use the directory since the mark.
    if (!(await servesOnly(root, lake.identity))) break;
    for (const path of held.get(processId)!) {
      removed += path.endsWith('.json') ? 1 : Math.max(1, (await entries(path)).length);
      await rm(path, { recursive: true, force: true });
    }
    forgotten.push(processId);
  }
  return forgotten;
}

/**
 * Names `identity` in `root`'s `SERVED_LAKES_FILE` if it is not there yet (synchronously: a
 * small file); true when it names no other lake.
 */
function markServedLake(root: string, identity: string): boolean {
  const file = join(root, SERVED_LAKES_FILE);
  let served: string[];
  try {
    served = linesOf(readFileSync(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    served = [];
  }
  if (!served.includes(identity)) {
    makeDirectoriesSync(root);
    appendFileSync(file, `${identity}\n`);
    served.push(identity);
  }
  return served.every((lake) => lake === identity);
}

/** True when `root`'s `SERVED_LAKES_FILE` names `identity` and no other lake. */
async function servesOnly(root: string, identity: string): Promise<boolean> {
  const served = linesOf(await readFile(join(root, SERVED_LAKES_FILE), 'utf8').catch(() => ''));
  return served.length > 0 && served.every((lake) => lake === identity);
}

const linesOf = (text: string): string[] => text.split('\n').filter((line) => line !== '');

/** A directory's entries; none if it is not there (or not a directory). */
async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
}

/**
 * Has a partition store let go of the processes the lake no longer lists (see
 * `PartitionStore.forgetGoneProcesses`) in the background of an analytics' looks at the lake: at
 * the first look, then at a look `everyMs` or more after the last sweep began; one at a time, never
 * waited for by the look. Best effort: a sweep that fails is told to `onFailed`, and tried again
 * at a later look.
 */
export class GoneProcessSweep {
  private readonly store: PartitionStore;
  private readonly lake: SweptLake;
  private readonly everyMs: number;
  private lastAt: number | undefined;
  private running: Promise<string[]> | undefined;
  private begun = 0;
  private closed = false;
  private readonly onFailed: ((error: Error) => void) | undefined;

  constructor(store: PartitionStore, lake: SweptLake, everyMs: number, onFailed?: (error: Error) => void) {
    this.store = store;
    this.lake = lake;
    this.everyMs = everyMs;
    this.onFailed = onFailed;
  }

  /** Sweeps begun so far. */
  get sweeps(): number {
    return this.begun;
  }

  /** At a look: begins a sweep in the background when one is due and none is under way. */
  poke(): void {
    if (this.closed || this.running !== undefined || this.store.forgetGoneProcesses === undefined) return;
    if (this.lastAt !== undefined && performance.now() - this.lastAt < this.everyMs) return;
    void this.begin();
  }

  /**
   * Sweeps now, once the sweep under way (if any) is done: one sweep at a time, however many are
   * asked for at once. The processes let go of (none on failure, or once closed).
   */
  async sweep(): Promise<string[]> {
    // The check and the beginning in one turn: another sweep asked for meanwhile waits for this one.
    while (this.running !== undefined) await this.running;
    if (this.closed || this.store.forgetGoneProcesses === undefined) return [];
    return this.begin();
  }

  /** Waits for the sweep under way, and those begun meanwhile, if any. */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  /** Begins no more sweeps; waits for the one under way, if any. */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
  }

  private begin(): Promise<string[]> {
    this.lastAt = performance.now();
    this.begun += 1;
    const running = this.store.forgetGoneProcesses!(this.lake).catch((error: unknown): string[] => {
      this.onFailed?.(error instanceof Error ? error : new Error(String(error)));
      return [];
    });
    this.running = running;
    void running.finally(() => {
      if (this.running === running) this.running = undefined;
    });
    return running;
  }
}
