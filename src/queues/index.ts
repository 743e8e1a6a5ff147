export type { BoundCodec, BufferViews } from './codec.js';
export type { ConsumerOptions, ConsumerStart } from './consumer.js';
export { Consumer } from './consumer.js';
export { CoreBudget } from './core-budget.js';
export type {
  FieldDescription,
  FieldSpec,
  FieldSpecs,
  FieldTypeName,
  FieldValue,
  LayoutDescription,
  MessageOf,
  ScalarType,
} from './field-types.js';
export { defineMessage, Layout, type MessageOfLayout } from './layout.js';
export {
  type ClaimingProducer,
  MultiProducer,
  Producer,
  type ProducerOptions,
  type QueueProducer,
} from './producer.js';
export type { AttachOptions, QueueOptions } from './queue-core.js';
export type { RawSlot } from './raw-slot.js';
export { type ConsumerStats, type QueueStats, SeqlockQueue } from './seqlock-queue.js';
export { SeqlockVector, SeqlockVectorReader } from './seqlock-vector.js';
export { type Parker, Signal } from './signal.js';
export type { PoisonedSlot } from './stall.js';
export {
  AdaptiveWaitStrategy,
  BlockingWaitStrategy,
  BusySpinWaitStrategy,
  type MillisecondClock,
  parkUntil,
  SpinThenYieldWaitStrategy,
  type WaitClockOptions,
  type WaitCondition,
  type WaitStrategy,
  type WaitStrategyName,
  waitStrategyNamed,
} from './wait-strategy.js';
