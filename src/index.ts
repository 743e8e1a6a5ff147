/**
 * dorsal — the public face: the queues, the spine and the actors, what every actor's worker
 * thread loads. Every export is named here explicitly. Telemetry storage and shipping live behind
 * subpath exports (`dorsal/wire`, `dorsal/lake`, `dorsal/ingestion`, `dorsal/sink`), so that
 * `import 'dorsal'` loads no database driver, AWS SDK, CBOR or lz4 code; a test holds it so.
 */

import { registerSystemOption } from './actors/index.js';
import { checkPersistOptions } from './telemetry/persist/options.js';

// `persist` loads the telemetry layer (the lake, the sink, compression) only when a system uses it;
// its options are checked when the system is made.
registerSystemOption('persist', {
  check: checkPersistOptions,
  load: async () => (await import('./telemetry/persist/index.js')).persistAttachment,
});

export {
  Actor,
  ActorCrashedError,
  ActorModuleError,
  type ActorReport,
  LIVE_STATS_ACTOR,
  type PersistedSource,
  type PersistOptions,
  type PersistReport,
  type RunOptions,
  type SpawnOptions,
  System,
  type SystemOptions,
  type SystemReport,
  SystemStateError,
} from './actors/index.js';
export { ConfigError, DorsalError, LayoutError, PoisonedSlotError } from './errors.js';
export {
  AdaptiveWaitStrategy,
  BlockingWaitStrategy,
  BusySpinWaitStrategy,
  Consumer,
  type ConsumerOptions,
  type ConsumerStart,
  type ConsumerStats,
  CoreBudget,
  defineMessage,
  type FieldDescription,
  type FieldSpec,
  type FieldSpecs,
  type FieldTypeName,
  type FieldValue,
  Layout,
  type LayoutDescription,
  type MessageOf,
  type MessageOfLayout,
  type MillisecondClock,
  MultiProducer,
  type Parker,
  type PoisonedSlot,
  Producer,
  type QueueOptions,
  type QueueProducer,
  type QueueStats,
  type ScalarType,
  SeqlockQueue,
  SeqlockVector,
  SeqlockVectorReader,
  Signal,
  SpinThenYieldWaitStrategy,
  type WaitClockOptions,
  type WaitCondition,
  type WaitStrategy,
  type WaitStrategyName,
  waitStrategyNamed,
} from './queues/index.js';
export {
  type AdapterPositions,
  type AdapterStreamStats,
  type AdapterTimingStats,
  Clock,
  type ClockSource,
  defineSpine,
  type Handler,
  type MessageMeta,
  type MessageOf as StreamMessageOf,
  NO_PARENT,
  Spine,
  SpineAdapter,
  SpineDefinition,
  type SpineDescriptor,
  type SpineOptions,
  type SpineProducers,
  type StreamMessage,
  type StreamName,
  type StreamSpec,
  type StreamSpecs,
  TimingRecord,
  Tracking,
} from './spine/index.js';
