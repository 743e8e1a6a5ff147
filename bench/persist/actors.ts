/**
 * The persister bench's pipeline, all four actors on one thread: a source paced at `rate`
 * messages per second (in batches, so that rates above one message per round are kept), two
 * relays, and a sink that counts. `args.role` picks one.
 */
import { Actor, type Handler, type SpineAdapter } from '../../src/index.js';
import type { PipelineSpine } from '../spine/spine.js';

type Role = 'source' | 'relay1' | 'relay2' | 'sink';

export default class PacedActor extends Actor<PipelineSpine> {
  readonly name: string;
  override readonly idleTimeoutMs: number;
  private readonly role: Role;
  private readonly rate: number;
  private readonly msg = { n: 0, a: 1, b: 2, c: 3 };
  private started = Number.NaN;
  private sent = 0;
  private readonly relay1: Handler<PipelineSpine, 'hop1'> = (m, producers) => {
    producers.produce('hop2', m);
  };
  private readonly relay2: Handler<PipelineSpine, 'hop2'> = (m, producers) => {
    producers.produce('hop3', m);
  };
  private readonly sink: Handler<PipelineSpine, 'hop3'> = () => {};

  constructor(args: { role: Role; rate: number }) {
    super();
    this.role = args.role;
    this.name = args.role;
    this.rate = args.rate;
    this.idleTimeoutMs = args.role === 'source' ? 0.05 : 50;
  }

  loopBody(adapter: SpineAdapter<PipelineSpine>): void {
    switch (this.role) {
      case 'source': {
        const now = adapter.now();
        if (Number.isNaN(this.started)) this.started = now;
        const due = Math.min(256, Math.floor(((now - this.started) * this.rate) / 1e9) - this.sent);
        for (let i = 0; i < due; i++) {
          this.msg.n = this.sent++;
          if (!adapter.produce('hop1', this.msg)) return;
        }
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
}
