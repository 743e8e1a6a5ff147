/**
 * The persister's thread: attaches to every source as an ordinary consumer and copies slots into
 * blocks, nothing else (compression and shipping happen in the main thread, on libuv's pool).
 * It never announces itself to producers: a publish never pays for waking it. Idle, it sleeps
 * on its own futex word for a millisecond at a time (a phase change wakes it at once); busy, it
 * copies until every source is empty.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Spine } from '../../spine/index.js';
import type { FromPersister, PersisterWorkerData, RawBlock, ToPersister } from './protocol.js';
import { SourceReader } from './source-reader.js';

const data = workerData as PersisterWorkerData;
const port = parentPort!;
const post = (message: FromPersister, transfer?: ArrayBuffer) =>
  port.postMessage(message, transfer === undefined ? [] : [transfer]);
const spine = Spine.attach(data.spine);
const readers = data.sources.map((source) => new SourceReader(source, data.blockBytes));
const parker = spine.control.parker(data.worker, () => []);
let stopping = false;

port.on('message', (message: ToPersister) => {
  if (message.type === 'source') readers.push(new SourceReader(message.source, data.blockBytes));
  else stopping = true;
});

const cut = (block: RawBlock, transfer: ArrayBuffer): void => post(block, transfer);

/** One pass over every source; returns how many records it copied. */
function pass(): number {
  const now = Date.now();
  let copied = 0;
  for (let i = 0; i < readers.length; i++) {
    const reader = readers[i]!;
    copied += reader.copy(cut, now);
    reader.cutIfOld(cut, now, data.blockMs);
  }
  return copied;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

post({ type: 'attached' });
let lastYield = Date.now();
while (!stopping) {
  if (pass() === 0) {
    parker.park(parker.announce(), 1);
    parker.retire();
    await yieldToEventLoop();
    lastYield = Date.now();
  } else if (Date.now() - lastYield > 5) {
    await yieldToEventLoop();
    lastYield = Date.now();
  }
}
// The main thread asks for the stop once every actor thread has ended: what is in the queues now
// is all there will be.
while (pass() > 0);
for (const reader of readers) reader.flush(cut);
post({ type: 'stopped', sources: readers.map((r) => r.totals()) });
for (const reader of readers) reader.close();
port.close();
