import { describe, expect, it } from 'vitest';
import { defineMessage, SeqlockQueue } from '../../src/index.js';
import { QueueHeader } from '../../src/queues/queue-header.js';

const Numbered = defineMessage('Numbered', { n: 'f64' });
type Numbered = ReturnType<typeof Numbered.create>;
const WRAP = 2 ** 32;

/**
 * A queue whose producer starts at exact sequence `start`: the count a producer resumes from is
 * preset in the header, as if `start` messages had gone through already (4 billion real ones
 * would take minutes). Every message carries its exact sequence in `n`.
 */
function queueAt(start: number, capacity: number) {
  const queue = SeqlockQueue.create(Numbered, { capacity });
  new Float64Array(queue.buffer)[QueueHeader.PUBLISHED_F64] = start;
  return queue;
}

function publishUpTo(queue: SeqlockQueue<Numbered>, producer: { publish(m: Numbered): number }, end: number) {
  const msg = Numbered.create();
  for (let n = queue.stats().published; n < end; n++) {
    msg.n = n;
    producer.publish(msg);
  }
}

describe('sequences across the 32-bit wrap', () => {
  for (const capacity of [2, 16, 1 << 12]) {
    it(`a consumer in step reads every message across 2^32 with its exact sequence (capacity ${capacity})`, () => {
      const start = WRAP - 3 * capacity;
      const queue = queueAt(start, capacity);
      const consumer = queue.consumer();
      const producer = queue.producer();
      const msg = Numbered.create();
      const out = Numbered.create();
      for (let n = start; n < WRAP + 3 * capacity; n++) {
        msg.n = n;
        expect(producer.publish(msg)).toBe(n >>> 0);
        expect(consumer.poll(out)).toBe(true);
        expect(out.n).toBe(n);
        expect(consumer.sequence - 1).toBe(n);
      }
      expect(consumer.poll(out)).toBe(false);
      expect(consumer.lost).toBe(0);
      expect(queue.stats().published).toBe(WRAP + 3 * capacity);
    });

    it(`a consumer lapped across 2^32 jumps forward and counts exactly what it lost (capacity ${capacity})`, () => {
      const start = WRAP - 2 * capacity;
      const queue = queueAt(start, capacity);
      const consumer = queue.consumer();
      const producer = queue.producer();
      // Three laps past the consumer, across the wrap.
      publishUpTo(queue, producer, WRAP + capacity + 3);
      const out = Numbered.create();
      const seen: number[] = [];
      while (consumer.poll(out)) {
        expect(consumer.sequence - 1).toBe(out.n);
        seen.push(out.n);
      }
      const end = WRAP + capacity + 3;
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.at(-1)).toBe(end - 1);
      // Consecutive after the jump, and lost + read = published since the consumer started.
      expect(seen).toEqual(seen.map((_, i) => seen[0]! + i));
      expect(consumer.lost).toBe(seen[0]! - start);
      expect(consumer.lost + consumer.received).toBe(end - start);
      expect(consumer.lag).toBe(0);
    });
  }
});

describe('a consumer far behind', () => {
  /** A consumer at `behind` messages back: it read 3 messages, then the producer went on. */
  function farBehind(behind: number, capacity: number) {
    const queue = SeqlockQueue.create(Numbered, { capacity });
    const consumer = queue.consumer();
    const first = queue.producer();
    publishUpTo(queue, first, 3);
    const out = Numbered.create();
    for (let i = 0; i < 3; i++) expect(consumer.poll(out)).toBe(true);
    first.close();
    // The producer's count jumps as if `behind` messages had gone by, then a ring is written.
    new Float64Array(queue.buffer)[QueueHeader.PUBLISHED_F64] = 3 + behind;
    const producer = queue.producer();
    publishUpTo(queue, producer, 3 + behind + capacity);
    return { queue, consumer, out, end: 3 + behind + capacity };
  }

  for (const behind of [2 ** 31 + 5, WRAP + 2, 3 * WRAP - 7, 2 ** 40]) {
    it(`${behind} messages behind: not caught up, and the loss is counted exactly`, () => {
      const capacity = 16;
      const { queue, consumer, out, end } = farBehind(behind, capacity);
      expect(consumer.lag).toBe(end - 3);
      expect(queue.stats().consumers[0]!.lag).toBe(end - 3);
      const seen: number[] = [];
      while (consumer.poll(out)) {
        expect(consumer.sequence - 1).toBe(out.n);
        seen.push(out.n);
      }
      // It delivered the newest messages, never an older one under a newer sequence.
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.at(-1)).toBe(end - 1);
      expect(seen[0]).toBeGreaterThan(3 + behind);
      expect(consumer.lost).toBe(seen[0]! - 3);
      expect(consumer.received).toBe(3 + seen.length);
      expect(consumer.received + consumer.lost).toBe(end);
      expect(consumer.lag).toBe(0);
    });
  }
});
