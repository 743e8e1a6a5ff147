import { describe, expect, it } from 'vitest';
import { ConfigError, defineMessage, LayoutError, SeqlockQueue } from '../../src/index.js';
import { QueueHeader } from '../../src/queues/queue-header.js';

const Seq = defineMessage('Seq', { n: 'u32', check: 'f64' });
const Other = defineMessage('Other', { n: 'u32', check: 'f32' });

function drain(consumer: { poll(out: { n: number }): boolean }, out: { n: number }): number[] {
  const seen: number[] = [];
  while (consumer.poll(out)) seen.push(out.n);
  return seen;
}

describe('SeqlockQueue in one thread', () => {
  it('an empty queue polls false; a consumer starts at the head', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8 });
    const producer = queue.producer();
    producer.publish({ n: 1, check: 1 });
    const consumer = queue.consumer();
    const out = Seq.create();
    expect(consumer.poll(out)).toBe(false);
    producer.publish({ n: 2, check: 2 });
    expect(drain(consumer, out)).toEqual([2]);
  });

  it("'oldest' starts at the oldest message still in the ring", () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8 });
    const producer = queue.producer();
    for (let n = 0; n < 5; n++) producer.publish({ n, check: n });
    expect(drain(queue.consumer({ from: 'oldest' }), Seq.create())).toEqual([0, 1, 2, 3, 4]);
    for (let n = 5; n < 20; n++) producer.publish({ n, check: n });
    expect(drain(queue.consumer({ from: 'oldest' }), Seq.create())).toEqual([13, 14, 15, 16, 17, 18, 19]);
  });

  it('a lapped consumer jumps forward, returns only intact messages in order, and counts what it lost', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8 });
    const producer = queue.producer();
    const consumer = queue.consumer();
    const out = Seq.create();
    for (let n = 0; n < 3; n++) producer.publish({ n, check: n });
    expect(consumer.poll(out)).toBe(true);
    for (let n = 3; n < 30; n++) producer.publish({ n, check: n });
    const seen = [0, ...drain(consumer, out)];
    expect(seen.length + consumer.lost).toBe(30);
    expect(consumer.lost).toBeGreaterThan(0);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);
    expect(seen.at(-1)).toBe(29);
    expect(consumer.received).toBe(seen.length);
  });

  it('every consumer sees every message (broadcast)', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 64 });
    const a = queue.consumer();
    const b = queue.consumer();
    const producer = queue.producer();
    for (let n = 0; n < 40; n++) producer.publish({ n, check: n });
    const expected = Array.from({ length: 40 }, (_, n) => n);
    expect(drain(a, Seq.create())).toEqual(expected);
    expect(drain(b, Seq.create())).toEqual(expected);
  });

  it('stats show the producer count and each consumer position, lag and loss', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8 });
    const producer = queue.producer();
    const fast = queue.consumer();
    const slow = queue.consumer();
    const out = Seq.create();
    for (let n = 0; n < 20; n++) {
      producer.publish({ n, check: n });
      fast.poll(out);
    }
    slow.poll(out);
    const stats = SeqlockQueue.attach(Seq, queue.buffer).stats();
    expect(stats.published).toBe(20);
    expect(stats.consumers).toHaveLength(2);
    const [f, s] = stats.consumers;
    expect(f).toMatchObject({ index: fast.index, received: 20, lost: 0, lag: 0 });
    expect(s!.lost).toBe(slow.lost);
    expect(s!.received + s!.lost + s!.lag).toBe(20);
    // Where each began: every message from there to its position was received or lost.
    expect(f!.began).toBe(0);
    expect(s!.began + s!.received + s!.lost).toBe(s!.position);
    const late = queue.consumer({ from: 'head' });
    late.poll(out);
    expect(queue.stats().consumers.find((c) => c.index === late.index)).toMatchObject({
      began: 20,
      position: 20,
    });
    producer.publish({ n: 20, check: 20 });
    late.poll(out);
    expect(queue.stats().consumers.find((c) => c.index === late.index)).toMatchObject({
      began: 20,
      received: 1,
    });
    late.close();
    slow.close();
    expect(queue.stats().consumers.map((c) => c.index)).toEqual([fast.index]);
  });

  it('a new producer or consumer checks the count against the slots: a stale count is moved past what was published', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8 });
    const first = queue.producer();
    const early = queue.consumer();
    for (let n = 0; n < 5; n++) first.publish({ n, check: n });
    first.close();
    // What a reader may see of a predecessor's count, stored without synchronization: an old value.
    new Float64Array(queue.buffer)[QueueHeader.PUBLISHED_F64] = 3;
    const late = queue.consumer();
    const next = queue.producer();
    for (let n = 5; n < 7; n++) next.publish({ n, check: n });
    // Nothing overwritten, nothing read twice.
    expect(drain(early, Seq.create())).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(drain(late, Seq.create())).toEqual([5, 6]);
    expect(queue.stats().published).toBe(7);
  });

  it('a single-producer queue refuses a second producer until the first closes', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8 });
    const first = queue.producer();
    first.publish({ n: 1, check: 1 });
    expect(() => SeqlockQueue.attach(Seq, queue.buffer).producer()).toThrow(/already has a producer/);
    first.close();
    // A closed producer refuses, before touching the ring, and says so.
    expect(() => first.publish({ n: 9, check: 9 })).toThrow(/this producer of 'Seq' is closed/);
    expect(first.published).toBe(1);
    const consumer = queue.consumer();
    const second = queue.producer();
    second.publish({ n: 2, check: 2 });
    expect(drain(consumer, Seq.create())).toEqual([2]);
    expect(queue.stats().published).toBe(2);
    expect(second.published).toBe(1);
  });

  it('attach checks the layout, the buffer and the consumer table', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8, maxConsumers: 1 });
    expect(() => SeqlockQueue.attach(Other, queue.buffer)).toThrow(/layout mismatch/);
    expect(() => SeqlockQueue.attach(Seq, new SharedArrayBuffer(1024))).toThrow(/not a dorsal queue/);
    expect(() => SeqlockQueue.attach(Seq, new ArrayBuffer(1024) as unknown as SharedArrayBuffer)).toThrow(
      ConfigError,
    );
    queue.consumer();
    expect(() => queue.consumer()).toThrow(/already has 1 consumers/);
  });

  it('refuses a message layout or an envelope that defineMessage did not make, at create and attach', () => {
    const notALayout = { name: 'Fake', size: 8 } as unknown as typeof Seq;
    expect(() => SeqlockQueue.create(notALayout, { capacity: 8 })).toThrow(
      /message layout must be made by defineMessage, got object/,
    );
    expect(() => SeqlockQueue.create(Seq, { capacity: 8, envelope: {} as unknown as typeof Other })).toThrow(
      /envelope must be a layout made by defineMessage, got object/,
    );
    const queue = SeqlockQueue.create(Seq, { capacity: 8 });
    expect(() =>
      SeqlockQueue.attach(Seq, queue.buffer, { envelope: 'x' as unknown as typeof Other }),
    ).toThrow(ConfigError);
  });

  it('refuses a poison timeout no timer can wait by, naming it', () => {
    for (const poisonTimeoutMs of [0, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
      expect(() => SeqlockQueue.create(Seq, { capacity: 8, poisonTimeoutMs })).toThrow(
        `poisonTimeoutMs must be an integer from 1 to 2147483647 (ms), got ${poisonTimeoutMs}`,
      );
    }
    expect(SeqlockQueue.create(Seq, { capacity: 8, poisonTimeoutMs: 2 ** 31 - 1 }).capacity).toBe(8);
  });

  it('a multi-producer queue accepts several producers and keeps one order for all consumers', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 16, multiProducer: true });
    const a = queue.producer();
    const b = SeqlockQueue.attach(Seq, queue.buffer).producer();
    const consumer = queue.consumer();
    for (let n = 0; n < 10; n++) (n % 2 ? a : b).publish({ n, check: n });
    expect(drain(consumer, Seq.create())).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(a.published + b.published).toBe(10);
  });

  it('preTouch maps the whole ring at creation, and the queue works as usual', () => {
    // 2^19 slots of 64 bytes: a 32 MiB ring.
    const before = process.memoryUsage().rss;
    const queue = SeqlockQueue.create(Seq, { capacity: 1 << 19, preTouch: true });
    const grown = process.memoryUsage().rss - before;
    expect(grown).toBeGreaterThan(0.9 * queue.buffer.byteLength);
    const consumer = queue.consumer();
    queue.producer().publish({ n: 5, check: 0.5 });
    expect(drain(consumer, Seq.create())).toEqual([5]);
  });

  it("an owner's entries are given back by its mark alone: not one it closed that another consumer took since", () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 16, maxConsumers: 4 });
    const indices = () => queue.stats().consumers.map((c) => c.index);
    const first = queue.consumer({ owner: -7 });
    queue.consumer({ owner: -7 });
    const other = queue.consumer({ owner: -8 });
    first.close();
    // The entry the owner closed, taken by an untagged consumer.
    const untagged = queue.consumer();
    expect(untagged.index).toBe(first.index);
    expect(queue.releaseConsumersOf(-7)).toBe(1);
    expect(indices()).toEqual([untagged.index, other.index]);
    expect(queue.releaseConsumersOf(-7)).toBe(0);
    expect(() => queue.consumer({ owner: 1 })).toThrow(ConfigError);
    expect(() => queue.consumer({ owner: 2 ** 31 })).toThrow(ConfigError);
    expect(() => queue.releaseConsumersOf(1)).toThrow(ConfigError);
    // Tags Atomics would take for 1, the untagged mark: refused, and the live entries kept.
    expect(() => queue.releaseConsumersOf(1.5)).toThrow(ConfigError);
    expect(() => queue.releaseConsumersOf(2 ** 32 + 1)).toThrow(ConfigError);
    expect(indices()).toEqual([untagged.index, other.index]);
  });

  it("a raw consumer refuses an array with no room for the slot's words, and stays on the message", () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8 });
    queue.producer().publish({ n: 3, check: 3 });
    const raw = queue.rawConsumer({ from: 0 });
    // The copy was cut (stores past an array's end are dropped) and the message counted read.
    for (const out of [
      { words: new Int32Array(queue.rawWords - 1), at: 0 },
      { words: new Int32Array(queue.rawWords), at: 1 },
      { words: new Int32Array(queue.rawWords), at: Number.NaN },
      { words: new Int32Array(queue.rawWords + 1), at: 0.5 },
    ]) {
      expect(() => raw.poll(out)).toThrow(/does not fit/);
      expect(raw.received).toBe(0);
    }
    const room = { words: new Int32Array(queue.rawWords + 1), at: 1 };
    expect(raw.poll(room)).toBe(true);
    expect(raw.received).toBe(1);
    const exact = { words: new Int32Array(queue.rawWords), at: 0 };
    expect(queue.rawConsumer({ from: 0 }).poll(exact)).toBe(true);
    expect([...room.words.subarray(1)]).toEqual([...exact.words]);
    expect(exact.words.some((w) => w === 3)).toBe(true);
  });

  it('releaseConsumer frees a consumer entry and nothing else: any other index is refused', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8, maxConsumers: 4 });
    const producer = queue.producer();
    producer.publish({ n: 1, check: 1 });
    const consumer = queue.consumer();
    for (const index of [4, -1, Number.NaN, 1.5, '0' as never]) {
      expect(() => queue.releaseConsumer(index)).toThrow(ConfigError);
    }
    // The header and the slots are whole: the queue still attaches, and its message is read.
    const out = Seq.create();
    const again = SeqlockQueue.attach(Seq, queue.buffer).consumer({ from: 0 });
    expect(again.poll(out)).toBe(true);
    expect(out.n).toBe(1);
    queue.releaseConsumer(consumer.index);
    expect(queue.stats().consumers.map((c) => c.index)).toEqual([again.index]);
  });

  it('take returns false on timeout and after close once drained', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8 });
    const producer = queue.producer();
    const consumer = queue.consumer();
    const out = Seq.create();
    expect(consumer.take(out, 1)).toBe(false);
    producer.publish({ n: 5, check: 5 });
    queue.close();
    expect(consumer.take(out)).toBe(true);
    expect(out.n).toBe(5);
    expect(consumer.take(out)).toBe(false);
  });
});

