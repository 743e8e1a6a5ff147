import { threadWriter } from './binding.js';
import { SpanEvent, SpanFlags, SpanKind } from './events.js';
import { MAX_SPAN_DEPTH, type ThreadWriter } from './thread-writer.js';

const T = SpanEvent.offsetOf('t');
const ID = SpanEvent.offsetOf('id');
const PARENT = SpanEvent.offsetOf('parent');
const NAME = SpanEvent.offsetOf('name');
const DEPTH = SpanEvent.offsetOf('depth');
const KIND = SpanEvent.offsetOf('kind');
const FLAGS = SpanEvent.offsetOf('flags');

/**
 * Spans of one thread nest: each thread keeps a stack of its open spans, and every span records
 * its parent (the span open around it) and its depth. What is supported:
 * - `span(name, fn)` for synchronous code: begun before `fn`, ended after it, even if it throws;
 * - `beginSpan` / `endSpan` for code that cannot be wrapped, within one synchronous stretch;
 * - `spanAsync(name, fn)` for a promise: an async span, recorded with the span open when it
 *   began as its parent, ended when the promise settles. It is not pushed on the thread's stack:
 *   while it awaits, other tasks run on the thread, and what they open is not inside it. Spans
 *   and logs written after an `await` in `fn` are therefore not attributed to it (that would
 *   need task-local storage, `AsyncLocalStorage`, which allocates on every await).
 */

/**
 * Runs `fn` inside a span named `name` and returns what it returns. Keep `fn` in a constant on
 * a hot path: a closure written at the call site is allocated at every call.
 *
 * @example
 * const total = span('rebalance', () => book.rebalance());
 */
export function span<T>(name: string, fn: () => T): T {
  const id = beginSpan(name);
  try {
    return fn();
  } finally {
    endSpan(id);
  }
}

/**
 * Opens a span and returns its id, for `endSpan`. Returns 0 (and records nothing) if the span
 * cannot be recorded: its name could not be interned, or 128 spans are already open (each
 * counted in the buffer's drop counters).
 *
 * @example
 * const id = beginSpan('handshake');
 * // … later in the same synchronous stretch
 * endSpan(id);
 */
export function beginSpan(name: string): number {
  const writer = threadWriter();
  const strings = writer.strings;
  const nameId = writer.spanName.of(strings, name);
  if (nameId < 0) {
    strings.countDroppedForString('spans');
    return 0;
  }
  const depth = writer.depth;
  if (depth === MAX_SPAN_DEPTH) {
    strings.countDroppedForDepth();
    return 0;
  }
  const id = ++writer.lastSpanId;
  writeSpan(writer, SpanKind.BEGIN, 0, id, writer.currentSpan(), nameId, depth);
  writer.spanIds[depth] = id;
  writer.spanNames[depth] = nameId;
  writer.depth = depth + 1;
  return id;
}

/**
 * Ends the open span `id`. Spans opened inside it and still open are ended first, flagged
 * CLOSED_BY_PARENT; an id that is not open (0, ended already, another thread's) is ignored.
 */
export function endSpan(id: number): void {
  const writer = threadWriter();
  const ids = writer.spanIds;
  let at = writer.depth - 1;
  while (at >= 0 && ids[at] !== id) at--;
  if (at < 0) return;
  for (let top = writer.depth - 1; top >= at; top--) {
    const parent = top === 0 ? 0 : ids[top - 1]!;
    const flags = top === at ? 0 : SpanFlags.CLOSED_BY_PARENT;
    writeSpan(writer, SpanKind.END, flags, ids[top]!, parent, writer.spanNames[top]!, top);
  }
  writer.depth = at;
}

/**
 * Runs the async `fn` inside an async span named `name` (see above for what nests in it), and
 * returns its promise.
 *
 * @example
 * const rows = await spanAsync('fetch', () => fetchRows(url));
 */
export function spanAsync<T>(name: string, fn: () => PromiseLike<T> | T): Promise<T> {
  const writer = threadWriter();
  const nameId = writer.strings.intern(name);
  if (nameId < 0) writer.strings.countDroppedForString('spans');
  const id = nameId < 0 ? 0 : ++writer.lastSpanId;
  const parent = writer.currentSpan();
  const depth = writer.depth;
  if (id !== 0) writeSpan(writer, SpanKind.ASYNC_BEGIN, 0, id, parent, nameId, depth);
  const end = () => {
    if (id !== 0) writeSpan(threadWriter(), SpanKind.ASYNC_END, 0, id, parent, nameId, depth);
  };
  let result: PromiseLike<T> | T;
  try {
    result = fn();
  } catch (error) {
    end();
    return Promise.reject(error);
  }
  return Promise.resolve(result).finally(end);
}

function writeSpan(
  writer: ThreadWriter,
  kind: number,
  flags: number,
  id: number,
  parent: number,
  name: number,
  depth: number,
): void {
  // In place: nothing between the claim and the commit can throw.
  const views = writer.spanViews;
  const at = writer.spans.claim();
  views.f64[(at + T) >> 3] = writer.clock.now();
  views.f64[(at + ID) >> 3] = id;
  views.f64[(at + PARENT) >> 3] = parent;
  views.u32[(at + NAME) >> 2] = name;
  views.u16[(at + DEPTH) >> 1] = depth;
  views.u8[at + KIND] = kind;
  views.u8[at + FLAGS] = flags;
  writer.spans.commit();
}
