import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { defineMessage, type Layout, SeqlockQueue } from '../../src/index.js';
import type { RawBlock } from '../../src/telemetry/persist/protocol.js';
import { drainAtStop, SourceReader } from '../../src/telemetry/persist/source-reader.js';
import { timeIndexOf } from '../../src/telemetry/persist/streams.js';
import { Numbered, numbered } from '../fixtures/dying-writer.js';
import { compiledUrl } from '../helpers/compiled.js';
import { exited, messageOfType, startWorker } from '../helpers/workers.js';

const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

/**
 * The persister's reader of one source, in one thread: it stays a page of slots behind a
 * producer that is writing (so that its reads do not pull the lines the producer writes next),
 * reads to the head once the head stands still, and reads everything at the stop.
 */
const Tick = defineMessage('Tick', { t: 'f64', n: 'u32' });

/** The persister's reader of `queue`, whose records' time is field `time` of `layout`. */
function readerOf(
  queue: SeqlockQueue<object>,
  layout: Layout<object>,
  time: string,
  blockBytes = 1024 * 1024,
  own = false,
): SourceReader {
  return new SourceReader(
    {
      key: `stream:${layout.name}`,
      kind: 'messages',
      layout: layout.describe(),
      envelope: false,
      buffer: queue.buffer,
      from: 0,
      timeIndex: timeIndexOf([layout.describe()], 0, time),
      ...(own ? { own } : {}),
    },
    blockBytes,
  );
}

function source(capacity: number) {
  const queue = SeqlockQueue.create(Tick, { capacity });
  const reader = readerOf(queue, Tick, 't');
  const producer = queue.producer();
  let n = 0;
  const publish = (count: number) => {
    for (let i = 0; i < count; i++) producer.publish({ t: n, n: n++ });
  };
  const blocks: RawBlock[] = [];
  const cut = (block: RawBlock) => void blocks.push(block);
  return { queue, reader, publish, blocks, cut };
}

