import {
  type MillisecondClock,
  type Parker,
  parkUntil,
  type WaitCondition,
  type WaitStrategy,
  type WaitStrategyName,
  waitStrategyNamed,
} from '../queues/index.js';
import { Phase, type Spine, type SpineAdapter, ThreadActivity } from '../spine/index.js';
import { refuseAsync } from '../spine/synchronous.js';
import type { Actor } from './actor.js';

/** An actor and its adapter, as a thread runs them. */
export interface RunningActor {
  readonly id: number;
  readonly actor: Actor<unknown>;
  readonly adapter: SpineAdapter<unknown>;
}

/** How often a busy thread lets its event loop run (timers, I/O, messages from the System). */
const EVENT_LOOP_EVERY_NS = 5e6;
/** The least time between two turns of the event loop of an idle thread. */
const EVENT_LOOP_MIN_GAP_NS = 1e6;
/** A thread spinning by rounds reads the clock about this often, and every 16 rounds at most. */
const SPIN_CLOCK_NS = 1000;
const SPIN_CLOCK_ROUNDS = 16;
/** What one idle round of a spin by rounds says (see `ActorThread.spinStep`). */
const SPIN = 0;
const SPIN_READ = 1;
const PARK = 2;

/**
 * Runs the actors of one thread round-robin until the system's phase says exit. A round in
 * which no actor handled or produced anything is idle: the thread then waits with its wait
 * strategy (by default spin a little, then sleep on its own futex word, announced on the
 * streams its actors consume) until a message arrives on one of them, the phase changes, or
 * the shortest `idleTimeoutMs` of its actors passes. It spins by running its rounds on (for as
 * long as the strategy's `spinMs` says): the message is then handled by the next poll of its
 * consumer. A separate spin on the consumers' slots found it no sooner, then had to leave the
 * wait and begin a round, in which the actors before the one it was for polled first: a
 * message that landed during the round after a busy one waited ~150–300 ns more (NOTES.md).
 *
 * Throws whatever an actor throws; `current` then names the culprit.
 */
export class ActorThread implements WaitCondition {
  /** The actor whose `loopBody` runs now (for crash reports). */
  current: RunningActor | undefined;
  private readonly spine: Spine;
  private readonly worker: number;
  private readonly actors: readonly RunningActor[];
  private readonly idleTimeoutMs: number;
  private readonly strategy: WaitStrategy;
  private readonly parker: Parker;
  /** The spine clock in ms, as the wait strategy reads it. */
  private readonly msClock: MillisecondClock;
  private parkedPhase: number = Phase.STARTING;

  /** `activity`: the thread's, shared with its actors' adapters. */
  constructor(
    spine: Spine,
    worker: number,
    actors: readonly RunningActor[],
    wait: WaitStrategyName = 'adaptive',
    private readonly activity: ThreadActivity = new ThreadActivity(spine.control, worker),
  ) {
    this.spine = spine;
    const clock = spine.clock;
    // The spine clock reads without allocating; performance.now() made garbage on every spin.
    this.msClock = () => clock.now() / 1e6;
    this.strategy = waitStrategyNamed(wait, { now: this.msClock });
    // Parked, the thread is woken by producers of the streams its actors consume, on its own word.
    // The list is cached: a park announces on it, and a fresh list per park was garbage.
    this.parker = spine.control.parker(worker, () => this.consumedStreams());
    this.worker = worker;
    this.actors = actors;
    this.idleTimeoutMs = Math.min(...actors.map((a) => a.actor.idleTimeoutMs));
    // Counted in the system's core budget from now until `close` (see CoreBudget).
    spine.control.coreBudget.join(worker);
  }

  /** The thread ends (after `onExit`, or a crash): its core is free for the others' spins. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.spine.control.coreBudget.leave(this.worker);
  }

  private closed = false;

  /** Parks until the system leaves the STARTING phase. */
  async untilStarted(): Promise<void> {
    const control = this.spine.control;
    while (control.phase === Phase.STARTING) {
      this.parkedPhase = Phase.STARTING;
      this.strategy.wait(this, this.parker, 20);
      await yieldToEventLoop();
    }
  }

