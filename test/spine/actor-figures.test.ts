import { describe, expect, it } from 'vitest';
import { Spine, SpineAdapter } from '../../src/index.js';
import {
  actorConsumerOwner,
  COUNTS,
  committedFigures,
  createFigures,
  FIGURES,
  figuresOf,
} from '../../src/spine/actor-figures.js';
import { spine as definition, type TestSpine } from '../fixtures/actors/spine.js';

/**
 * An adapter's figures in shared memory, as its system reads them once its thread has ended
 * without a report (terminated at a stop): on a real spine in this thread, the states a
 * termination can leave are made by taking the figures and the committed position of one drain's
 * end apart: the figures as they stand after the next drain's end, or half written, beside the
 * position committed before it.
 */
describe("an actor's figures read after its thread ended", () => {
  const ACTOR = 1;

  function rig() {
    const spine = Spine.create(definition);
    const feed = new SpineAdapter<TestSpine>(spine, 0, 'feed');
    const buffer = createFigures(spine.names.length);
    const figures = figuresOf(buffer);
    const actor = new SpineAdapter<TestSpine>(spine, ACTOR, 'actor', 'head', new Map(), undefined, figures);
    const ticks = spine.indexOf('ticks');
    // Attached at the head before anything is published (reads nothing yet).
    actor.consume('ticks', () => {});
    let n = 0;
    const publish = (count: number) => {
      for (let i = 0; i < count; i++) feed.produce('ticks', { n: n++, price: 1 });
    };
    /** The position the actor's consumer entry holds (its last commit), as a stop reads it. */
    const committed = () =>
      spine
        .queue(ticks)
        .stats()
        .consumers.find((c) => c.owner === actorConsumerOwner(ACTOR))!.position;
    /** What the actor's own stats say of ticks (its figures as of now), as committedFigures gives them. */
    const own = () => {
      const s = actor.stats()[ticks]!;
      return { handled: s.handled, skipped: s.skipped, failed: s.failed, lost: s.lost, poisoned: s.poisoned };
    };
    const read = (from: Float64Array, position: number) => {
      const { handled, skipped, failed, lost, poisoned } = committedFigures(from, ticks, position);
      return { handled, skipped, failed, lost, poisoned };
    };
    return { spine, actor, figures, ticks, publish, committed, own, read };
  }

  /** The drains of the test, each a different figure: handled, skipped, failed (the handler throws). */
  function drains(actor: SpineAdapter<TestSpine>, publish: (n: number) => void): (() => void)[] {
    return [
      () => {
        publish(5);
        actor.consume('ticks', () => {});
      },
      () => {
        publish(4);
        actor.consumeFiltered(
          'ticks',
          (tick) => tick.n % 2 === 0,
          () => {},
        );
      },
      () => {
        publish(3);
        expect(() =>
          actor.consume('ticks', (tick) => {
            if (tick.n === 10) throw new Error('boom');
          }),
        ).toThrow('boom');
      },
      () => {
        publish(2);
        actor.consume('ticks', () => {});
      },
    ];
  }

  it('with no drain ended, nothing is counted and the committed position is where the consumer began', () => {
    const { figures, committed, read } = rig();
    expect(committed()).toBe(0);
    expect(read(figures, committed())).toEqual({ handled: 0, skipped: 0, failed: 0, lost: 0, poisoned: 0 });
  });

  it('each drain counts once: as of the commit before a termination, whatever part of the next drain its figures hold', () => {
    const { actor, figures, ticks, publish, committed, own, read } = rig();
    for (const drain of drains(actor, publish)) {
      const before = { figures: figures.slice(), position: committed(), own: own() };
      drain();
      const after = { figures: figures.slice(), position: committed(), own: own() };
      expect(after.position).toBeGreaterThan(before.position);
      // Ended normally: the figures agree with the new position.
      expect(read(after.figures, after.position)).toEqual(after.own);
      expect(read(before.figures, before.position)).toEqual(before.own);
      // Terminated after the figures changed and before the commit: as of the commit before.
      expect(read(after.figures, before.position)).toEqual(before.own);
      // Terminated while the figures were being written, their stores landed in any order: every
      // subset of the numbers that changed, beside the commit before.
      const changed: number[] = [];
      for (let i = ticks * FIGURES; i < (ticks + 1) * FIGURES; i++)
        if (!Object.is(after.figures[i], before.figures[i])) changed.push(i);
      // One copy was written: the drain's counts, never the other copy nor what the producer left.
      expect(changed.length).toBeGreaterThan(0);
      expect(changed.length).toBeLessThanOrEqual(COUNTS);
      for (let subset = 0; subset < 1 << changed.length; subset++) {
        const half = before.figures.slice();
        changed.forEach((at, bit) => {
          if (subset & (1 << bit)) half[at] = after.figures[at]!;
        });
        expect(read(half, before.position)).toEqual(before.own);
      }
    }
    // Every message counted once: handled, skipped or failed, up to the committed position.
    expect(own()).toEqual({ handled: 11, skipped: 2, failed: 1, lost: 0, poisoned: 0 });
    expect(committed()).toBe(14);
  });

  it('a drain that reads nothing leaves the figures as they were: no copy that could agree with the committed position half written', () => {
    const { actor, figures, publish, committed, own, read } = rig();
    publish(3);
    actor.consume('ticks', () => {});
    const before = figures.slice();
    expect(actor.consume('ticks', () => {})).toBe(0);
    expect(actor.consumeN('ticks', 5, () => {})).toBe(0);
    expect(figures).toEqual(before);
    expect(read(figures, committed())).toEqual(own());
    expect(own().handled).toBe(3);
  });

  it('a drain of a stream nested in its own handler: every message counted once, and nothing committed past the outer handler before it ends', () => {
    const { actor, figures, publish, committed, own, read } = rig();
    const counted = () => {
      const o = own();
      return o.handled + o.skipped + o.failed + o.lost;
    };
    // The inner drain reads nothing: the outer's five handled.
    publish(5);
    actor.consume('ticks', (tick) => {
      if (tick.n === 4) expect(actor.consume('ticks', () => {})).toBe(0);
    });
    expect(own()).toMatchObject({ handled: 5, skipped: 0, failed: 0 });
    expect(committed()).toBe(5);
    // The inner drain reads the rest, while the outer handler of tick 6 runs.
    publish(5);
    const inside: number[] = [];
    actor.consume('ticks', (tick) => {
      if (tick.n !== 6) return;
      expect(actor.consume('ticks', () => {})).toBe(3);
      // Not past tick 6, whose handler is still running: a stop now counts it unread.
      inside.push(committed());
      expect(read(figures, committed())).toEqual(own());
    });
    expect(inside).toEqual([5]);
    expect(own()).toMatchObject({ handled: 10, skipped: 0, failed: 0 });
    expect(committed()).toBe(10);
    // consumeLast whose handler drains the stream: four skipped, the newest handled, then two more.
    publish(5);
    actor.consumeLast('ticks', (tick) => {
      if (tick.n === 14) {
        publish(2);
        expect(actor.consume('ticks', () => {})).toBe(2);
      }
    });
    expect(own()).toMatchObject({ handled: 13, skipped: 4, failed: 0 });
    // A handler that throws after a nested drain: the one it threw on failed, the rest handled.
    publish(3);
    expect(() =>
      actor.consume('ticks', (tick) => {
        if (tick.n === 17) {
          actor.consume('ticks', () => {});
          throw new Error('boom');
        }
      }),
    ).toThrow('boom');
    expect(own()).toMatchObject({ handled: 15, skipped: 4, failed: 1 });
    // A filter that drains the stream itself.
    publish(3);
    actor.consumeFiltered(
      'ticks',
      (tick) => {
        if (tick.n === 19) actor.consume('ticks', () => {});
        return tick.n % 2 === 0;
      },
      () => {},
    );
    // 23 published: each counted once, and the position past all of them.
    expect(counted()).toBe(23);
    expect(committed()).toBe(23);
    expect(read(figures, committed())).toEqual(own());
  });
});
