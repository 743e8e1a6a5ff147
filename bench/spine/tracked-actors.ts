/**
 * The tracked pipeline's actors, in one module: `args.role` picks one. The source publishes
 * `count` messages spaced `intervalNs` apart (latency, not queueing); each relay handles one
 * stream and produces the next (origin and parent ride along); the sink records, per message,
 * spine clock now − origin_t into an HDR histogram and broadcasts the percentiles once it has
 * seen the last message (or at exit, if that one never came). The first `warmup` messages are not
 * reported (see LatencyRecorder).
 */
import { Actor, type Handler, type SpineAdapter } from '../../src/index.js';
import { LatencyRecorder, type PipelineSpine } from './spine.js';

type Role = 'source' | 'relay1' | 'relay2' | 'sink';
interface Args {
  role: Role;
  count: number;
  warmup: number;
  intervalNs: number;
  channel: string;
}

export default class HopActor extends Actor<PipelineSpine> {
  readonly name: string;
  override readonly idleTimeoutMs: number;
  private readonly args: Args;
  private readonly latencies: LatencyRecorder;
  private readonly msg = { n: 0, a: 1, b: 2, c: 3 };
  private sent = 0;
  private next = 0;
  private reported = false;

  constructor(args: Args) {
    super();
    this.args = args;
    this.latencies = new LatencyRecorder(args.warmup);
    this.name = args.role;
    this.idleTimeoutMs = args.role === 'source' ? 0.05 : Number(process.env.RELAY_IDLE ?? 50);
  }

  // The handlers are made once: an arrow written in `loopBody` would be a new closure on every
  // round, garbage the sink would then measure as collection pauses.
  private readonly relay1: Handler<PipelineSpine, 'hop1'> = (m, producers) => {
    producers.produce('hop2', m);
  };
  private readonly relay2: Handler<PipelineSpine, 'hop2'> = (m, producers) => {
    producers.produce('hop3', m);
  };
  private readonly sink: Handler<PipelineSpine, 'hop3'> = (m, _producers, meta) => {
    this.latencies.record(m.n, this.adapter!.now() - meta.tracking.origin_t);
    if (m.n === this.args.count - 1) this.report();
  };

  private adapter: SpineAdapter<PipelineSpine> | undefined;

  override onInit(adapter: SpineAdapter<PipelineSpine>): void {
    this.adapter = adapter;
  }

  loopBody(adapter: SpineAdapter<PipelineSpine>): void {
    switch (this.args.role) {
      case 'source': {
        if (this.sent >= this.args.count) return;
        const now = adapter.now();
        if (this.next === 0) this.next = now;
        if (now < this.next) return;
        this.msg.n = this.sent++;
        adapter.produce('hop1', this.msg);
        this.next = now + this.args.intervalNs;
        return;
      }
      case 'relay1':
        adapter.consume('hop1', this.relay1);
        return;
      case 'relay2':
        adapter.consume('hop2', this.relay2);
        return;
      case 'sink':
        adapter.consume('hop3', this.sink);
    }
  }

  override onExit(): void {
    if (this.args.role === 'sink') this.report();
  }

  /** Broadcasts the percentiles to the bench's main thread, once. */
  private report(): void {
    if (this.reported) return;
    this.reported = true;
    const channel = new BroadcastChannel(this.args.channel);
    channel.postMessage(this.latencies.report());
    channel.close();
  }
}
