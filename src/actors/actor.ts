import type { SpineAdapter, SpineDefinition } from '../spine/index.js';

/** The mark of an Actor class, the same in every copy of dorsal (a registered symbol). */
export const ACTOR_BRAND: unique symbol = Symbol.for('dorsal.Actor');

/**
 * A unit of work on a worker thread. Extend it in a module of its own and export the class as
 * the module's default; `system.spawn(new URL('./my-actor.js', import.meta.url))` runs it.
 *
 * The thread calls `loopBody` over and over; an iteration that handles or produces nothing
 * counts as idle, and a thread whose actors are all idle spins by calling it on (10–200 µs with
 * the adaptive wait, always with busy-spin), then parks until a message arrives (or
 * `idleTimeoutMs` passes: timer-driven actors lower it). An idle `loopBody` must be cheap and
 * make no garbage: it runs millions of times a second while its thread spins.
 *
 * Handlers made once (fields) and message objects filled again and again keep the thread free of
 * garbage: an arrow written inside `loopBody` is a new closure on every round.
 *
 * @example
 * export default class Strategy extends Actor<typeof spine> {
 *   readonly name = 'strategy';
 *   private readonly order = { qty: 0 };
 *   private readonly onTick: Handler<typeof spine, 'ticks'> = (tick, producers) => {
 *     if (tick.price > 100) producers.produce('orders', this.order);
 *   };
 *   loopBody(adapter: SpineAdapter<typeof spine>) {
 *     adapter.consume('ticks', this.onTick);
 *   }
 * }
 */
export abstract class Actor<D = SpineDefinition> {
  /**
   * @internal on every copy of dorsal's Actor: a worker tells a class that extends another copy's
   * (whose module imports another `dorsal` than the thread's) from one that is no actor.
   */
  static readonly [ACTOR_BRAND] = true;

  /** Unique in the system: names the actor's timing queue, its stats and its crash reports. */
  abstract readonly name: string;
  /**
   * Longest the thread parks when idle, in ms (from 0; Infinity: woken by messages only; anything
   * else is refused at start). Default 50; an actor driven by time lowers it.
   */
  readonly idleTimeoutMs: number = 50;

  /** Called once on the actor's thread before the first `loopBody`. May be async. */
  onInit(_adapter: SpineAdapter<D>): void | Promise<void> {}

  /** One iteration of the actor's work: consume, produce. Keep it short and never block. */
  abstract loopBody(adapter: SpineAdapter<D>): void;

  /** Called once after the last `loopBody` of a graceful stop. May be async. */
  onExit(_adapter: SpineAdapter<D>): void | Promise<void> {}
}
