import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AdaptiveWaitStrategy,
  BlockingWaitStrategy,
  defineMessage,
  type PoisonedSlot,
  PoisonedSlotError,
  SeqlockQueue,
  SeqlockVector,
  type WaitStrategy,
} from '../../src/index.js';
import { QueueHeader } from '../../src/queues/queue-header.js';
import { epochOf, SequenceMath } from '../../src/queues/sequence.js';
import { Numbered, numbered } from '../fixtures/dying-writer.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { exited, messageOfType, startWorker } from '../helpers/workers.js';

const stoppedWriter = compiledUrl('../fixtures/dying-writer.ts', import.meta.url);
const numberedProducer = compiledUrl('../fixtures/numbered-producer.ts', import.meta.url);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

function start(module: URL, data: object): Worker {
  const worker = startWorker(module, data);
  workers.push(worker);
  return worker;
}

type Kind = 'queue' | 'multi' | 'vector';

/** A writer that writes `before` messages, then dies with its next slot half written. */
async function dieMidWrite(kind: Kind, buffer: SharedArrayBuffer, before: number): Promise<void> {
  const writer = start(stoppedWriter, { role: 'stopped-writer', kind, buffer, before, mode: 'die' });
  await messageOfType(writer, 'stopping');
  expect(await exited(writer)).toBe(0);
}

/** A writer paused half way through its write; `resume()` lets it finish and says what became of it. */
async function pauseMidWrite(kind: Kind, buffer: SharedArrayBuffer, before: number) {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const writer = start(stoppedWriter, {
    role: 'stopped-writer',
    kind,
    buffer,
    before,
    mode: 'pause',
    gate: gate.buffer,
  });
  await messageOfType(writer, 'paused');
  return {
    resume: async () => {
      const resumed = messageOfType<{ type: 'resumed'; result: number | string }>(writer, 'resumed');
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      return (await resumed).result;
    },
  };
}

/**
 * A writer that sleeps `pauseMs` in the middle of its write, then finishes it: resolves once it
 * sleeps, with what became of its write (a sequence, -1, or 'written').
 */
async function sleepMidWrite(kind: Kind, buffer: SharedArrayBuffer, pauseMs: number) {
  const writer = start(stoppedWriter, {
    role: 'stopped-writer',
    kind,
    buffer,
    before: 0,
    mode: 'pause',
    pauseMs,
  });
  const resumed = messageOfType<{ type: 'resumed'; result: number | string }>(writer, 'resumed');
  await messageOfType(writer, 'paused');
  return resumed;
}

/** Polls `consumer` until `condition` holds (bounded), checking each message is whole, and collecting their n. */
async function pollUntil(
  consumer: { poll(out: Numbered): boolean },
  condition: () => boolean,
  what: string,
): Promise<number[]> {
  const out = Numbered.create();
  const seen: number[] = [];
  await until(() => {
    while (consumer.poll(out)) {
      expect(out.check).toBe(out.n * 3 + 1);
      seen.push(out.n);
    }
    return condition();
  }, what);
  return seen;
}

const TIMEOUT = 40;

