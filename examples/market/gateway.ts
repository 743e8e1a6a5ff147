import { Actor, type SpineAdapter } from 'dorsal';
import type { MarketSpine } from './spine.js';

/** The order gateway: checks each order and acknowledges it (a real one would talk to an exchange). */
export default class Gateway extends Actor<MarketSpine> {
  readonly name = 'gateway';
  private readonly ack = { order: 0, accepted: false };

  loopBody(adapter: SpineAdapter<MarketSpine>): void {
    adapter.consume('orders', (order, producers) => {
      this.ack.order = order.id;
      this.ack.accepted = order.qty > 0 && order.price > 0;
      producers.produce('acks', this.ack);
    });
  }
}
