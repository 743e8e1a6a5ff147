import type { StringInterner } from './string-table.js';

/**
 * The id of the last string interned through it: a call site that repeats its string (a metric
 * recorded in a loop, a span around a handler) gets the id back with one compare, where the
 * interner's Map costs a hash lookup (~8 ns here). A string literal is internalized by V8, so
 * the compare is of two pointers. One cache per use (a metric's name, its unit, a span's name,
 * each property slot's key): two uses sharing one would evict each other at every call.
 */
export class CachedId {
  private text = '';
  /** The empty string is id 0 in every table. */
  private id = 0;

  /** The id of `text` in `strings`, or -1 if it cannot be interned. */
  of(strings: StringInterner, text: string): number {
    if (text === this.text) return this.id;
    const id = strings.intern(text);
    if (id >= 0) {
      this.text = text;
      this.id = id;
    }
    return id;
  }
}
