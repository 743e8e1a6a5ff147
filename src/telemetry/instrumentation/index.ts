export {
  bindThreadInstrumentation,
  boundThreadBuffers,
  currentThreadBuffers,
  releaseThreadBuffers,
  unbindThreadInstrumentation,
} from './binding.js';
export {
  createThreadBuffers,
  DESCRIPTOR_FORMAT,
  type ThreadBuffersDescriptor,
  type ThreadBuffersOptions,
} from './descriptor.js';
export {
  LogEvent,
  LogFlags,
  MAX_PROPERTIES,
  MAX_STRING_BYTES,
  MAX_TEXT_BYTES,
  MAX_TEXT_PROPERTIES,
  MetricEvent,
  MetricKind,
  PropertyType,
  SpanEvent,
  SpanFlags,
  SpanKind,
  STRING_ID_FIELDS,
  StringEntry,
} from './events.js';
export {
  type LevelSetting,
  LogLevel,
  type LogLevelName,
  type LogLevelValue,
  levelName,
} from './levels.js';
export type { LogLine, LogLineValues } from './log-line.js';
export type { Properties, PropertyValue } from './log-writer.js';
export { Logger, levelOf, log, logger, setLevel, type TargetLog } from './logger.js';
export { intMetric, metric } from './metrics.js';
export {
  collectStringIds,
  decodeStringEntries,
  encodeStringEntries,
  INSTRUMENTATION_STREAMS,
  type InstrumentationDrops,
  type InstrumentationStreamName,
  ThreadBuffersReader,
} from './reader.js';
export { beginSpan, endSpan, span, spanAsync } from './spans.js';
export { type EventKind, StringTableReader } from './string-table.js';
export { MAX_SPAN_DEPTH } from './thread-writer.js';
