import { Actor } from '../actors/actor.js';
import { ByteRing } from '../queues/byte-ring.js';
import type { LayoutDescription } from '../queues/field-types.js';
import type { SpineAdapter } from '../spine/index.js';
import { ChunkReader } from './replay-chunk.js';

/**
 * What the player plays, and how fast. The messages come through `ring`, in chunks the main
 * thread writes as it reads them from the recording (see `replay-feed.ts`): the player holds one
 * chunk at a time, whatever the length of the recording.
 */
export interface PlayerArgs {
  /** The streams played, by name; a message's stream indexes this list… */
  readonly streams: readonly string[];
  /** …and this one: each stream's layout, which the chunks hold its messages in. */
  readonly layouts: readonly LayoutDescription[];
  /** The byte ring the chunks come through (a `ByteRing`'s buffer), in play order. */
  readonly ring: SharedArrayBuffer;
  /** Bytes per chunk at most. */
  readonly chunkBytes: number;
  /** 1: the recorded pacing; 10: ten times faster; 0: as fast as the streams take. */
  readonly speed: number;
  /** One BigInt64 the player keeps at the count of messages played (read by the runner). */
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
 * recorded order (as the ring brings them: it waits for the next chunk when it has none), at
 * their recorded pacing divided by `speed` (never earlier than due; later when the system cannot
 * take them sooner). It publishes only while every reader of the spine's
 * rings is close behind (`SpineAdapter.readers`): a slow consumer, the persister included, makes
 * it wait rather than lose messages (one that reads nothing at all for `STALL_NS` no longer does).
 */
export default class ReplayPlayer extends Actor {
  readonly name = 'replay-player';
  // Driven by time at speed 1 and 10, by room at any speed, and by the chunks the main thread
  // writes: park at most a millisecond.
  override readonly idleTimeoutMs = 1;
  private readonly streams: readonly string[];
  private readonly speed: number;
  private readonly ring: ByteRing;
  private readonly chunk: ChunkReader;
  private readonly played: BigInt64Array;
  /** Messages published so far. */
  private next = 0;
  private start = Number.NaN;
  /** Per reader (ring and consumer entry): the position it was last seen at, and since when. */
  private readonly seen = new Map<string, { position: number; since: number }>();

  constructor(args: PlayerArgs) {
    super();
    this.streams = args.streams;
    this.speed = args.speed;
    this.ring = ByteRing.attach(args.ring);
    this.chunk = new ChunkReader(args.layouts, args.chunkBytes);
    this.played = new BigInt64Array(args.played);
  }

  loopBody(adapter: SpineAdapter): void {
    const { chunk, speed } = this;
    if (adapter.stopping || (!chunk.more && !chunk.load(this.ring))) return;
    if (speed > 0 && this.start + chunk.at / speed > adapter.now()) return;
    if (this.tooFull(adapter)) return;
    if (Number.isNaN(this.start)) {
      if (!adapter.produce(this.streams[chunk.stream]!, chunk.value())) return;
      chunk.next();
      this.next = 1;
      // The pacing starts once the first message is out (its producer made): none is due
      // sooner after it than recorded.
      this.start = adapter.now();
    }
    const now = adapter.now();
    for (let burst = 0; burst < BURST; burst++) {
      if (!chunk.more && !chunk.load(this.ring)) break;
      if (speed > 0 && this.start + chunk.at / speed > now) break;
      if (!adapter.produce(this.streams[chunk.stream]!, chunk.value())) break;
      chunk.next();
      this.next++;
    }
    // SC store: the runner's Atomics.load reads a whole count; the messages counted are
    // already published (their queues order their own slots).
    Atomics.store(this.played, 0, BigInt(this.next));
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
