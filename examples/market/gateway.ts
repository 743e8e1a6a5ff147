import { Actor, type Handler, type SpineAdapter } from 'dorsal';
import type { MarketSpine } from './spine.js';

/** The order gateway: checks each order and acknowledges it (a real one would talk to an exchange). */
export default class Gateway extends Actor<MarketSpine> {
  readonly name = 'gateway';
  private readonly ack = { order: 0, accepted: false };

  // Made once: an arrow written inside loopBody would be a new closure on every round.
  private readonly onOrder: Handler<MarketSpine, 'orders'> = (order, producers) => {
    this.ack.order = order.id;
    this.ack.accepted = order.qty > 0 && order.price > 0;
    producers.produce('acks', this.ack);
  };

  loopBody(adapter: SpineAdapter<MarketSpine>): void {
    adapter.consume('orders', this.onOrder);
  }
}