describe('claim and commit: a message written in place', () => {
  const Tracking = defineMessage('Tracking', { origin: 'f64', parent: 'u32' });
  const N = Seq.offsetOf('n');
  const CHECK = Seq.offsetOf('check');

  it('what is stored between claim and commit is what consumers read, envelope included, in order with publish', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 4, envelope: Tracking });
    const consumer = queue.consumer();
    const producer = queue.claimingProducer();
    const { u32, f64 } = producer.views;
    const out = Seq.create();
    const seen: Array<[number, number, number, number]> = [];
    // Ten messages through a ring of 4, read as they come: every lap's claim overwrites a slot.
    for (let n = 0; n < 10; n++) {
      producer.envelope.origin = n * 10;
      producer.envelope.parent = n + 100;
      if (n % 3 === 0) {
        producer.publish({ n, check: n / 2 });
      } else {
        const at = producer.claim();
        u32[(at + N) >> 2] = n;
        f64[(at + CHECK) >> 3] = n / 2;
        // Claimed, not committed: the slot is odd, and a consumer finds nothing to read yet.
        expect(consumer.poll(out)).toBe(false);
        expect(producer.commit()).toBe(n);
      }
      expect(consumer.poll(out)).toBe(true);
      seen.push([out.n, out.check, consumer.envelope.origin, consumer.envelope.parent]);
    }
    expect(seen).toEqual(Array.from({ length: 10 }, (_, n) => [n, n / 2, n * 10, n + 100]));
    expect(producer.published).toBe(10);
    expect(queue.stats().published).toBe(10);
    expect(consumer.lost).toBe(0);
  });

  it('a claim left open is taken back by the next claim or publish; a commit without a claim and a closed producer are refused', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8 });
    const consumer = queue.consumer();
    const producer = queue.claimingProducer();
    const { u32, f64 } = producer.views;
    const out = Seq.create();
    expect(() => producer.commit()).toThrow(ConfigError);
    expect(() => producer.commit()).toThrow(/without a claim/);
    // A writer that threw between claim and commit: its slot is odd, readers find nothing yet.
    const first = producer.claim();
    u32[(first + N) >> 2] = 99;
    expect(consumer.poll(out)).toBe(false);
    // The next claim writes the same slot again, and commits it.
    const again = producer.claim();
    expect(again).toBe(first);
    u32[(again + N) >> 2] = 1;
    f64[(again + CHECK) >> 3] = 0.5;
    expect(producer.commit()).toBe(0);
    // A publish after a claim left open takes the slot back the same way.
    producer.claim();
    expect(producer.publish({ n: 2, check: 1 })).toBe(1);
    expect(drain(consumer, out)).toEqual([1, 2]);
    expect(queue.stats().published).toBe(2);
    expect(consumer.lost).toBe(0);
    producer.close();
    expect(() => producer.claim()).toThrow(/is closed/);
    const multi = SeqlockQueue.create(Seq, { capacity: 8, multiProducer: true });
    expect(() => multi.claimingProducer()).toThrow(/several producers/);
    expect(() => Seq.offsetOf('nope' as 'n')).toThrow(LayoutError);
  });
});

