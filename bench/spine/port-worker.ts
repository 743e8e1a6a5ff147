/** The same 3-hop pipeline over MessagePorts: each hop forwards the message object to the next port. */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { Clock } from '../../src/index.js';
import { latencyHistogram, latencyReport } from './spine.js';

const { role, input, output, count, intervalNs, clockBase } = workerData as {
  role: 'source' | 'relay' | 'sink';
  input?: MessagePort;
  output?: MessagePort;
  count: number;
  intervalNs: number;
  clockBase: number;
};
const clock = new Clock(clockBase);
type Msg = { n: number; a: number; b: number; c: number };

if (role === 'source') {
  parentPort!.postMessage({ type: 'ready' });
  let n = 0;
  const send = () => {
    if (n >= count) return parentPort!.postMessage({ type: 'done' });
    output!.postMessage({ n: n++, a: clock.now(), b: 2, c: 3 } satisfies Msg);
    setTimeout(send, intervalNs / 1e6);
  };
  send();
} else if (role === 'relay') {
  input!.on('message', (m: Msg) => output!.postMessage(m));
  parentPort!.postMessage({ type: 'ready' });
  parentPort!.on('message', () => process.exit(0));
} else {
  const histogram = latencyHistogram();
  let seen = 0;
  input!.on('message', (m: Msg) => {
    histogram.recordValue(Math.max(1, Math.round(clock.now() - m.a)));
    if (++seen === count) {
      const report = latencyReport(histogram);
      parentPort!.postMessage(report);
      process.exit(0);
    }
  });
  parentPort!.postMessage({ type: 'ready' });
}
