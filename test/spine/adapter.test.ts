import { describe, expect, it } from 'vitest';
import { ConfigError, NO_PARENT, Spine, SpineAdapter, type TimingRecord } from '../../src/index.js';
import { spine as definition, type TestSpine } from '../fixtures/actors/spine.js';

/**
 * The SpineAdapter's consume variants, on a real spine (SharedArrayBuffer queues) in this thread:
 * a feed adapter publishes ticks (ingress), the adapter under test handles them and produces
 * orders, and a third adapter reads the orders back with their tracking envelopes.
 */
function rig() {
  const spine = Spine.create(definition);
  spine.addTimingQueue(1);
  const feed = new SpineAdapter<TestSpine>(spine, 0, 'feed');
  const actor = new SpineAdapter<TestSpine>(spine, 1, 'actor');
  const reader = new SpineAdapter<TestSpine>(spine, 2, 'reader');
  // Consumers start at the head when first used: attach them before anything is published.
  actor.consume('ticks', () => {});
  reader.consume('orders', () => {});
  reader.consumeTimings(() => {});
  const publishTicks = (n: number, from = 0) => {
    for (let i = 0; i < n; i++) feed.produce('ticks', { n: from + i, price: 100 + from + i });
  };
  /** The orders published so far, with their parent ids. */
  const orders = () => {
    const out: { tick: number; parentStream: number; parentSeq: number; origin: number }[] = [];
    reader.consume('orders', (order, _producers, meta) =>
      out.push({
        tick: order.tick,
        parentStream: meta.tracking.parent_stream,
        parentSeq: meta.tracking.parent_seq,
        origin: meta.tracking.origin_t,
      }),
    );
    return out;
  };
  /** The timing records the actor wrote, as (stream, seq) pairs. */
  const timings = () => {
    const out: Pick<TimingRecord, 'stream' | 'seq' | 'origin_t'>[] = [];
    reader.consumeTimings((r) => {
      if (r.actor === 1) out.push({ stream: r.stream, seq: r.seq, origin_t: r.origin_t });
    });
    return out;
  };
  const ticksIndex = spine.indexOf('ticks');
  return { spine, feed, actor, publishTicks, orders, timings, ticksIndex };
}

/** Each order as [tick, parent stream, parent sequence]: the tree, in publication order. */
function idsOf(orders: { tick: number; parentStream: number; parentSeq: number }[]): number[][] {
  return orders.map((o) => [o.tick, o.parentStream, o.parentSeq]);
}

describe('SpineAdapter ids', () => {
  it('refuses an actor id its timing records and envelopes cannot hold', () => {
    const spine = Spine.create(definition);
    for (const id of [65536, -1, 1.5]) {
      expect(() => new SpineAdapter<TestSpine>(spine, id, 'too-far')).toThrow(ConfigError);
      expect(() => new SpineAdapter<TestSpine>(spine, id, 'too-far')).toThrow(/from 0 to 65535/);
    }
    expect(new SpineAdapter<TestSpine>(spine, 65535, 'last').actorId).toBe(65535);
  });
});

