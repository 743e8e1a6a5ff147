import { Actor, type Handler, intMetric, logger, type SpineAdapter } from 'dorsal';
import type { MarketSpine } from './spine.js';

/** The order gateway: checks each order and acknowledges it (a real one would talk to an exchange). */
export default class Gateway extends Actor<MarketSpine> {
  readonly name = 'gateway';
  private readonly ack = { order: 0, accepted: false };
  private readonly log = logger('gateway');
  private readonly rejected = { order: 0 };
  private acks = 0;

  // Made once: an arrow written inside loopBody would be a new closure on every round.
  private readonly onOrder: Handler<MarketSpine, 'orders'> = (order, producers) => {
    this.ack.order = order.id;
    this.ack.accepted = order.qty > 0 && order.price > 0;
    producers.produce('acks', this.ack);
    // Instrumentation: a log entry for what needs a look, a metric now and then.
    if (!this.ack.accepted) {
      this.rejected.order = order.id;
      this.log.warn('order rejected', this.rejected);
    }
    if (++this.acks % 1000 === 0) intMetric('gateway.acks', this.acks, 'orders');
  };

  loopBody(adapter: SpineAdapter<MarketSpine>): void {
    adapter.consume('orders', this.onOrder);
  }
}
