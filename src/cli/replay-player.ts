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
 * A burst starts only while no reader lags more than this part of its ring (see
 * `SpineAdapter.readers`): what is in flight then, and what it makes downstream, fits in the
 * rings with room to spare unless one message makes several thousand.
 */
const MAX_FILL = 1 / 8;

/**
 * A reader that lags and has not moved for this long, in ns, is no longer waited for: one that
 * reads nothing (an actor that consumes a stream now and then) would hold the replay forever; it
 * is lapped instead, as in a live run, and its losses are counted. Waited for again once it moves.
 */
const STALL_NS = 2e9;

/**
 * The ingress actor of a replay: publishes recorded messages, each a new origin, in their
 * recorded order, at their recorded pacing divided by `speed` (never earlier than due; later
 * when the system cannot take them sooner). It publishes only while every reader of the spine's
 * rings is close behind (`SpineAdapter.readers`): a slow consumer, the persister included, makes
 * it wait rather than lose messages (one that reads nothing at all for `STALL_NS` no longer does).
 */
export default class ReplayPlayer extends Actor {
  readonly name = 'replay-player';
  // Driven by time at speed 1 and 10, and by room at any speed: park at most a millisecond.
  override readonly idleTimeoutMs = 1;
  private readonly args: PlayerArgs;
  private readonly played: Int32Array;
  private next = 0;
  private start = Number.NaN;
  /** Per reader (ring and consumer entry): the position it was last seen at, and since when. */
  private readonly seen = new Map<string, { position: number; since: number }>();

  constructor(args: PlayerArgs) {
    super();
    this.args = args;
    this.played = new Int32Array(args.played);
  }

  loopBody(adapter: SpineAdapter): void {
    const { streams, stream, at, values, speed } = this.args;
    if (this.next >= values.length || adapter.stopping) return;
    if (speed > 0 && this.start + at[this.next]! / speed > adapter.now()) return;
    if (this.tooFull(adapter)) return;
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

  /** True while a reader that moves lags too far behind. */
  private tooFull(adapter: SpineAdapter): boolean {
    const now = adapter.now();
    let fill = 0;
    for (const reader of adapter.readers()) {
      const key = `${reader.ring}/${reader.consumer}`;
      const seen = this.seen.get(key);
      if (seen === undefined || seen.position !== reader.position || reader.lag === 0) {
        this.seen.set(key, { position: reader.position, since: now });
      } else if (now - seen.since > STALL_NS) continue;
      fill = Math.max(fill, reader.lag / reader.capacity);
    }
    return fill > MAX_FILL;
  }
}
