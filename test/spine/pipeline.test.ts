import { describe, expect, it } from 'vitest';
import { NO_PARENT, System } from '../../src/index.js';
import type { Recorded, RecordedTiming } from '../fixtures/actors/recorder.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);

function listen<T>(channel: string): { result: Promise<T>; close(): void } {
  const bc = new BroadcastChannel(channel);
  const result = new Promise<T>((resolve) => {
    bc.onmessage = (event) => resolve((event as unknown as { data: T }).data);
  });
  return { result, close: () => bc.close() };
}

describe('a three-hop pipeline on real worker threads', () => {
  it('origin propagates across three hops, parents form the exact tree, one timing record per handler call', async () => {
    const COUNT = 200;
    const channel = `recorder-${Math.random()}`;
    const listener = listen<{ messages: Recorded[]; timings: RecordedTiming[] }>(channel);
    const system = new System(spine);
    system.spawn(fixture('feed'), { args: { count: COUNT, perLoop: 3 } });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('gateway'));
    system.spawn(fixture('recorder'), { args: { channel } });
    await system.start();
    // Stop once the last hop has everything: the fills stream is published by the gateway.
    await until(() => system.spine.queue(2).stats().published === 2 * COUNT, 'all fills');
    const report = await system.stop();
    const { messages, timings } = await listener.result;
    listener.close();

    expect(report.drained).toBe(true);
    expect(report.terminated).toEqual([]);
    const ticks = messages.filter((m) => m.stream === 'ticks');
    const orders = messages.filter((m) => m.stream === 'orders');
    const fills = messages.filter((m) => m.stream === 'fills');
    expect(ticks).toHaveLength(COUNT);
    expect(orders).toHaveLength(2 * COUNT);
    expect(fills).toHaveLength(2 * COUNT);

    const tickBySeq = new Map(ticks.map((t) => [t.seq, t]));
    const orderBySeq = new Map(orders.map((o) => [o.seq, o]));
    for (const tick of ticks) {
      expect(tick.parentStream).toBe(NO_PARENT);
      expect(tick.origin).toBe(tick.publish);
    }
    const children = new Map<number, number>();
    for (const order of orders) {
      expect(order.parentStream).toBe(0); // ticks
      const parent = tickBySeq.get(order.parentSeq)!;
      expect(parent).toBeDefined();
      expect(order.fields.tick).toBe(parent.fields.n);
      expect(order.origin).toBe(parent.origin);
      expect(order.publish).toBeGreaterThanOrEqual(parent.publish);
      children.set(order.parentSeq, (children.get(order.parentSeq) ?? 0) + 1);
    }
    expect([...children.values()].every((n) => n === 2)).toBe(true);
    expect(children.size).toBe(COUNT);
    for (const fill of fills) {
      expect(fill.parentStream).toBe(1); // orders
      const order = orderBySeq.get(fill.parentSeq)!;
      expect(order).toBeDefined();
      expect(fill.origin).toBe(tickBySeq.get(order.parentSeq)!.origin);
    }
    // The producing actor ids differ per hop.
    expect(new Set(ticks.map((t) => t.actor)).size).toBe(1);
    expect(new Set([ticks[0]!.actor, orders[0]!.actor, fills[0]!.actor]).size).toBe(3);

    const strategyTimings = timings.filter((t) => t.actor === 'strategy');
    const gatewayTimings = timings.filter((t) => t.actor === 'gateway');
    expect(strategyTimings).toHaveLength(COUNT);
    expect(gatewayTimings).toHaveLength(2 * COUNT);
    expect(new Set(strategyTimings.map((t) => t.seq)).size).toBe(COUNT);
    for (const t of timings) {
      expect(t.origin).toBeLessThanOrEqual(t.publish);
      expect(t.publish).toBeLessThanOrEqual(t.start);
      expect(t.start).toBeLessThanOrEqual(t.end);
    }

    const strategy = report.actors.find((a) => a.name === 'strategy')!;
    expect(strategy.streams.find((s) => s.stream === 'ticks')).toMatchObject({ handled: COUNT, lost: 0 });
    expect(strategy.streams.find((s) => s.stream === 'orders')).toMatchObject({ produced: 2 * COUNT });
  });
});