describe('a slot whose writer died half way', () => {
  it('single producer: consumers skip it after the poison timeout and count it; a replacement producer goes on', async () => {
    const queue = SeqlockQueue.create(Numbered, { capacity: 16, poisonTimeoutMs: TIMEOUT });
    const events: PoisonedSlot[] = [];
    const polled = queue.consumer({ onPoisoned: (e) => events.push(e) });
    const waiting = queue.consumer({ wait: new BlockingWaitStrategy() });
    await dieMidWrite('queue', queue.buffer, 5);

    expect(await pollUntil(polled, () => polled.poisoned === 1, 'the poisoned slot to be skipped')).toEqual([
      0, 1, 2, 3, 4,
    ]);
    expect(events).toEqual([{ queue: 'Numbered', sequence: 5, what: 'skipped' }]);
    expect(polled).toMatchObject({ received: 5, lost: 1, sequence: 6 });
    // A consumer restarted where this one stands (one past the count: the dead message was never counted).
    const restarted = queue.consumer({ from: polled.sequence });

    // A consumer parked in take() with no timeout: nothing will ever wake it for the dead slot,
    // yet it skips it once the timeout has passed, and then gives up at its own deadline.
    const out = Numbered.create();
    for (let n = 0; n < 5; n++) expect(waiting.take(out)).toBe(true);
    expect(waiting.take(out, 500)).toBe(false);
    expect(waiting).toMatchObject({ received: 5, lost: 1, poisoned: 1 });

    // The dead thread's role is given back; its replacement resumes at the sequence that died.
    queue.releaseProducer();
    const producer = queue.producer();
    for (let n = 5; n < 8; n++) producer.publish(numbered(n));
    expect(await pollUntil(polled, () => polled.sequence === 8, 'the replacement messages')).toEqual([6, 7]);
    expect(await pollUntil(restarted, () => restarted.sequence === 8, 'the same, restarted')).toEqual([6, 7]);
    expect(waiting.take(out, 5000) && out.n).toBe(6);
    const [stats] = queue.stats().consumers;
    expect(stats).toMatchObject({ received: 7, lost: 1, poisoned: 1, lag: 0 });
    expect(stats!.received + stats!.lost).toBe(queue.stats().published);
  });

  it('single producer dead for good: countDeadClaim counts its open claim as published, so that read + lost = published', async () => {
    const queue = SeqlockQueue.create(Numbered, { capacity: 16, poisonTimeoutMs: TIMEOUT });
    const consumer = queue.consumer();
    // Nothing claimed yet: nothing to count.
    expect(queue.countDeadClaim()).toBe(false);
    await dieMidWrite('queue', queue.buffer, 5);
    expect(queue.stats().published).toBe(5);
    expect(queue.countDeadClaim()).toBe(true);
    expect(queue.stats().published).toBe(6);
    // Counted once.
    expect(queue.countDeadClaim()).toBe(false);
    expect(await pollUntil(consumer, () => consumer.poisoned === 1, 'the dead claim to be skipped')).toEqual([
      0, 1, 2, 3, 4,
    ]);
    const [stats] = queue.stats().consumers;
    expect(stats).toMatchObject({ received: 5, lost: 1, lag: 0 });
    expect(stats!.received + stats!.lost).toBe(queue.stats().published);
    // A producer that takes over after all starts past the dead claim: nothing is written twice.
    queue.releaseProducer();
    const producer = queue.producer();
    producer.publish(numbered(6));
    expect(await pollUntil(consumer, () => consumer.sequence === 7, 'the next message')).toEqual([6]);
  });

  it('multi-producer, a producer died after its claim: consumers skip the slot; the producer a lap later takes it over', async () => {
    const capacity = 8;
    const queue = SeqlockQueue.create(Numbered, { capacity, multiProducer: true, poisonTimeoutMs: TIMEOUT });
    const consumer = queue.consumer();
    const producer = queue.producer();
    for (let n = 0; n < 3; n++) producer.publish(numbered(n));
    expect(await pollUntil(consumer, () => consumer.sequence === 3, 'the first messages')).toEqual([0, 1, 2]);
    // What a producer killed right after its claim leaves: the claim counter past a slot nobody writes.
    Atomics.add(new Int32Array(queue.buffer), QueueHeader.CLAIM, 1);
    // Up to a lap after the dead slot (3): none of these needs slot 3 again.
    for (let n = 4; n < 11; n++) producer.publish(numbered(n));
    const seen = await pollUntil(consumer, () => consumer.sequence === 11, 'the dead slot to be skipped');
    expect(seen).toEqual([4, 5, 6, 7, 8, 9, 10]);
    expect(consumer).toMatchObject({ lost: 1, poisoned: 1 });

    // Sequence 11 maps to slot 3: its producer (on another thread: it waits) takes it over.
    const next = start(numberedProducer, { buffer: queue.buffer, from: 11, count: 5 });
    const poisoned = messageOfType<{ type: 'poisoned' } & PoisonedSlot>(next, 'poisoned');
    expect(await messageOfType<{ type: 'done'; published: number }>(next, 'done')).toMatchObject({
      published: 5,
    });
    expect(await poisoned).toMatchObject({ queue: 'Numbered', sequence: 3, what: 'taken-over' });
    expect(await pollUntil(consumer, () => consumer.sequence === 16, 'the messages after it')).toEqual([
      11, 12, 13, 14, 15,
    ]);
    expect(queue.stats()).toMatchObject({ published: 16, poisoned: 1 });
    expect(consumer.received + consumer.lost).toBe(16);
  });

  it('multi-producer, a producer died half way: the slot is abandoned, its sequences skipped, the queue goes on', async () => {
    const capacity = 8;
    const queue = SeqlockQueue.create(Numbered, { capacity, multiProducer: true, poisonTimeoutMs: TIMEOUT });
    const consumer = queue.consumer();
    const producer = queue.producer();
    for (let n = 0; n < 3; n++) producer.publish(numbered(n));
    expect(await pollUntil(consumer, () => consumer.sequence === 3, 'the first messages')).toEqual([0, 1, 2]);
    await dieMidWrite('multi', queue.buffer, 0);
    for (let n = 4; n < 11; n++) producer.publish(numbered(n));
    expect(await pollUntil(consumer, () => consumer.sequence === 11, 'the dead slot to be skipped')).toEqual([
      4, 5, 6, 7, 8, 9, 10,
    ]);

    // The producer of sequence 11 finds slot 3 half written: it abandons it and claims 12.
    const next = start(numberedProducer, { buffer: queue.buffer, from: 11, count: 5 });
    const poisoned = messageOfType<{ type: 'poisoned' } & PoisonedSlot>(next, 'poisoned');
    expect(await messageOfType<{ type: 'done'; published: number }>(next, 'done')).toMatchObject({
      published: 5,
    });
    expect(await poisoned).toMatchObject({ queue: 'Numbered', sequence: 3, what: 'abandoned' });
    // Sequence 11 carries no message: skipped at once, counted.
    expect(await pollUntil(consumer, () => consumer.sequence === 17, 'the messages after it')).toEqual([
      11, 12, 13, 14, 15,
    ]);
    expect(consumer).toMatchObject({ lost: 2, poisoned: 2 });
    expect(queue.stats()).toMatchObject({ published: 17, poisoned: 1 });
    expect(consumer.received + consumer.lost).toBe(17);
  });

  it('multi-producer, every slot abandoned: publish drops, and poll returns, having skipped only the sequences producers claimed', async () => {
    const capacity = 4;
    const queue = SeqlockQueue.create(Numbered, { capacity, multiProducer: true, poisonTimeoutMs: TIMEOUT });
    const consumer = queue.consumer();
    for (let slot = 0; slot < capacity; slot++) await dieMidWrite('multi', queue.buffer, 0);
    const producer = queue.producer();
    // Every slot half written: abandoned in turn, then every claim finds its slot abandoned.
    expect(producer.publish(numbered(9))).toBe(-1);
    const claimed = queue.stats().published;
    expect(claimed).toBeGreaterThan(capacity);
    // A poll skipped unclaimed sequences for ever (it never returned); now it stops at the claims.
    expect(consumer.poll(Numbered.create())).toBe(false);
    expect(consumer).toMatchObject({ sequence: claimed, received: 0, lost: claimed });
    expect(consumer.poll(Numbered.create())).toBe(false);
    expect(consumer.lost).toBe(claimed);
  });

  it('multi-producer, a slot abandoned: a consumer at the head skips its sequence only once a producer claimed it', async () => {
    const capacity = 4;
    const queue = SeqlockQueue.create(Numbered, { capacity, multiProducer: true, poisonTimeoutMs: TIMEOUT });
    const consumer = queue.consumer();
    await dieMidWrite('multi', queue.buffer, 0);
    const producer = queue.producer();
    for (let n = 1; n < 4; n++) producer.publish(numbered(n));
    // Sequence 4 finds slot 0 half written: abandoned, and it goes in as sequence 5.
    expect(producer.publish(numbered(4))).toBe(5);
    const seen = await pollUntil(consumer, () => consumer.sequence === 6, 'the head');
    expect(consumer.received + consumer.lost).toBe(queue.stats().published);
    // At the head, before slot 0 comes round again (sequence 8): nothing more is counted.
    expect(consumer.poll(Numbered.create())).toBe(false);
    producer.publish(numbered(6));
    producer.publish(numbered(7));
    seen.push(...(await pollUntil(consumer, () => consumer.sequence === 8, 'two more')));
    expect(consumer.poll(Numbered.create())).toBe(false);
    expect(consumer.sequence).toBe(8);
    expect(consumer.received + consumer.lost).toBe(queue.stats().published);
    expect(seen).toContain(7);
  });

  it('multi-producer: a wait for a slow writer is forgotten once over, so the same sequence mod 2^32 is waited for in full again', async () => {
    const capacity = 4;
    const poisonTimeoutMs = 1000;
    const queue = SeqlockQueue.create(Numbered, { capacity, multiProducer: true, poisonTimeoutMs });
    const events: string[] = [];
    const producer = queue.producer({ onPoisoned: (e) => events.push(`${e.what}:${e.sequence}`) });
    /** A writer claims the next sequence and sleeps 100 ms mid-write; the last of `capacity` publishes waits for it. */
    const stallOnce = async () => {
      const resumed = await sleepMidWrite('multi', queue.buffer, 100);
      for (let n = 0; n < capacity; n++) expect(producer.publish(numbered(n))).not.toBe(-1);
      expect((await resumed).result).not.toBe(-1);
    };
    await stallOnce();
    // Longer than the timeout since that wait began, and 2^32 claims on: the slots as the lap
    // before 2^32 left them (four billion real claims would take minutes).
    await new Promise((resolve) => setTimeout(resolve, poisonTimeoutMs + 100));
    const i32 = new Int32Array(queue.buffer);
    const math = new SequenceMath(capacity);
    const slotsByte =
      QueueHeader.CONSUMERS_BYTE + i32[QueueHeader.MAX_CONSUMERS]! * QueueHeader.CONSUMER_ENTRY_BYTES;
    for (let exact = 2 ** 32 - capacity; exact < 2 ** 32; exact++) {
      const versionIndex = (slotsByte + (exact % capacity) * queue.stride) >> 2;
      i32[versionIndex] = math.doneVersion(exact >>> 0);
      i32[versionIndex + 1] = epochOf(exact);
    }
    Atomics.store(i32, QueueHeader.CLAIM, 0);
    new Float64Array(queue.buffer)[QueueHeader.CLAIMED_F64] = 2 ** 32;
    // The same sequences mod 2^32 stall again: the writer, alive, is waited for, not abandoned.
    await stallOnce();
    expect(events).toEqual([]);
  });

  it('multi-producer, a producer paused half way for longer than the timeout: no message ever mixes with its late stores', async () => {
    const capacity = 8;
    const queue = SeqlockQueue.create(Numbered, { capacity, multiProducer: true, poisonTimeoutMs: TIMEOUT });
    const consumer = queue.consumer();
    const producer = queue.producer();
    for (let n = 0; n < 3; n++) producer.publish(numbered(n));
    expect(await pollUntil(consumer, () => consumer.sequence === 3, 'the first messages')).toEqual([0, 1, 2]);
    const paused = await pauseMidWrite('multi', queue.buffer, 0);
    for (let n = 4; n < 11; n++) producer.publish(numbered(n));
    await pollUntil(consumer, () => consumer.sequence === 11, 'the paused slot to be skipped');
    // Another producer laps the ring: it abandons the paused writer's slot.
    const next = start(numberedProducer, { buffer: queue.buffer, from: 11, count: 5 });
    await messageOfType(next, 'done');
    // The paused writer comes back: its slot was abandoned, it drops its message.
    expect(await paused.resume()).toBe(-1);
    // Every lap now skips slot 3: producers claim the next sequence, consumers skip it. (One
    // message at a time, read at once: a ring of 8 would lap the consumer otherwise.)
    const seen = await pollUntil(consumer, () => consumer.sequence === 17, 'the messages before');
    for (let n = 16; n < 30; n++) {
      producer.publish(numbered(n));
      seen.push(...(await pollUntil(consumer, () => consumer.lag === 0, `message ${n}`)));
    }
    // Every message read is whole (pollUntil checks), and every sequence is accounted for.
    expect(seen).toEqual([11, 12, 13, 14, 15, ...Array.from({ length: 14 }, (_, i) => 16 + i)]);
    const { published, poisoned } = queue.stats();
    // Skipped: the paused writer's sequence, then every sequence of its slot from the abandonment on.
    expect(consumer).toMatchObject({ received: 29, lost: published - 29 });
    expect(consumer.poisoned).toBe(consumer.lost);
    // Abandoned once, dropped once.
    expect(poisoned).toBe(2);
  });

  it('take() with no timeout skips a slot whose writer claimed it and never wrote, though a stall starts while it waits', () => {
    const queue = SeqlockQueue.create(Numbered, {
      capacity: 8,
      multiProducer: true,
      poisonTimeoutMs: TIMEOUT,
    });
    const producer = queue.producer();
    producer.publish(numbered(0));
    Atomics.add(new Int32Array(queue.buffer), QueueHeader.CLAIM, 1);
    producer.publish(numbered(2));
    for (const wait of [new BlockingWaitStrategy(), undefined]) {
      const consumer = queue.consumer({ from: 0, ...(wait ? { wait } : {}) });
      const out = Numbered.create();
      expect(consumer.take(out)).toBe(true);
      expect(out.n).toBe(0);
      expect(consumer.take(out)).toBe(true);
      expect(out.n).toBe(2);
      expect(consumer).toMatchObject({ received: 2, lost: 1, poisoned: 1 });
    }
  });

  it('take() on a closed queue waits a stuck slot out parked, not in a loop of waits that return at once', () => {
    const queue = SeqlockQueue.create(Numbered, { capacity: 8, poisonTimeoutMs: TIMEOUT });
    const producer = queue.claimingProducer();
    producer.publish(numbered(0));
    producer.claim();
    // The writer "dies" with its claim open, and the queue is closed (a stop).
    queue.close();
    for (const inner of [new BlockingWaitStrategy(), new AdaptiveWaitStrategy()]) {
      let waits = 0;
      const wait: WaitStrategy = {
        name: 'counted',
        wait: (condition, parker, timeoutMs) => {
          waits++;
          return inner.wait(condition, parker, timeoutMs);
        },
      };
      const consumer = queue.consumer({ from: 0, wait });
      const out = Numbered.create();
      expect(consumer.take(out)).toBe(true);
      expect(consumer.take(out)).toBe(false);
      expect(consumer).toMatchObject({ received: 1, lost: 1, poisoned: 1 });
      // A wait or two per stall (each ends when the writer's time is up); it was ~2 M.
      expect(waits, inner.name).toBeLessThan(10);
    }
  });

  it('SeqlockVector: readers and writers of a half-written key get a PoisonedSlotError; reset gives it back', async () => {
    const vector = SeqlockVector.create(Numbered, { length: 2, poisonTimeoutMs: TIMEOUT });
    const reader = vector.reader();
    await dieMidWrite('vector', vector.buffer, 0);
    const out = Numbered.create();
    expect(() => reader.read(0, out)).toThrow(PoisonedSlotError);
    expect(() => vector.write(0, numbered(42))).toThrow(PoisonedSlotError);
    let error: unknown;
    try {
      reader.read(0, out);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ layout: 'Numbered', index: 0, code: 'DORSAL_POISONED_SLOT' });
    // The other key is untouched.
    expect(reader.read(1, out)).toBe(false);

    // Its writer is known dead: the key is given back, and reads as never written.
    expect(vector.reset(0)).toBe(true);
    expect(vector.poisoned).toBe(1);
    expect(reader.read(0, out)).toBe(false);
    vector.write(0, numbered(42));
    expect(reader.read(0, out)).toBe(true);
    expect(out).toEqual(numbered(42));
    expect(vector.reset(0)).toBe(false);
  });

  it('SeqlockVector: a wait for a slow writer is forgotten once over, so the same key and version are waited for in full again', async () => {
    const poisonTimeoutMs = 1000;
    const vector = SeqlockVector.create(Numbered, { length: 1, poisonTimeoutMs });
    const reader = vector.reader();
    const out = Numbered.create();
    /** A writer writes key 0 once, then sleeps 100 ms in the middle of its next write of it: read meanwhile. */
    const stallOnce = async () => {
      const resumed = await sleepMidWrite('vector', vector.buffer, 100);
      expect(reader.read(0, out)).toBe(true);
      expect(out.check).toBe(out.n * 3 + 1);
      expect((await resumed).result).toBe('written');
    };
    await stallOnce();
    await new Promise((resolve) => setTimeout(resolve, poisonTimeoutMs + 100));
    // 2^31 writes of the key on: its version where the wrap brings the same versions back.
    Atomics.store(new Int32Array(vector.buffer), vector.versionIndex(0), -2);
    await stallOnce();
  });

  it('SeqlockVector: a reset never takes a key back to a version it had: a reader paused across it reads a whole value', () => {
    const Quote = defineMessage('Quote', { bid: 'f64', ask: 'f64' });
    const vector = SeqlockVector.create(Quote, { length: 2 });
    const reader = vector.reader();
    vector.write(1, { bid: 1, ask: 1 });
    const i32 = new Int32Array(vector.buffer);
    const at = vector.versionIndex(1);
    const versions: number[] = [];
    let paused = false;
    // The reader's copy pauses after its first field (a setter of `out`), while a writer claims
    // the key and dies, the key is reset, and the next value is written whole.
    const out = {
      stored: 0,
      set bid(value: number) {
        this.stored = value;
        if (paused) return;
        paused = true;
        const claimed = Atomics.add(i32, at, 1) + 1;
        versions.push(claimed);
        expect(vector.reset(1)).toBe(true);
        versions.push(vector.version(1));
        expect(reader.read(1, Quote.create())).toBe(false);
        vector.write(1, { bid: 2, ask: 2 });
        versions.push(vector.version(1));
      },
      get bid(): number {
        return this.stored;
      },
      ask: 0,
    };
    expect(reader.read(1, out as unknown as { bid: number; ask: number })).toBe(true);
    // A whole value: the second (rolled back to 0, the key's versions came again, and the
    // reader's re-check found the one it began with: bid 1, ask 2).
    expect([out.bid, out.ask]).toEqual([2, 2]);
    expect(versions).toEqual([3, 6, 8]);
  });

  it('SeqlockVector: a writer paused half way holds its key; back, it completes, and nothing mixed meanwhile', async () => {
    const vector = SeqlockVector.create(Numbered, { length: 1, poisonTimeoutMs: TIMEOUT });
    const reader = vector.reader();
    const paused = await pauseMidWrite('vector', vector.buffer, 7);
    const out = Numbered.create();
    expect(() => reader.read(0, out)).toThrow(PoisonedSlotError);
    expect(() => vector.write(0, numbered(42))).toThrow(PoisonedSlotError);
    expect(await paused.resume()).toBe('written');
    expect(reader.read(0, out)).toBe(true);
    expect(out).toEqual(numbered(7));
  });
});
