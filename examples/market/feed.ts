import { Actor, intMetric, logger, type SpineAdapter } from 'dorsal';
import { type MarketSpine, SYMBOLS } from './spine.js';

/**
 * Ingress: a market-data feed publishing `ratePerSecond` ticks (a random walk per symbol),
 * paced by the spine clock. Every tick it publishes starts a new message tree.
 */
export default class Feed extends Actor<MarketSpine> {
  readonly name = 'feed';
  // Driven by time, not by messages: park at most a millisecond.
  override readonly idleTimeoutMs = 1;
  private readonly intervalNs: number;
  private readonly mids = SYMBOLS.map(() => 100);
  private next = 0;
  private n = 0;
  private readonly tick = { symbol: '', bid: 0, ask: 0, size: 0 };

  constructor(args: { ratePerSecond?: number } = {}) {
    super();
    this.intervalNs = 1e9 / (args.ratePerSecond ?? 20_000);
  }

  override onInit(adapter: SpineAdapter<MarketSpine>): void {
    this.next = adapter.now();
    // Instrumentation: a log entry into this thread's buffers, persisted with the run.
    logger('feed').info('publishing', { ratePerSecond: Math.round(1e9 / this.intervalNs) });
  }

  loopBody(adapter: SpineAdapter<MarketSpine>): void {
    if (adapter.stopping) return;
    const now = adapter.now();
    // Catch up with the clock, a bounded burst at a time.
    for (let burst = 0; this.next <= now && burst < 64; burst++) {
      const i = this.n++ % SYMBOLS.length;
      const mid = this.mids[i]! * (1 + (Math.random() - 0.5) * 1e-3);
      this.mids[i] = mid;
      const tick = this.tick;
      tick.symbol = SYMBOLS[i]!;
      tick.bid = mid - 0.01;
      tick.ask = mid + 0.01 + Math.random() * 0.05;
      tick.size = 1 + Math.floor(Math.random() * 500);
      adapter.produce('ticks', tick);
      this.next += this.intervalNs;
      if (this.n % 1000 === 0) intMetric('feed.ticks', this.n, 'ticks');
    }
  }
}
