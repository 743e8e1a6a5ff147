import { Actor, beginSpan, endSpan, type Handler, type SpineAdapter } from 'dorsal';
import type { MarketSpine } from './spine.js';

/**
 * A toy market maker: when the spread is wide, quote both sides — one book update becomes two
 * orders (fan-out), both children of the same book, grandchildren of the same tick.
 */
export default class Strategy extends Actor<MarketSpine> {
  readonly name = 'strategy';
  private nextId = 0;
  private readonly order = { symbol: '', id: 0, side: 0, price: 0, qty: 0 };

  // Made once: an arrow written inside loopBody would be a new closure on every round.
  private readonly onBook: Handler<MarketSpine, 'books'> = (book, producers) => {
    if (book.ask - book.bid < 0.04) return;
    // Instrumentation: each quote is a span in this thread's buffers (begin/end: no closure).
    const quote = beginSpan('quote');
    const order = this.order;
    order.symbol = book.symbol;
    order.qty = 10;
    order.id = this.nextId++;
    order.side = 0;
    order.price = book.bid + 0.01;
    producers.produce('orders', order);
    order.id = this.nextId++;
    order.side = 1;
    order.price = book.ask - 0.01;
    producers.produce('orders', order);
    endSpan(quote);
  };

  loopBody(adapter: SpineAdapter<MarketSpine>): void {
    adapter.consume('books', this.onBook);
  }
}