describe("the persister's reader of a source", () => {
  it('stays a page behind a writing producer, then reads to the head once it stands still', () => {
    // 64-byte slots: a 4 KiB page is 64 of them.
    const { queue, reader, publish, blocks, cut } = source(1024);
    expect(queue.stride).toBe(64);
    publish(100);
    expect(reader.copy(cut, 0)).toBe(100 - 64);
    // A pass right after sees the same head: not yet a pause.
    expect(reader.copy(cut, 1)).toBe(0);
    // Still 2 ms on: the rest.
    expect(reader.copy(cut, 2)).toBe(64);
    publish(10);
    expect(reader.copy(cut, 3)).toBe(0);
    expect(reader.copy(cut, 5)).toBe(10);
    // At the stop, everything at once, whatever the head did.
    publish(30);
    expect(reader.copy(cut, 5, true)).toBe(30);
    // 140 records fit one block: none cut yet.
    expect(blocks).toEqual([]);
  });

  it('on a small ring, a quarter of it behind', () => {
    const { reader, publish, cut } = source(16);
    publish(12);
    expect(reader.copy(cut, 0)).toBe(8);
    expect(reader.copy(cut, 2)).toBe(4);
  });

  it('a producer that never pauses: its newest records wait, never more than a page of them', () => {
    const { reader, publish, cut } = source(1024);
    let copied = 0;
    for (let ms = 0; ms < 100; ms++) {
      publish(20);
      copied += reader.copy(cut, ms);
      expect(20 * (ms + 1) - copied).toBeLessThanOrEqual(64);
    }
    expect(copied).toBe(2000 - 64);
  });

  it('a stride of 128 bytes: 32 slots make the page', () => {
    const Wide = defineMessage('Wide', {
      t: 'f64',
      a: 'f64',
      b: 'f64',
      c: 'f64',
      d: 'f64',
      e: 'f64',
      f: 'f64',
      g: 'f64',
    });
    const queue = SeqlockQueue.create(Wide, { capacity: 1024 });
    expect(queue.stride).toBe(128);
    const reader = readerOf(queue, Wide, 't');
    const producer = queue.producer();
    for (let i = 0; i < 100; i++) producer.publish({ t: i, a: 0, b: 0, c: 0, d: 0, e: 0, f: 0, g: 0 });
    expect(reader.copy(() => {}, 0)).toBe(100 - 32);
  });

  it('every record copied reaches a block, in order, with its sequence', () => {
    const { reader, publish, blocks, cut } = source(1024);
    publish(200);
    reader.copy(cut, 0);
    publish(50);
    reader.copy(cut, 0, true);
    reader.flush(cut);
    expect(blocks.reduce((n, b) => n + b.count, 0)).toBe(250);
    expect(blocks.at(-1)?.coverage).toMatchObject({ endSeq: 250, lostTotal: 0 });
  });

  it('at the stop, a writer that writes on is not followed: a slot it claims once the stop began is not waited for', () => {
    const queue = SeqlockQueue.create(Tick, { capacity: 1024, poisonTimeoutMs: 50 });
    // Blocks of two records: the stop cuts one as it goes, and the writer claims the next slot then.
    const reader = readerOf(queue, Tick, 't', 64);
    const producer = queue.claimingProducer();
    for (let n = 0; n < 10; n++) producer.publish({ t: n, n });
    const blocks: RawBlock[] = [];
    const { copied, waits } = drainAtStop([reader], (block) => {
      blocks.push(block);
      // Mid-write (claimed, not committed) as a thread logging flat out nearly always is.
      if (blocks.length === 1) producer.claim();
    });
    expect({ copied, waits }).toEqual({ copied: 10, waits: 0 });
    reader.flush((block) => void blocks.push(block));
    // Everything published before the stop, nothing counted lost: the claimed slot is after it.
    expect(blocks.at(-1)?.coverage).toMatchObject({ endSeq: 10, lostTotal: 0, poisonedTotal: 0 });
    producer.commit();
  });

  it('at the stop, what the persister thread writes itself meanwhile (its warnings) is read to its end; another thread’s, to where it stood', () => {
    for (const own of [false, true]) {
      const queue = SeqlockQueue.create(Tick, { capacity: 1024 });
      const reader = readerOf(queue, Tick, 't', 64, own);
      const producer = queue.producer();
      for (let n = 0; n < 10; n++) producer.publish({ t: n, n });
      let cuts = 0;
      const { copied } = drainAtStop([reader], () => {
        // Written in a cut, as the persister logs a loss a block shows.
        if (cuts++ === 0) for (let n = 10; n < 15; n++) producer.publish({ t: n, n });
      });
      expect(copied, own ? 'own' : 'another thread').toBe(own ? 15 : 10);
    }
  });

  it('at the stop, a slot a dead writer left claimed is waited out: what follows is read, the slot counted lost', async () => {
    const queue = SeqlockQueue.create(Numbered, { capacity: 1024, multiProducer: true, poisonTimeoutMs: 50 });
    const reader = readerOf(queue, Numbered, 'n');
    const producer = queue.producer();
    for (let n = 0; n < 3; n++) producer.publish(numbered(n));
    const blocks: RawBlock[] = [];
    expect(reader.copy((block) => void blocks.push(block), 0, true)).toBe(3);
    // A writer that claims sequence 3 and dies with it half written.
    const writer = startWorker(compiledUrl('../fixtures/dying-writer.ts', import.meta.url), {
      role: 'stopped-writer',
      kind: 'multi',
      buffer: queue.buffer,
      before: 0,
      mode: 'die',
    });
    workers.push(writer);
    await messageOfType(writer, 'stopping');
    expect(await exited(writer)).toBe(0);
    for (let n = 4; n < 11; n++) producer.publish(numbered(n));
    // The stop's first pass meets the slot, copying nothing.
    const { copied, waits } = drainAtStop([reader], (block) => void blocks.push(block));
    expect(copied).toBe(7);
    // One wait, of the timeout: the clock starts as the reader goes to sleep (it started at the
    // next look after a first sleep of the whole timeout, and a second sleep followed).
    expect(waits).toBe(1);
    reader.flush((block) => void blocks.push(block));
    expect(blocks.at(-1)?.coverage).toMatchObject({ endSeq: 11, lostTotal: 1, poisonedTotal: 1 });
    expect(blocks.reduce((n, b) => n + b.count, 0)).toBe(10);
  });

  it('at the stop, K slots that dead writers left half written in one source: the writers are waited for once, not K times over', async () => {
    const K = 6;
    const queue = SeqlockQueue.create(Numbered, {
      capacity: 1024,
      multiProducer: true,
      poisonTimeoutMs: 100,
    });
    const reader = readerOf(queue, Numbered, 'n');
    const producer = queue.producer();
    for (let n = 0; n < 3; n++) producer.publish(numbered(n));
    // K writers, each claims a sequence (3 to 3 + K - 1) and dies with it half written.
    const writers = Array.from({ length: K }, () =>
      startWorker(compiledUrl('../fixtures/dying-writer.ts', import.meta.url), {
        role: 'stopped-writer',
        kind: 'multi',
        buffer: queue.buffer,
        before: 0,
        mode: 'die',
      }),
    );
    workers.push(...writers);
    expect(await Promise.all(writers.map((w) => exited(w)))).toEqual(Array(K).fill(0));
    for (let n = 3 + K; n < 10 + K; n++) producer.publish(numbered(n));
    const blocks: RawBlock[] = [];
    const { copied, waits } = drainAtStop([reader], (block) => void blocks.push(block));
    reader.flush((block) => void blocks.push(block));
    // Every dead slot counted lost, every record after them read.
    expect(copied).toBe(10);
    expect(blocks.at(-1)?.coverage).toMatchObject({ endSeq: 10 + K, lostTotal: K, poisonedTotal: K });
    const records = blocks.flatMap((b) => {
      const f64 = new Float64Array(b.records, 0, b.bytes / 8);
      const stride = b.bytes / 8 / b.count;
      return Array.from({ length: b.count }, (_, i) => f64[i * stride]);
    });
    expect(records).toEqual([0, 1, 2, ...Array.from({ length: 7 }, (_, i) => 3 + K + i)]);
    // Each slot was stuck since the stop began (its writer claimed it before): once the first
    // was taken for dead, the others are too, after a second wait at most (the queue gives a
    // claimed slot twice the timeout). Waiting for each in turn, from when the reader met it,
    // took two waits per slot: one for its clock to start, one for it to run out.
    expect(waits).toBeLessThanOrEqual(2);
  }, 60_000);
});