describe('SpineAdapter consume variants', () => {
  it('consumeN handles at most N messages, in order, and leaves the rest for the next call', () => {
    const { actor, publishTicks, orders, timings, ticksIndex } = rig();
    publishTicks(5);
    const seen: number[] = [];
    const handler = (tick: { n: number }, producers: { produce: SpineAdapter<TestSpine>['produce'] }) => {
      seen.push(tick.n);
      producers.produce('orders', { tick: tick.n, side: 1 });
    };
    expect(actor.consumeN('ticks', 2, handler)).toBe(2);
    expect(seen).toEqual([0, 1]);
    expect(actor.consumeN('ticks', 10, handler)).toBe(3);
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(actor.consumeN('ticks', 10, handler)).toBe(0);
    for (const max of [-1, 1.5, Number.NaN, '2' as unknown as number]) {
      expect(() => actor.consumeN('ticks', max, handler)).toThrow(
        /consumeN\('ticks'\) needs a count that is an integer ≥ 0/,
      );
    }
    expect(idsOf(orders())).toEqual([0, 1, 2, 3, 4].map((n) => [n, ticksIndex, n]));
    expect(timings().map(({ stream, seq }) => ({ stream, seq }))).toEqual(
      [0, 1, 2, 3, 4].map((seq) => ({ stream: ticksIndex, seq })),
    );
    const stats = actor.stats().find((s) => s.stream === 'ticks')!;
    expect(stats).toMatchObject({ handled: 5, skipped: 0, lost: 0 });
    expect(actor.stats().find((s) => s.stream === 'orders')!.produced).toBe(5);
  });

  it('consumeFiltered handles only what the filter accepts and counts the rest as skipped', () => {
    const { actor, publishTicks, orders, timings, ticksIndex } = rig();
    publishTicks(6);
    const handled = actor.consumeFiltered(
      'ticks',
      (tick) => tick.n % 3 === 0,
      (tick, producers) => {
        producers.produce('orders', { tick: tick.n, side: 2 });
      },
    );
    expect(handled).toBe(2);
    expect(orders().map((o) => [o.tick, o.parentSeq])).toEqual([
      [0, 0],
      [3, 3],
    ]);
    // One timing record per handler call, none for a message the filter refused.
    expect(timings().map(({ stream, seq }) => ({ stream, seq }))).toEqual([
      { stream: ticksIndex, seq: 0 },
      { stream: ticksIndex, seq: 3 },
    ]);
    expect(actor.stats().find((s) => s.stream === 'ticks')).toMatchObject({ handled: 2, skipped: 4 });
  });

  it('consumeLast handles only the newest message, with its own envelope and sequence', () => {
    const { feed, actor, publishTicks, orders, timings, ticksIndex } = rig();
    expect(actor.consumeLast('ticks', () => expect.unreachable())).toBe(false);
    publishTicks(4);
    const metas: { seq: number; stream: string; n: number }[] = [];
    expect(
      actor.consumeLast('ticks', (tick, producers, meta) => {
        metas.push({ seq: meta.seq, stream: meta.stream, n: tick.n });
        producers.produce('orders', { tick: tick.n, side: 1 });
      }),
    ).toBe(true);
    expect(metas).toEqual([{ seq: 3, stream: 'ticks', n: 3 }]);
    const [order] = orders();
    expect(order).toMatchObject({ tick: 3, parentStream: ticksIndex, parentSeq: 3 });
    expect(timings().map(({ stream, seq }) => ({ stream, seq }))).toEqual([{ stream: ticksIndex, seq: 3 }]);
    expect(actor.stats().find((s) => s.stream === 'ticks')).toMatchObject({ handled: 1, skipped: 3 });
    // Outside any handler, produce is ingress again: a new origin, no parent.
    feed.produce('ticks', { n: 9, price: 1 });
    actor.produce('orders', { tick: 9, side: 0 });
    expect(orders().at(-1)).toMatchObject({ tick: 9, parentStream: NO_PARENT });
  });

  it('a consume nested in a handler leaves the outer message as the parent of what follows', () => {
    const { actor, publishTicks, orders, timings, ticksIndex } = rig();
    publishTicks(2);
    // A second adapter's ticks would do as well; the nested read here is the actor's own
    // consumer of another stream: it reads the orders it produced so far.
    actor.consume('orders', () => {});
    actor.consume('ticks', (tick, producers) => {
      producers.produce('orders', { tick: tick.n, side: 1 });
      actor.consumeLast('orders', () => {});
      producers.produce('orders', { tick: tick.n, side: 2 });
    });
    const produced = orders();
    expect(idsOf(produced)).toEqual([
      [0, ticksIndex, 0],
      [0, ticksIndex, 0],
      [1, ticksIndex, 1],
      [1, ticksIndex, 1],
    ]);
    // Every order carries the origin of its tick, and so does the tick's timing record, though
    // the nested consume handled messages of its own in between.
    const tickTimings = timings().filter((t) => t.stream === ticksIndex);
    expect(tickTimings.map((t) => t.seq)).toEqual([0, 1]);
    expect(produced.map((o) => o.origin)).toEqual([
      tickTimings[0]!.origin_t,
      tickTimings[0]!.origin_t,
      tickTimings[1]!.origin_t,
      tickTimings[1]!.origin_t,
    ]);
  });

  it('a consume of the same stream nested in its own handler keeps the outer envelope', () => {
    const { actor, publishTicks, orders, timings, ticksIndex } = rig();
    publishTicks(3);
    let outerOrigin = 0;
    actor.consumeN('ticks', 1, (tick, producers, meta) => {
      outerOrigin = meta.tracking.origin_t;
      // Reads the rest of the ticks through the same consumer (and envelope object).
      actor.consumeLast('ticks', () => {});
      producers.produce('orders', { tick: tick.n, side: 1 });
    });
    const [order] = orders();
    expect(order).toMatchObject({ tick: 0, parentStream: ticksIndex, parentSeq: 0, origin: outerOrigin });
    const outer = timings().find((t) => t.seq === 0)!;
    expect(outer.origin_t).toBe(outerOrigin);
  });

  it('a handler that throws ends its drain: what it handled before is counted, and nothing is left half set', () => {
    const { actor, feed, publishTicks, orders, ticksIndex } = rig();
    publishTicks(5);
    const boom = new Error('boom');
    expect(() =>
      actor.consume('ticks', (tick, producers) => {
        if (tick.n === 2) throw boom;
        producers.produce('orders', { tick: tick.n, side: 1 });
      }),
    ).toThrow(boom);
    // Ticks 0 and 1 were handled; the tick whose handler threw is counted as failed.
    expect(actor.stats().find((s) => s.stream === 'ticks')).toMatchObject({ handled: 2, failed: 1, lost: 0 });
    expect(actor.currentStream).toBe('ticks');
    // The next consume starts afresh: tick 3 and 4, children of their own ticks.
    expect(
      actor.consume('ticks', (tick, producers) => producers.produce('orders', { tick: tick.n, side: 1 })),
    ).toBe(2);
    expect(actor.stats().find((s) => s.stream === 'ticks')).toMatchObject({ handled: 4, failed: 1 });
    // Outside any handler a produce is ingress again: no parent.
    expect(actor.produce('orders', { tick: 99, side: 0 })).toBe(true);
    const got = orders();
    expect(idsOf(got)).toEqual([
      [0, ticksIndex, 0],
      [1, ticksIndex, 1],
      [3, ticksIndex, 3],
      [4, ticksIndex, 4],
      [99, NO_PARENT, 0],
    ]);
    expect(feed.stats().find((s) => s.stream === 'ticks')?.produced).toBe(5);
  });

  it('a filter that throws ends its drain the same way', () => {
    const { actor, publishTicks } = rig();
    publishTicks(4);
    const seen: number[] = [];
    expect(() =>
      actor.consumeFiltered(
        'ticks',
        (tick) => {
          if (tick.n === 3) throw new Error('bad filter');
          return tick.n % 2 === 0;
        },
        (tick) => seen.push(tick.n),
      ),
    ).toThrow('bad filter');
    expect(seen).toEqual([0, 2]);
    // Read four: two handled, one filtered out, and the one whose filter threw counted as failed.
    expect(actor.stats().find((s) => s.stream === 'ticks')).toMatchObject({
      handled: 2,
      skipped: 1,
      failed: 1,
    });
    expect(actor.produce('orders', { tick: 7, side: 0 })).toBe(true);
  });

  it('a nested consume whose handler throws, caught by the outer handler, gives the outer context back', () => {
    const { actor, feed, publishTicks, orders, ticksIndex } = rig();
    publishTicks(2);
    // A fill for the nested consume to read (and fail on); its consumer starts at the head.
    expect(actor.consume('fills', () => {})).toBe(0);
    expect(feed.produce('fills', { order: 1 })).toBe(true);
    let caught = 0;
    actor.consume('ticks', (tick, producers) => {
      try {
        actor.consume('fills', () => {
          throw new Error('inner');
        });
      } catch {
        caught++;
      }
      // Still the tick's child, after the inner handler threw.
      producers.produce('orders', { tick: tick.n, side: 1 });
    });
    expect(caught).toBe(1);
    expect(idsOf(orders())).toEqual([
      [0, ticksIndex, 0],
      [1, ticksIndex, 1],
    ]);
    const stats = actor.stats();
    expect(stats.find((s) => s.stream === 'ticks')).toMatchObject({ handled: 2 });
    expect(stats.find((s) => s.stream === 'fills')).toMatchObject({ handled: 0 });
  });

  it('an unknown stream, in any consume or produce, is refused naming it and the known ones', () => {
    const { actor } = rig();
    const unknown = /unknown stream 'quotes' \(this spine has: ticks, orders, fills\)/;
    const quotes = 'quotes' as 'ticks';
    for (const call of [
      () => actor.consume(quotes, () => {}),
      () => actor.consumeN(quotes, 1, () => {}),
      () =>
        actor.consumeFiltered(
          quotes,
          () => true,
          () => {},
        ),
      () => actor.consumeLast(quotes, () => {}),
      () => actor.produce(quotes, { n: 1, price: 1 }),
    ]) {
      expect(call).toThrow(ConfigError);
      expect(call).toThrow(unknown);
    }
  });

  it('a second actor producing a single-producer stream is refused, naming both', () => {
    const { spine, feed } = rig();
    // The feed takes the producer role of 'ticks' with its first message.
    expect(feed.produce('ticks', { n: 0, price: 1 })).toBe(true);
    const other = new SpineAdapter<TestSpine>(spine, 3, 'second-feed');
    expect(() => other.produce('ticks', { n: 1, price: 1 })).toThrow(
      /actor 'second-feed' cannot produce stream 'ticks': another actor already does/,
    );
    // The first producer is unaffected.
    expect(feed.produce('ticks', { n: 2, price: 1 })).toBe(true);
  });

  it('every timing record keeps origin ≤ publish ≤ start ≤ end, and every child publish ≥ its parent, across clocks', () => {
    const { spine, actor, ticksIndex } = rig();
    // A tick stamped by another thread whose clock runs ahead of this one by a second: its
    // publish time lies in this thread's future.
    const producer = spine.queue(ticksIndex).producer({ signal: spine.control.streamSignal(ticksIndex) });
    const ahead = spine.clock.now() + 1e9;
    Object.assign(producer.envelope, {
      origin_t: ahead - 10,
      publish_t: ahead,
      parent_stream: NO_PARENT,
      parent_seq: 0,
      actor: 0,
    });
    producer.publish({ n: 1, price: 1 });
    const reader = new SpineAdapter<TestSpine>(spine, 3, 'reader-2');
    reader.consume('orders', () => {});
    const records: TimingRecord[] = [];
    reader.consumeTimings((r) => {
      records.push({ ...r });
    });
    expect(
      actor.consume('ticks', (tick, producers) => producers.produce('orders', { tick: tick.n, side: 0 })),
    ).toBe(1);
    reader.consumeTimings((r) => {
      records.push({ ...r });
    });
    const [record] = records.filter((r) => r.actor === 1);
    expect(record).toBeDefined();
    const { origin_t, publish_t, start_t, end_t } = record!;
    expect(origin_t).toBeLessThanOrEqual(publish_t);
    expect(publish_t).toBeLessThanOrEqual(start_t);
    expect(start_t).toBeLessThanOrEqual(end_t);
    let child = { origin: 0, publish: 0 };
    reader.consume('orders', (_order, _producers, meta) => {
      child = { origin: meta.tracking.origin_t, publish: meta.tracking.publish_t };
    });
    expect(child.origin).toBe(ahead - 10);
    expect(child.publish).toBeGreaterThanOrEqual(start_t);
  });
});

describe('SpineAdapter.readers', () => {
  it('lists each consumer of each ring with its position and lag, which fall as it reads', () => {
    const { spine, feed, actor, publishTicks } = rig();
    const capacity = spine.queue(spine.indexOf('ticks')).capacity;
    const ticks = () => feed.readers().filter((r) => r.ring === 'ticks');
    expect(ticks()).toEqual([{ ring: 'ticks', consumer: expect.any(Number), position: 0, lag: 0, capacity }]);
    publishTicks(100);
    expect(ticks()).toMatchObject([{ position: 0, lag: 100 }]);
    actor.consumeN('ticks', 40, (tick, producers) => producers.produce('orders', { tick: tick.n, side: 0 }));
    expect(ticks()).toMatchObject([{ position: 40, lag: 60 }]);
    // The orders it produced wait for their reader; its timing records for theirs.
    expect(feed.readers().find((r) => r.ring === 'orders')).toMatchObject({ lag: 40 });
    expect(feed.readers().find((r) => r.ring === 'timings:1')).toMatchObject({ lag: 40 });
  });
});