describe('envelopes and exact sequences', () => {
  const Tracking = defineMessage('Tracking', { origin: 'f64', parent: 'u32' });

  it('an envelope travels in the same slot as its message, and consumers count exact sequences', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 4, envelope: Tracking });
    const consumer = SeqlockQueue.attach(Seq, queue.buffer, { envelope: Tracking }).consumer();
    const producer = queue.producer();
    const out = Seq.create();
    for (let n = 0; n < 10; n++) {
      producer.envelope.origin = n * 10;
      producer.envelope.parent = n + 100;
      producer.publish({ n, check: n });
    }
    const seen: Array<[number, number, number, number]> = [];
    while (consumer.poll(out)) {
      seen.push([out.n, consumer.envelope.origin, consumer.envelope.parent, consumer.sequence - 1]);
    }
    // Capacity 4, ten messages: lapped once, resumed half a ring behind the head.
    expect(seen).toEqual([
      [8, 80, 108, 8],
      [9, 90, 109, 9],
    ]);
    expect(consumer.lost).toBe(8);
  });

  it('a consumer can start at an exact sequence, and the gap it cannot read is counted lost', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 8 });
    const producer = queue.producer();
    for (let n = 0; n < 6; n++) producer.publish({ n, check: n });
    expect(drain(queue.consumer({ from: 2 }), Seq.create())).toEqual([2, 3, 4, 5]);
    for (let n = 6; n < 20; n++) producer.publish({ n, check: n });
    const late = queue.consumer({ from: 1 });
    const seen = drain(late, Seq.create());
    expect(seen.at(-1)).toBe(19);
    expect(late.lost + seen.length).toBe(19);
    expect(() => queue.consumer({ from: -1 })).toThrow(/'from' must be/);
    expect(() => queue.consumer({ from: 22 })).toThrow(/'from' must be a sequence from 0 to 21/);
    // One past the count is accepted: where a consumer stands after skipping a message whose writer died.
    const ahead = queue.consumer({ from: 21 });
    for (let n = 20; n < 22; n++) producer.publish({ n, check: n });
    expect(drain(ahead, Seq.create())).toEqual([21]);
  });

  it('an envelope is checked as its message is: a bad one is refused before its slot is touched', () => {
    const Tagged = defineMessage('Tagged', { tag: { type: 'string', bytes: 8 }, small: 'u8', big: 'i64' });
    for (const multiProducer of [false, true]) {
      const queue = SeqlockQueue.create(Seq, {
        capacity: 4,
        envelope: Tagged,
        multiProducer,
        poisonTimeoutMs: 50,
      });
      const producer = queue.producer();
      const consumer = queue.consumer();
      const out = Seq.create();
      Object.assign(producer.envelope, { tag: 'hello', small: 200, big: 5n });
      producer.publish({ n: 1, check: 1 });
      // Refused, each: a text longer than its field, an int out of its range, a value of another type.
      for (const bad of [
        { tag: 'far longer than 8 bytes' },
        { small: 300 },
        { big: 2n ** 64n },
        { tag: 42 },
      ]) {
        Object.assign(producer.envelope, { tag: 'ok', small: 1, big: 1n }, bad);
        expect(() => producer.publish({ n: 9, check: 9 })).toThrow(LayoutError);
      }
      Object.assign(producer.envelope, { tag: 'ok', small: 1, big: 1n });
      if (!multiProducer) {
        const claiming = producer as unknown as { claim(): number; commit(): number };
        producer.envelope.small = -1;
        expect(() => claiming.claim()).toThrow(LayoutError);
        producer.envelope.small = 1;
      }
      producer.publish({ n: 2, check: 2 });
      const seen: unknown[] = [];
      while (consumer.poll(out)) seen.push([out.n, { ...consumer.envelope }]);
      expect(seen).toEqual([
        [1, { tag: 'hello', small: 200, big: 5n }],
        [2, { tag: 'ok', small: 1, big: 1n }],
      ]);
      expect(consumer).toMatchObject({ received: 2, lost: 0, poisoned: 0 });
    }
  });

  it('attaching without the envelope the queue was made with is refused', () => {
    const queue = SeqlockQueue.create(Seq, { capacity: 4, envelope: Tracking });
    expect(() => SeqlockQueue.attach(Seq, queue.buffer)).toThrow(/envelope mismatch/);
  });
});
