export {
  type AdapterPositions,
  type AdapterStart,
  type AdapterStreamStats,
  type Handler,
  type MessageMeta,
  type MessageOf,
  type ReaderState,
  SpineAdapter,
  type SpineProducers,
  type StreamName,
} from './adapter.js';
export { Clock, type ClockSource } from './clock.js';
export { MAX_WORKERS, Phase, type PhaseValue, SpineControl } from './control.js';
export {
  defineSpine,
  SpineDefinition,
  type StreamMessage,
  type StreamSpec,
  type StreamSpecs,
} from './definition.js';
export {
  Spine,
  type SpineDescriptor,
  type SpineOptions,
  type StreamQueue,
  type TimingQueue,
} from './spine.js';
export { ThreadActivity } from './thread-activity.js';
export { type AdapterTimingStats, TimingReader, type TimingStart } from './timing-reader.js';
export { MAX_STREAMS, NO_PARENT, TimingRecord, Tracking } from './tracking.js';
