import { describe, expect, it } from 'vitest';
import {
  beginSpan,
  endSpan,
  logger,
  MAX_SPAN_DEPTH,
  metric,
  SpanFlags,
  SpanKind,
  span,
  spanAsync,
} from '../../src/index.js';
import { freshBuffers } from './fresh.js';

const shape = (s: { kind: number; name: string; depth: number; flags: number }) =>
  `${s.kind === SpanKind.BEGIN ? 'begin' : s.kind === SpanKind.END ? 'end' : s.kind === SpanKind.ASYNC_BEGIN ? 'async-begin' : 'async-end'} ${s.name}@${s.depth}${s.flags ? ` flags=${s.flags}` : ''}`;

describe('spans of one thread', () => {
  it('span(fn) returns what fn returns, and ends the span when fn throws', () => {
    const fresh = freshBuffers();
    expect(span('ok', () => 42)).toBe(42);
    expect(() =>
      span('fails', () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(fresh.spans().map(shape)).toEqual(['begin ok@0', 'end ok@0', 'begin fails@0', 'end fails@0']);
  });

  it('ending an outer span ends the spans still open inside it first, flagged', () => {
    const fresh = freshBuffers();
    const outer = beginSpan('outer');
    const middle = beginSpan('middle');
    beginSpan('inner');
    endSpan(outer);
    const spans = fresh.spans();
    expect(spans.map(shape)).toEqual([
      'begin outer@0',
      'begin middle@1',
      'begin inner@2',
      `end inner@2 flags=${SpanFlags.CLOSED_BY_PARENT}`,
      `end middle@1 flags=${SpanFlags.CLOSED_BY_PARENT}`,
      'end outer@0',
    ]);
    expect(spans[3]!.parent).toBe(middle);
    expect(spans[4]!.parent).toBe(outer);
    // The stack is empty again: a new span is top-level.
    span('after', () => undefined);
    expect(fresh.spans()[0]!.depth).toBe(0);
  });

  it('an id that is not open (0, ended already, never given) writes nothing', () => {
    const fresh = freshBuffers();
    const id = beginSpan('once');
    endSpan(id);
    endSpan(id);
    endSpan(0);
    endSpan(12345);
    expect(fresh.spans().map(shape)).toEqual(['begin once@0', 'end once@0']);
  });

  it('beyond 128 open spans the deeper ones are not recorded, and counted', () => {
    const fresh = freshBuffers();
    const ids: number[] = [];
    for (let i = 0; i < MAX_SPAN_DEPTH + 3; i++) ids.push(beginSpan('deep'));
    expect(ids.slice(MAX_SPAN_DEPTH)).toEqual([0, 0, 0]);
    expect(fresh.reader.dropped.depth).toBe(3);
    endSpan(ids[0]!);
    const spans = fresh.spans();
    expect(spans).toHaveLength(2 * MAX_SPAN_DEPTH);
    expect(spans[MAX_SPAN_DEPTH - 1]!.depth).toBe(MAX_SPAN_DEPTH - 1);
  });

  it('logs and metrics carry the innermost open span', () => {
    const fresh = freshBuffers();
    const log = logger('spans');
    const outer = beginSpan('outer');
    log.info('in outer');
    const inner = beginSpan('inner');
    metric('m', 1);
    endSpan(inner);
    log.info('in outer again');
    endSpan(outer);
    log.info('outside');
    expect(fresh.logs().map((l) => l.span)).toEqual([outer, outer, 0]);
    expect(fresh.metrics().map((m) => m.span)).toEqual([inner]);
  });

  it('an async span ends when its promise settles, with the span open at its start as parent', async () => {
    const fresh = freshBuffers();
    const outer = beginSpan('outer');
    const done = spanAsync('fetch', async () => {
      await new Promise((r) => setTimeout(r, 1));
      // After an await, the async span is not on the thread's stack (see spans.ts).
      span('after-await', () => undefined);
      return 'rows';
    });
    endSpan(outer);
    expect(await done).toBe('rows');
    await expect(
      spanAsync('rejects', async () => {
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    const spans = fresh.spans();
    expect(spans.map(shape)).toEqual([
      'begin outer@0',
      'async-begin fetch@1',
      'end outer@0',
      'begin after-await@0',
      'end after-await@0',
      'async-end fetch@1',
      'async-begin rejects@0',
      'async-end rejects@0',
    ]);
    const [, fetchBegin, , , , fetchEnd] = spans;
    expect(fetchBegin!.parent).toBe(outer);
    expect(fetchEnd!.id).toBe(fetchBegin!.id);
    expect(fetchEnd!.t).toBeGreaterThanOrEqual(spans[4]!.t);
  });
});
