/** Gives the calling thread fresh buffers and a reader on them, for tests in one thread. */
import {
  bindThreadInstrumentation,
  type Consumer,
  createThreadBuffers,
  LogEvent,
  MetricEvent,
  SpanEvent,
  type ThreadBuffersOptions,
  ThreadBuffersReader,
  unbindThreadInstrumentation,
} from '../../src/index.js';
import {
  decodeLog,
  decodeMetric,
  decodeSpan,
  type LogRecord,
  type MetricRecord,
  type SpanRecord,
} from '../fixtures/instrumentation/decode.js';

export interface Fresh {
  readonly reader: ThreadBuffersReader;
  logs(): LogRecord[];
  metrics(): MetricRecord[];
  spans(): SpanRecord[];
}

export function freshBuffers(options: ThreadBuffersOptions = {}): Fresh {
  unbindThreadInstrumentation();
  const descriptor = createThreadBuffers({ name: 'test', ...options });
  bindThreadInstrumentation(descriptor);
  const reader = ThreadBuffersReader.attach(descriptor);
  const drain =
    <E, R>(consumer: Consumer<E>, out: E, decode: (e: E) => R) =>
    () => {
      const records: R[] = [];
      while (consumer.poll(out)) records.push(decode(out));
      return records;
    };
  return {
    reader,
    logs: drain(reader.logs.consumer({ from: 'oldest' }), LogEvent.create(), (e) =>
      decodeLog(e, reader.strings),
    ),
    metrics: drain(reader.metrics.consumer({ from: 'oldest' }), MetricEvent.create(), (e) =>
      decodeMetric(e, reader.strings),
    ),
    spans: drain(reader.spans.consumer({ from: 'oldest' }), SpanEvent.create(), (e) =>
      decodeSpan(e, reader.strings),
    ),
  };
}
