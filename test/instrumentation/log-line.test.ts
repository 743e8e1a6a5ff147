import { describe, expect, it } from 'vitest';
import { ConfigError, LogFlags, logger, setLevel } from '../../src/index.js';
import { freshBuffers } from './fresh.js';

/** An entry's fields but its time, as a test compares two entries. */
const timeless = ({ t: _t, ...rest }: { t: number }) => rest;

describe('a prepared log line (Logger.line)', () => {
  it('records the entry the same call with an object records', () => {
    const fresh = freshBuffers();
    const log = logger('lines');
    const orderSent = log.line('warn', 'order sent', ['qty', 'side', 'urgent', 'px']);
    orderSent(10, 'buy', true, 101.25);
    log.warn('order sent', { qty: 10, side: 'buy', urgent: true, px: 101.25 });
    const [line, object] = fresh.logs();
    expect(line).toMatchObject({
      level: 'warn',
      target: 'lines',
      template: 'order sent',
      flags: 0,
      properties: { qty: 10, side: 'buy', urgent: true, px: 101.25 },
    });
    expect(timeless(line!)).toEqual(timeless(object!));
  });

  it('takes its two texts at any of its keys', () => {
    const fresh = freshBuffers();
    const log = logger('lines');
    const values: [number | string, number | string, number | string, number | string][] = [
      ['a', 'b', 1, 2],
      ['a', 1, 'b', 2],
      ['a', 1, 2, 'b'],
      [1, 'a', 'b', 2],
      [1, 'a', 2, 'b'],
      [1, 2, 'a', 'b'],
    ];
    const line = log.line('info', 'texts', ['w', 'x', 'y', 'z']);
    for (const [w, x, y, z] of values) line(w, x, y, z);
    expect(fresh.logs().map((e) => e.properties)).toEqual(values.map(([w, x, y, z]) => ({ w, x, y, z })));
  });

  it('records nothing while its level is filtered out, and records once the level is let through', () => {
    const fresh = freshBuffers();
    const log = logger('quiet-line');
    const detail = log.line('debug', 'detail', ['n']);
    detail(1);
    expect(fresh.logs()).toEqual([]);
    setLevel('quiet-line', 'debug');
    try {
      detail(2);
      expect(fresh.logs().map((e) => e.properties)).toEqual([{ n: 2 }]);
    } finally {
      setLevel('quiet-line', 'info');
    }
    detail(3);
    expect(fresh.logs()).toEqual([]);
  });

  it('leaves out what an entry cannot hold, as an object entry does, and says so', () => {
    const fresh = freshBuffers();
    const log = logger('line-limits');
    const three = log.line('info', 'three texts', ['a', 'b', 'c', 'n']);
    three('one', 'two', 'three', 4);
    const odd = log.line('info', 'odd values', ['o', 'u', 'ok']);
    (odd as (...values: unknown[]) => void)({}, undefined, false);
    const long = log.line('info', 'long', ['s', 'e']);
    long('x'.repeat(60), 'é'.repeat(30));
    const [texts, values, cut] = fresh.logs();
    expect(texts!.properties).toEqual({ a: 'one', b: 'two', n: 4 });
    expect(texts!.flags).toBe(LogFlags.PROPERTIES_LEFT_OUT);
    expect(values!.properties).toEqual({ ok: false });
    expect(values!.flags).toBe(LogFlags.PROPERTIES_LEFT_OUT);
    // Cut at 48 bytes, on a whole character: 24 of the 2-byte é.
    expect(cut!.properties).toEqual({ s: 'x'.repeat(48), e: 'é'.repeat(24) });
    expect(cut!.flags).toBe(LogFlags.TEXT_CUT);
  });

  it('leaves nothing of an older entry in its slot, and nothing to the entries written after it', () => {
    // A ring of 4 slots, written again and again by lines, object entries and bare entries.
    const fresh = freshBuffers({ logCapacity: 4 });
    const log = logger('line-laps');
    const raw = Buffer.from(fresh.reader.logs.buffer);
    const two = log.line('info', 'two', ['n', 'text']);
    const plan = [0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 1, 1, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0];
    const seen: unknown[] = [];
    plan.forEach((kind, n) => {
      if (kind === 0) log.info('bare');
      else if (kind === 1) two(n, `secret-${n}`);
      else if (kind === 2) two(n, undefined as never);
      else log.info('object', { n, text: `object-secret-${n}` });
      seen.push(...fresh.logs().map((e) => [e.template, e.properties, e.flags]));
    });
    expect(seen).toEqual(
      plan.map((kind, n) =>
        kind === 0
          ? ['bare', {}, 0]
          : kind === 1
            ? ['two', { n, text: `secret-${n}` }, 0]
            : kind === 2
              ? ['two', { n }, LogFlags.PROPERTIES_LEFT_OUT]
              : ['object', { n, text: `object-secret-${n}` }, 0],
      ),
    );
    // Bare entries have gone around the ring since the last text: no text is left in its bytes.
    expect(raw.includes('secret')).toBe(false);
  });

  it('interns its strings again in the buffers of a thread that binds others', () => {
    freshBuffers();
    const log = logger('rebound');
    const line = log.line('info', 'before and after', ['k']);
    line(1);
    // New buffers, a new string table whose first ids go to other strings: the ids the line
    // held name those there.
    const fresh = freshBuffers();
    logger('other').info('first', { x: 1 });
    line(2);
    expect(fresh.logs().map((e) => [e.target, e.template, e.properties])).toEqual([
      ['other', 'first', { x: 1 }],
      ['rebound', 'before and after', { k: 2 }],
    ]);
  });

  it('drops and counts an entry whose strings the table cannot hold, as an object entry is', () => {
    // 3 strings: the empty one, the target and the template; the key finds no room.
    const fresh = freshBuffers({ maxStrings: 3 });
    const log = logger('crowded');
    const line = log.line('info', 'no room', ['one-key-too-many']);
    line(1);
    line(2);
    expect(fresh.logs()).toEqual([]);
    expect(fresh.reader.dropped.strings).toBe(2);
    // A value left out needs no key: recorded, as the object entry is.
    line(undefined as never);
    log.info('no room', { 'one-key-too-many': undefined as never });
    const entries = fresh.logs();
    expect(entries.map((e) => [e.template, e.properties, e.flags])).toEqual([
      ['no room', {}, LogFlags.PROPERTIES_LEFT_OUT],
      ['no room', {}, LogFlags.PROPERTIES_LEFT_OUT],
    ]);
    expect(fresh.reader.dropped.strings).toBe(2);
  });

  it('refuses at once what every call would drop', () => {
    const log = logger('refused');
    const refused = (make: () => unknown, message: RegExp) => {
      expect(make).toThrow(ConfigError);
      expect(make).toThrow(message);
    };
    refused(() => log.line('loud' as never, 'x', []), /unknown log level 'loud'/);
    refused(() => log.line('toString' as never, 'x', []), /unknown log level 'toString'/);
    refused(() => log.line('info', 'x', ['a', 'b', 'c', 'd', 'e']), /at most 4 keys, got 5/);
    refused(() => log.line('info', 'x', ['a', 'a']), /key 'a' is given twice/);
    refused(() => log.line('info', 'x', ['']), /key 0 must be a non-empty string/);
    refused(() => log.line('info', 'x', [7 as never]), /key 0 must be a non-empty string, got number/);
    refused(() => log.line('info', 'x', 'a' as never), /keys must be an array/);
    refused(() => log.line('info', 5 as never, []), /template must be a string/);
    refused(() => log.line('info', 'é'.repeat(126), []), /at most 250 UTF-8 bytes/);
  });
});