  async run(): Promise<void> {
    const control = this.spine.control;
    const clock = this.spine.clock;
    const strategy = this.strategy;
    let lastYield = clock.now();
    for (;;) {
      const phase = control.phase;
      if (phase === Phase.EXITING) return;
      let work = 0;
      for (let i = 0; i < this.actors.length; i++) {
        const running = this.actors[i]!;
        this.current = running;
        const returned: unknown = running.actor.loopBody(running.adapter);
        if (returned !== undefined) refuseAsync(returned, `actor '${running.actor.name}': loopBody`);
        work += running.adapter.takeWork();
      }
      this.current = undefined;
      let timedOut = false;
      if (work !== 0) this.spinEnd = Number.NaN;
      else {
        // At rest until an ingress produce marks the thread busy (see ThreadActivity); handlers
        // are seen by a stop through their consumers' committed positions.
        this.activity.rest();
        this.parkedPhase = phase;
        // Stopping, an ingress actor may try again each round what is refused (each try counted
        // in `refused`): no spin by rounds then.
        if (strategy.spinMs === undefined || phase >= Phase.DRAINING) {
          this.spinEnd = Number.NaN;
          timedOut = !strategy.wait(this, this.parker, this.parkTimeoutMs());
        } else {
          // The strategy's spin, by rounds of the actors (see WaitStrategy.spinMs): a message is
          // found by its consumer's own poll, with no wait to leave nor round to begin first.
          const step = this.spinStep();
          if (step === SPIN) continue;
          if (step === SPIN_READ) {
            // Spinning long (a busy-spin thread, always): the event loop still gets its turns.
            if (this.readAt - lastYield > EVENT_LOOP_EVERY_NS) {
              await yieldToEventLoop();
              lastYield = this.readAt;
            }
            continue;
          }
          timedOut =
            this.readAt >= this.parkDeadline ||
            !parkUntil(this, this.parker, this.parkDeadline / 1e6, this.msClock);
        }
      }
      // A wake-up by a message goes straight back to the actors; the event loop gets its turn
      // after a timed-out park or every few milliseconds of work, but not more than once per
      // EVENT_LOOP_MIN_GAP_NS: a time-driven actor (a short idleTimeoutMs) times out often.
      const now = clock.now();
      const sinceYield = now - lastYield;
      if ((timedOut && sinceYield > EVENT_LOOP_MIN_GAP_NS) || sinceYield > EVENT_LOOP_EVERY_NS) {
        await yieldToEventLoop();
        lastYield = now;
      }
    }
  }

  /**
   * The spin by rounds, kept in fields: doubles in locals of `run`, an async function, live in its
   * context across its awaits and were boxed anew at every store (bytes of garbage per message).
   * When the thread's spin ends and when its park would time out (spine clock ns; NaN while it
   * has work), its idle rounds since the clock was last read, when that was, and how many rounds
   * go between two reads.
   */
  private spinEnd = Number.NaN;
  private parkDeadline = Number.NaN;
  private idleRounds = 0;
  private readAt = 0;
  private stride = 1;

  /**
   * One idle round of the spin by rounds: SPIN (go on), SPIN_READ (go on; the clock was read into
   * `readAt`) or PARK (the spin is over: park until `parkDeadline`).
   */
  private spinStep(): number {
    const clock = this.spine.clock;
    if (Number.isNaN(this.spinEnd)) {
      const now = clock.now();
      const timeoutMs = this.parkTimeoutMs();
      this.parkDeadline = now + timeoutMs * 1e6;
      this.spinEnd = now + Math.min(this.strategy.spinMs!(this.parker, timeoutMs), timeoutMs) * 1e6;
      this.idleRounds = 0;
      this.stride = 1;
      this.readAt = now;
    } else {
      // The clock about once per SPIN_CLOCK_NS: every round when rounds are slow (a spin then
      // ends, and the event loop gets its turn, on time), every few when they are cheap (a read
      // costs about what an empty round does).
      if (++this.idleRounds < this.stride) return SPIN;
      const now = clock.now();
      const perRound = (now - this.readAt) / this.idleRounds;
      this.stride =
        perRound >= SPIN_CLOCK_NS ? 1 : Math.min(SPIN_CLOCK_ROUNDS, Math.floor(SPIN_CLOCK_NS / perRound));
      this.idleRounds = 0;
      this.readAt = now;
    }
    if (this.readAt < this.spinEnd) return SPIN_READ;
    this.spinEnd = Number.NaN;
    return PARK;
  }

  /**
   * The longest park: the shortest idle timeout of the thread's actors, or less while a consumer
   * waits for a writer that may have died (its slot is skipped once the poison timeout passes,
   * and only a round that polls it can do so).
   */
  private parkTimeoutMs(): number {
    let timeout = this.idleTimeoutMs;
    const actors = this.actors;
    for (let i = 0; i < actors.length; i++) {
      const stalled = actors[i]!.adapter.stallRemainingMs();
      if (stalled + 1 < timeout) timeout = stalled + 1;
    }
    return timeout;
  }

  /** The streams this thread's actors consume (cached: it grows only when an actor starts a new one). */
  private consumedStreams(): readonly number[] {
    let count = 0;
    for (let i = 0; i < this.actors.length; i++) count += this.actors[i]!.adapter.consumedStreams.length;
    if (count !== this.streamCount) {
      this.streamCount = count;
      this.streams = [...new Set(this.actors.flatMap((a) => a.adapter.consumedStreams))];
    }
    return this.streams;
  }

  private streamCount = 0;
  private streams: readonly number[] = [];

  /** The parking condition: a consumer has something, or the phase moved on. */
  ready(): boolean {
    if (this.spine.control.phase !== this.parkedPhase) return true;
    // Indexed: a spin repeats this check, and a for-of V8 has not optimized allocates an iterator.
    const actors = this.actors;
    for (let i = 0; i < actors.length; i++) if (actors[i]!.adapter.hasPending()) return true;
    return false;
  }

  readyToPark(): boolean {
    if (this.spine.control.phase !== this.parkedPhase) return true;
    const actors = this.actors;
    for (let i = 0; i < actors.length; i++) if (actors[i]!.adapter.hasPendingExactly()) return true;
    return false;
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
