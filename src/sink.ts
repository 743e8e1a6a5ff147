/**
 * `dorsal/sink`: the client side of ingestion. A `TelemetrySink` ships a process's streams and
 * blocks to an ingestion server over HTTP (or to an `IngestionService` in the same process),
 * retries, spools while the server is down, and counts every drop. It loads the wire format and
 * `node:http`, not the lake: a process that only sends pays for no database driver. Every export
 * is named here explicitly.
 *
 * @example
 * import { TelemetrySink } from 'dorsal/sink';
 * const sink = new TelemetrySink({ target: 'http://127.0.0.1:8081', process });
 * sink.addStream(stream);
 * sink.push(block);
 * const stats = await sink.close({ timeoutMs: 5000 });
 */
export { type SinkOptions, TelemetrySink } from './telemetry/sink/sink.js';
export type { DropEvent, DropReason, SinkStats } from './telemetry/sink/stats.js';
export {
  HttpTransport,
  type HttpTransportOptions,
  InProcessTransport,
  type RecordKind,
  SinkSendError,
  type SinkTransport,
} from './telemetry/sink/transport.js';
