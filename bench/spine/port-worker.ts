/**
 * The same 3-hop pipeline over MessagePorts: each hop forwards the message object to the next
 * port. A worker plays one or more roles (`roles`), as the actors of a thread do. The first
 * `warmup` messages are not reported.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { Clock } from '../../src/index.js';
import { LatencyRecorder } from './spine.js';

interface RoleSpec {
  role: 'source' | 'relay' | 'sink';
  input?: MessagePort;
  output?: MessagePort;
}
const { roles, count, warmup, intervalNs, clockBase } = workerData as {
  roles: RoleSpec[];
  count: number;
  warmup: number;
  intervalNs: number;
  clockBase: number;
};
const clock = new Clock(clockBase);
type Msg = { n: number; a: number; b: number; c: number };

for (const { role, input, output } of roles) {
  if (role === 'source') {
    let n = 0;
    const send = () => {
      if (n >= count) return parentPort!.postMessage({ type: 'done' });
      output!.postMessage({ n: n++, a: clock.now(), b: 2, c: 3 } satisfies Msg);
      setTimeout(send, intervalNs / 1e6);
    };
    // Starts once every worker is ready (the main thread says so).
    parentPort!.once('message', send);
  } else if (role === 'relay') {
    input!.on('message', (m: Msg) => output!.postMessage(m));
  } else {
    const latencies = new LatencyRecorder(warmup);
    let seen = 0;
    input!.on('message', (m: Msg) => {
      latencies.record(m.n, clock.now() - m.a);
      if (++seen === count) parentPort!.postMessage(latencies.report());
    });
  }
}
parentPort!.postMessage({ type: 'ready' });
