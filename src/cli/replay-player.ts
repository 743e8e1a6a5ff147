import { Actor } from '../actors/actor.js';
import type { SpineAdapter } from '../spine/index.js';

/** What the player plays: recorded ingress messages in their recorded order, and how fast. */
export interface PlayerArgs {
  /** The streams played, by name; `stream[i]` indexes this list. */
  readonly streams: readonly string[];
  /** Per message, in play order: its stream (an index into `streams`)… */
  readonly stream: Uint16Array;
  /** …its recorded publish time, in ns since the first message's… */
  readonly at: Float64Array;
  /** …and its fields, as the replayed spine's layout of that stream takes them. */
  readonly values: readonly object[];
  /** 1: the recorded pacing; 10: ten times faster; 0: as fast as the streams take. */
  readonly speed: number;
  /** One Int32 the player keeps at the count of messages played (read by the runner). */
  readonly played: SharedArrayBuffer;
}

/** Messages published at most per round of `loopBody`: a stop, and how full the rings are, are seen between bursts. */
const BURST = 256;

/**
 * A burst starts only while no ring is fuller than this (`SpineAdapter.fill`): what is in flight
 * then, and what it makes downstream, fits in the rings with room to spare unless one message
 * makes several thousand.
 */
const MAX_FILL = 1 / 8;

/**
 * The ingress actor of a replay: publishes recorded messages, each a new origin, in their
 * recorded order, at their recorded pacing divided by `speed` (never earlier than due; later
 * when the system cannot take them sooner). It publishes only while the spine's rings are nearly
 * empty (`SpineAdapter.fill`): a slow consumer, the persister included, makes it wait rather than
 * lose messages.
 */
export default class ReplayPlayer extends Actor {
  readonly name = 'replay-player';
  // Driven by time at speed 1 and 10, and by room at any speed: park at most a millisecond.
  override readonly idleTimeoutMs = 1;
  private readonly args: PlayerArgs;
  private readonly played: Int32Array;
  private next = 0;
  private start = Number.NaN;

  constructor(args: PlayerArgs) {
    super();
    this.args = args;
    this.played = new Int32Array(args.played);
  }

  loopBody(adapter: SpineAdapter): void {
    const { streams, stream, at, values, speed } = this.args;
    if (this.next >= values.length || adapter.stopping) return;
    if (speed > 0 && this.start + at[this.next]! / speed > adapter.now()) return;
    if (adapter.fill() > MAX_FILL) return;
    if (Number.isNaN(this.start)) {
      if (!adapter.produce(streams[stream[0]!]!, values[0]!)) return;
      this.next = 1;
      // The pacing starts once the first message is out (its producer made): none is due
      // sooner after it than recorded.
      this.start = adapter.now();
    }
    const now = adapter.now();
    for (let burst = 0; burst < BURST && this.next < values.length; burst++) {
      const i = this.next;
      if (speed > 0 && this.start + at[i]! / speed > now) break;
      if (!adapter.produce(streams[stream[i]!]!, values[i]!)) break;
      this.next = i + 1;
    }
    // SC store: the runner's Atomics.load reads a whole count; the messages counted are
    // already published (their queues order their own slots).
    Atomics.store(this.played, 0, this.next);
  }
}
