import { isMainThread, threadId } from 'node:worker_threads';
import {
  bindThreadInstrumentation,
  boundThreadBuffers,
  createThreadBuffers,
  type ThreadBuffersDescriptor,
  ThreadBuffersReader,
} from '../telemetry/instrumentation/index.js';
import type { InstrumentationPositions } from './attachments.js';
import type { InstrumentationCapacities } from './system-options.js';

/**
 * The instrumentation buffers of the thread that makes a System, and where their queues stand
 * now: what is recorded after is the run's. A thread with none gets buffers on the spine's clock
 * (`clockBaseNs`), bound at once, so that its events and the messages share one time line. A
 * thread that has some already (it logged before, or made another System) keeps them, with
 * their own clock base: every stream in the lake names its base, so its times rebase exactly.
 */
export function systemThreadBuffers(
  clockBaseNs: number,
  capacities: InstrumentationCapacities = {},
): {
  readonly buffers: ThreadBuffersDescriptor;
  readonly from: InstrumentationPositions;
} {
  let buffers = boundThreadBuffers()?.descriptor;
  if (buffers === undefined) {
    buffers = createThreadBuffers({
      ...capacities,
      name: isMainThread ? 'main' : `worker-${threadId}`,
      clockBaseNs,
    });
    bindThreadInstrumentation(buffers);
  }
  const reader = ThreadBuffersReader.attach(buffers);
  return {
    buffers,
    from: {
      logs: reader.logs.stats().published,
      metrics: reader.metrics.stats().published,
      spans: reader.spans.stats().published,
      dropsBefore: {
        logs: reader.droppedOf('logs'),
        metrics: reader.droppedOf('metrics'),
        spans: reader.droppedOf('spans'),
      },
    },
  };
}
