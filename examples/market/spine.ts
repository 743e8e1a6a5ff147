/**
 * The market pipeline's spine: four streams, one message layout each.
 *
 *   feed ──ticks──▶ book-builder ──books──▶ strategy ──orders──▶ gateway ──acks──▶
 *
 * Copy this folder to start your own system.
 */
import { defineMessage, defineSpine } from 'dorsal';

export const Tick = defineMessage('Tick', {
  symbol: { type: 'string', bytes: 8 },
  bid: 'f64',
  ask: 'f64',
  size: 'u32',
});

export const Book = defineMessage('Book', {
  symbol: { type: 'string', bytes: 8 },
  bid: 'f64',
  ask: 'f64',
  mid: 'f64',
  /** Ticks folded into this book so far. */
  updates: 'u32',
});

export const Order = defineMessage('Order', {
  symbol: { type: 'string', bytes: 8 },
  id: 'u32',
  /** 0 buy, 1 sell. */
  side: 'u8',
  price: 'f64',
  qty: 'u32',
});

export const Ack = defineMessage('Ack', {
  order: 'u32',
  accepted: 'bool',
});

export const spine = defineSpine({
  ticks: { message: Tick, capacity: 1 << 14 },
  books: { message: Book, capacity: 1 << 14 },
  orders: { message: Order, capacity: 1 << 14 },
  acks: { message: Ack, capacity: 1 << 14 },
});
export type MarketSpine = typeof spine;

export const SYMBOLS = ['ACME', 'GLOBEX', 'INITECH', 'UMBRELLA'] as const;
