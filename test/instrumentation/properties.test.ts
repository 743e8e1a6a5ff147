import { describe, expect, it } from 'vitest';
import { intMetric, LogEvent, LogFlags, logger, MAX_STRING_BYTES, metric, span } from '../../src/index.js';
import { decodeLog } from '../fixtures/instrumentation/decode.js';
import { freshBuffers } from './fresh.js';

describe('what a log entry holds, and what it leaves out', () => {
  it('the first 4 properties are kept; more are left out, and the entry says so', () => {
    const fresh = freshBuffers();
    logger('props').info('many', { a: 1, b: true, c: 'x', d: -2.5, e: 5 });
    const [entry] = fresh.logs();
    expect(entry!.properties).toEqual({ a: 1, b: true, c: 'x', d: -2.5 });
    expect(entry!.flags).toBe(LogFlags.PROPERTIES_LEFT_OUT);
  });

  it('two string values are kept inline; a third, and values of other types, are left out', () => {
    const fresh = freshBuffers();
    const log = logger('props');
    log.info('strings', { s1: 'one', s2: 'two', s3: 'three', n: 3 });
    log.info('types', { o: {} as never, u: undefined as never, b: 1n as never, ok: false });
    log.info('none');
    const [strings, types, none] = fresh.logs();
    expect(strings!.properties).toEqual({ s1: 'one', s2: 'two', n: 3 });
    expect(strings!.flags).toBe(LogFlags.PROPERTIES_LEFT_OUT);
    expect(types!.properties).toEqual({ ok: false });
    expect(types!.flags).toBe(LogFlags.PROPERTIES_LEFT_OUT);
    expect(none!.properties).toEqual({});
    expect(none!.flags).toBe(0);
  });

  it('entries written in place over older laps carry only their own properties, raw bytes included', () => {
    // A ring of 4 slots: every slot is written again and again, by entries with and without properties.
    const fresh = freshBuffers({ logCapacity: 4 });
    const log = logger('laps');
    const plan = [2, 0, 0, 1, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0, 1, 0];
    const seen: { properties: Record<string, unknown>; flags: number }[] = [];
    const raw = fresh.reader.logs.consumer({ from: 'oldest' });
    const out = LogEvent.create();
    plan.forEach((kind, n) => {
      if (kind === 0) log.info('bare');
      else if (kind === 1) log.info('one', { n, left: { no: 1 } as never });
      else log.info('two', { n, text: `t${n}` });
      expect(raw.poll(out)).toBe(true);
      seen.push({ properties: decodeLog(out, fresh.reader.strings).properties, flags: out.flags });
      // The slot's bytes, as the persister ships them: no property field of an older entry.
      if (kind === 0) {
        expect([out.key0, out.key1, out.type0, out.type1, out.value0, out.text0, out.text1]).toEqual([
          0,
          0,
          0,
          0,
          0,
          '',
          '',
        ]);
      }
    });
    expect(seen).toEqual(
      plan.map((kind, n) => ({
        properties: kind === 0 ? {} : kind === 1 ? { n } : { n, text: `t${n}` },
        flags: kind === 1 ? LogFlags.PROPERTIES_LEFT_OUT : 0,
      })),
    );
  });

  it('an entry whose properties throw half-way is not recorded, and leaves nothing to the entries after it', () => {
    const fresh = freshBuffers({ logCapacity: 4 });
    const log = logger('throwing');
    const hostile = {
      user: 42,
      note: 'secret',
      get broken(): number {
        throw new Error('getter');
      },
    };
    log.info('bare');
    expect(() => log.info('hostile', hostile)).toThrow('getter');
    for (let i = 0; i < 6; i++) log.info('bare');
    log.info('one', { only: 1 });
    // Read lapped: half a ring behind the head.
    const entries = fresh.logs();
    expect(entries.map((e) => [e.template, e.properties])).toEqual([
      ['bare', {}],
      ['one', { only: 1 }],
    ]);
  });

  it('a property getter that logs records its own entry and leaves the outer one whole', () => {
    const fresh = freshBuffers({ logCapacity: 8 });
    const log = logger('nested');
    const innermost = {
      get deep(): string {
        log.warn('innermost', { level: 3, tag: 'c' });
        return 'z';
      },
    };
    const inner = {
      a: 7,
      get b(): string {
        log.info('middle', innermost);
        return 'bee';
      },
    };
    const outer = {
      x: 1,
      label: 'outer text',
      get y(): number {
        log.debug('not recorded', { x: 9 });
        log.error('inner', inner);
        return 2.5;
      },
      z: true,
    };
    // Five entries a round in an 8-slot ring: in 16 rounds, each kind of entry writes every slot
    // after the others did, the bare entry included (it skips the property stores where the
    // slot's mark says zeros: a nested writer's entry there must have cleared the mark).
    for (let round = 0; round < 16; round++) {
      log.info('outer', outer);
      log.info('bare');
      // Each committed when its properties are resolved: the innermost first. Four deep: the
      // thread's writer, the one it keeps for a nested entry, then writers made for one entry.
      expect(fresh.logs().map((e) => [e.template, e.properties, e.flags])).toEqual([
        ['innermost', { level: 3, tag: 'c' }, 0],
        ['middle', { deep: 'z' }, 0],
        ['inner', { a: 7, b: 'bee' }, 0],
        ['outer', { x: 1, label: 'outer text', y: 2.5, z: true }, 0],
        ['bare', {}, 0],
      ]);
    }
    // A nested entry leaves nothing to the bare entry written next into its slot: a ring of bare
    // entries (each slot marked as holding zeros), a nested entry and its outer one, then bare
    // entries once around, the last into the nested entry's slot.
    const seen: unknown[] = [];
    const read = () => seen.push(...fresh.logs().map((e) => [e.template, e.properties]));
    for (let i = 0; i < 8; i++) log.info('bare');
    read();
    seen.length = 0;
    log.info('outer', {
      get y(): number {
        log.info('nested', { n: 1, s: 'text' });
        return 2;
      },
    });
    read();
    for (let i = 0; i < 7; i++) {
      log.info('bare');
      read();
    }
    expect(seen).toEqual([
      ['nested', { n: 1, s: 'text' }],
      ['outer', { y: 2 }],
      ...Array(7).fill(['bare', {}]),
    ]);
  });

  it('an entry whose properties are all left out says so in every lap', () => {
    const fresh = freshBuffers({ logCapacity: 4 });
    const log = logger('flags');
    const raw = fresh.reader.logs.consumer({ from: 'oldest' });
    const out = LogEvent.create();
    for (let n = 0; n < 12; n++) {
      // A lap of bare entries, then a lap whose every property is left out, and again.
      const bare = Math.floor(n / 4) % 2 === 0;
      if (bare) log.info('bare');
      else log.info('left out', { o: {} as never });
      expect(raw.poll(out)).toBe(true);
      expect(out.flags).toBe(bare ? 0 : LogFlags.PROPERTIES_LEFT_OUT);
    }
  });

  it("no older entry's text stays in the slot's raw bytes, which the persister ships", () => {
    const fresh = freshBuffers({ logCapacity: 2 });
    const log = logger('texts');
    const raw = Buffer.from(fresh.reader.logs.buffer);
    log.info('two', { a: 'hunter2-very-secret', b: 'second-secret' });
    log.info('x');
    expect(raw.includes('hunter2-very-secret')).toBe(true);
    // The same slot again: with one shorter text, then with none.
    log.info('one', { a: 'ok' });
    expect(raw.includes('very-secret')).toBe(false);
    expect(raw.includes('second-secret')).toBe(false);
    log.info('y');
    log.info('two', { a: 'hunter2-very-secret', b: 'second-secret' });
    log.info('z');
    log.info('bare');
    expect(raw.includes('secret')).toBe(false);
    expect(fresh.logs().at(-1)!.properties).toEqual({});
  });

  it('a log call that overflows the stack leaves logging working on the thread', () => {
    const fresh = freshBuffers({ logCapacity: 64 });
    const log = logger('deep');
    const props = { a: 1, s: 'non-ASCII é' };
    // Log at every depth near the stack's limit, so that some call overflows somewhere in it.
    const pads = Array.from({ length: 40 }, (_, i) => new Array(i).fill(0));
    const record = (..._pad: unknown[]) => log.info('deep', props);
    function recurse(): void {
      try {
        recurse();
      } catch {}
      for (const pad of pads) {
        try {
          record(...pad);
        } catch {}
      }
    }
    recurse();
    log.info('after', props);
    expect(fresh.logs().at(-1)).toMatchObject({ template: 'after', properties: props });
  });

  it('a string value over 48 bytes is cut on a whole character, and the entry says so', () => {
    const fresh = freshBuffers();
    const log = logger('props');
    const cases = ['a'.repeat(60), 'é'.repeat(30), '€'.repeat(20), '😀'.repeat(13), 'x'.repeat(48)];
    for (const text of cases) log.info('cut', { text });
    const entries = fresh.logs();
    expect(entries.map((e) => e.properties.text)).toEqual([
      'a'.repeat(48),
      'é'.repeat(24),
      '€'.repeat(16),
      '😀'.repeat(12),
      'x'.repeat(48),
    ]);
    expect(entries.map((e) => e.flags)).toEqual([1, 1, 1, 1, 0].map((cut) => (cut ? LogFlags.TEXT_CUT : 0)));
  });

  it('an entry, metric or span whose name is over 250 bytes is dropped and counted', () => {
    const fresh = freshBuffers();
    const long = 'n'.repeat(MAX_STRING_BYTES + 1);
    logger('props').info(long);
    logger(long).info('fine template');
    logger('props').info('fine', { [long]: 1 });
    metric(long, 1);
    span(long, () => undefined);
    logger('props').info('n'.repeat(MAX_STRING_BYTES));
    expect(fresh.reader.dropped.strings).toBe(5);
    // Each drop is counted against the kind of event it was: what its lake stream reports.
    expect(['logs', 'metrics', 'spans'].map((k) => fresh.reader.droppedOf(k as 'logs').strings)).toEqual([
      3, 1, 1,
    ]);
    expect(fresh.logs().map((l) => l.template.length)).toEqual([MAX_STRING_BYTES]);
    expect(fresh.metrics()).toEqual([]);
    expect(fresh.spans()).toEqual([]);
  });

  it('metrics: a float as it is, an integer truncated toward zero, the unit empty by default', () => {
    const fresh = freshBuffers();
    metric('ratio', 0.75, 'fraction');
    intMetric('items', -7.9);
    intMetric('big', 2 ** 53);
    expect(fresh.metrics().map(({ name, unit, value }) => [name, unit, value])).toEqual([
      ['ratio', 'fraction', 0.75],
      ['items', '', -7],
      ['big', '', 2 ** 53],
    ]);
  });
});
