/**
 * The persister's thread: attaches to every source as an ordinary consumer and copies slots into
 * blocks, nothing else (compression and shipping happen in the main thread, on libuv's pool).
 * It never announces itself to producers: a publish never pays for waking it. Idle, it sleeps
 * for a millisecond at a time (under a System, on its own futex word of the spine's control
 * block, which a phase change wakes at once); busy, it copies until every source is empty.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { Spine } from '../../spine/index.js';
import { bindThreadInstrumentation, logger } from '../instrumentation/index.js';
import type { FromPersister, PersisterWorkerData, RawBlock, ToPersister } from './protocol.js';
import { drainAtStop, persisterOwner, SourceReader } from './source-reader.js';

const data = workerData as PersisterWorkerData;
// First: whatever this thread records goes into the buffers the persister reads as its own.
bindThreadInstrumentation(data.instrumentation);
const port = parentPort!;
const post = (message: FromPersister, transfer?: ArrayBuffer) =>
  port.postMessage(message, transfer === undefined ? [] : [transfer]);
const readers: SourceReader[] = [];
/** This thread's mark on its consumer entries: the main thread gives them back if it dies. */
const owner = persisterOwner(threadId);
/** A source this thread cannot attach to: refused alone (see `ToPersister`'s 'source'). */
const refuse = (key: string, error: unknown) =>
  post({ type: 'refused', key, error: error instanceof Error ? error.message : String(error) });
try {
  for (const source of data.sources) {
    try {
      readers.push(new SourceReader(source, data.blockBytes, owner));
    } catch (error) {
      // A thread started again after one died refuses it alone, as a late source is refused: a
      // first thread fails its start instead, which the System reports.
      if (!data.restarted) throw error;
      refuse(source.key, error);
    }
  }
} catch (error) {
  // Those taken so far are given back at once (the main thread, learning of none before
  // 'attached', gives back those of this thread's mark once it has ended).
  for (const reader of readers) reader.close();
  throw error;
}
const nap = napper();
const log = logger('dorsal.persister');
/** Per source, the losses its last block carried: a new loss is logged once per block. */
const lostSoFar = new Map<string, number>(data.sources.map((s) => [s.key, s.lostBefore ?? 0]));
const lapped = { source: '', lost: 0 };
let stopping = false;

const attached = (added: readonly SourceReader[]) =>
  post({ type: 'attached', entries: added.map((r) => ({ key: r.key, entry: r.entry })) });

port.on('message', (message: ToPersister) => {
  if (message.type === 'source') {
    let reader: SourceReader;
    try {
      reader = new SourceReader(message.source, data.blockBytes, owner);
    } catch (error) {
      // That source alone goes unread (counted lost at the stop); the others go on.
      refuse(message.source.key, error);
      return;
    }
    readers.push(reader);
    attached([reader]);
  } else stopping = true;
});

const cut = (block: RawBlock, transfer: ArrayBuffer): void => {
  const before = lostSoFar.get(block.key) ?? 0;
  if (block.coverage.lostTotal > before) {
    lapped.source = block.key;
    lapped.lost = block.coverage.lostTotal - before;
    log.warn('lapped: records lost', lapped);
  }
  lostSoFar.set(block.key, block.coverage.lostTotal);
  post(block, transfer);
};

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

/** A sleep of about a millisecond: on the spine's control block under a System, else on a word of its own. */
function napper(): () => void {
  if (data.spine !== undefined && data.worker !== undefined) {
    const parker = Spine.attach(data.spine).control.parker(data.worker, () => []);
    return () => {
      parker.park(parker.announce(), 1);
      parker.retire();
    };
  }
  const word = new Int32Array(new SharedArrayBuffer(4));
  // A timed sleep on a word nothing stores to: it orders nothing; a stop is seen at the next yield.
  return () => void Atomics.wait(word, 0, 0, 1);
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

attached(readers);
let lastYield = Date.now();
while (!stopping) {
  if (pass() === 0) {
    nap();
    await yieldToEventLoop();
    lastYield = Date.now();
  } else if (Date.now() - lastYield > 5) {
    await yieldToEventLoop();
    lastYield = Date.now();
  }
}
// The main thread asks for the stop once every thread that writes into the sources has ended
// (a System's actors) or is done: what is in the queues now is all there will be.
drainAtStop(readers, cut);
for (const reader of readers) reader.flush(cut);
// What the flush logged (losses) is in this thread's own logs: one more pass carries it.
drainAtStop(readers, cut);
for (const reader of readers) reader.flush(cut);
post({ type: 'stopped' });
for (const reader of readers) reader.close();
port.close();
