export { Actor } from './actor.js';
export {
  type AttachedActor,
  type AttachmentFactory,
  type AttachmentHost,
  type InstrumentationPositions,
  type PersistedSource,
  type PersistReport,
  registerSystemOption,
  type SystemAttachment,
  type SystemCounts,
} from './attachments.js';
export {
  actorModuleUrl,
  defineSystem,
  isSystemDefinition,
  type SystemActor,
  type SystemDefinition,
} from './define-system.js';
export { ActorCrashedError, ActorModuleError, SystemStateError } from './errors.js';
export type { ActorReport } from './protocol.js';
export { System } from './system.js';
export type {
  InstrumentationCapacities,
  PersistOptions,
  RunOptions,
  SpawnOptions,
  SystemOptions,
  SystemReport,
} from './system-options.js';

/** The module URL of the live-stats observer: `system.spawn(LIVE_STATS_ACTOR)`. */
export const LIVE_STATS_ACTOR: URL = new URL(
  `./live-stats${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`,
  import.meta.url,
);
