import { Clock } from '../../spine/clock.js';
import { LevelTable } from './level-table.js';

/**
 * What the threads of a process share: the level table and the clock base. The main thread makes
 * them on first need; a thread that binds buffers made elsewhere adopts theirs, so that the
 * buffers it makes in turn (for workers of its own) share them too.
 */
export interface ProcessContext {
  readonly levels: LevelTable;
  readonly clockBaseNs: number;
}

let context: ProcessContext | undefined;

/** This thread's view of the process context, made now if it has none. */
export function processContext(): ProcessContext {
  context ??= { levels: LevelTable.create(), clockBaseNs: Clock.newBase() };
  return context;
}

/** Adopts the level table and clock base of buffers this thread binds. */
export function adoptProcessContext(levels: SharedArrayBuffer, clockBaseNs: number): ProcessContext {
  if (context === undefined || context.levels.buffer !== levels || context.clockBaseNs !== clockBaseNs) {
    context = {
      levels: context?.levels.buffer === levels ? context.levels : LevelTable.attach(levels),
      clockBaseNs,
    };
  }
  return context;
}
