import { Actor, type Handler, type SpineAdapter } from 'dorsal';
import { type MarketSpine, SYMBOLS } from './spine.js';

/** Folds ticks into a top-of-book per symbol and publishes the book after every tick. */
export default class BookBuilder extends Actor<MarketSpine> {
  readonly name = 'book-builder';
  private readonly updates = new Map<string, number>(SYMBOLS.map((s) => [s, 0]));
  private readonly book = { symbol: '', bid: 0, ask: 0, mid: 0, updates: 0 };

  // Made once: an arrow written inside loopBody would be a new closure on every round.
  private readonly onTick: Handler<MarketSpine, 'ticks'> = (tick, producers) => {
    const updates = (this.updates.get(tick.symbol) ?? 0) + 1;
    this.updates.set(tick.symbol, updates);
    const book = this.book;
    book.symbol = tick.symbol;
    book.bid = tick.bid;
    book.ask = tick.ask;
    book.mid = (tick.bid + tick.ask) / 2;
    book.updates = updates;
    producers.produce('books', book);
  };

  loopBody(adapter: SpineAdapter<MarketSpine>): void {
    adapter.consume('ticks', this.onTick);
  }
}
