/**
 * `dorsal/persist`: what the persister writes, read back, and the shipping of a plain process's
 * instrumentation (a process that runs no System) to the lake through the same code. It loads
 * the wire format and the sink; the lake only when `data` names an embedded one. Every export is
 * named here explicitly.
 *
 * @example
 * import { shipInstrumentation } from 'dorsal/persist';
 * const shipping = await shipInstrumentation({ data: './dorsal-data' });
 * // … log, metric, span …
 * const report = await shipping.stop();
 */
export {
  type PersistedRecord,
  type PersistedSourceData,
  readPersisted,
  readRunCounts,
} from './telemetry/persist/read.js';
export {
  type PersistedLog,
  type PersistedMetric,
  type PersistedSpanEvent,
  persistedLogs,
  persistedMetrics,
  persistedSpans,
} from './telemetry/persist/read-events.js';
export { BlockCoverage, RecordHeader, RecordProperty, SourceDrops } from './telemetry/persist/records.js';
export {
  COUNTS_FORMAT,
  COUNTS_TAG,
  type StoredActorStream,
  type StoredCounts,
  type StoredTimingRead,
} from './telemetry/persist/run-counts.js';
export {
  type InstrumentationShipping,
  type ShipInstrumentationOptions,
  shipInstrumentation,
} from './telemetry/persist/ship.js';
