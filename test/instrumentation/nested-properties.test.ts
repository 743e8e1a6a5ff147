/**
 * Nested logging from property getters at random depths (seeded), getters that throw (after
 * logging or not), Proxies whose traps log, texts at the 48-byte cut, on rings of 4 and 8 slots:
 * every committed slot compared raw, byte by byte (all 4 properties, both texts to their 48th
 * byte, the flags), against a model right after its commit. Written by a cold reviewer of the
 * nested writers (a67613d); each of its mutations of them fails here.
 */
import { describe, expect, it } from 'vitest';
import { LogEvent, LogFlags, logger, PropertyType } from '../../src/index.js';
import { threadWriter } from '../../src/telemetry/instrumentation/binding.js';
import { type Fresh, freshBuffers } from './fresh.js';

const MAX_TEXT = 48;
const VALUE0 = LogEvent.offsetOf('value0');
const KEY0 = LogEvent.offsetOf('key0');
const TYPE0 = LogEvent.offsetOf('type0');
const TEXT0 = LogEvent.offsetOf('text0');
const TEXT1 = LogEvent.offsetOf('text1');
const FLAGS = LogEvent.offsetOf('flags');

/** Reference cut: whole code points (a lone surrogate as U+FFFD, 3 bytes), at most 48 bytes. */
function refCut(text: string): { bytes: Buffer; cut: boolean } {
  let bytes = 0;
  let end = 0;
  while (end < text.length) {
    const c = text.charCodeAt(end);
    const pair = c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(end + 1) & 0xfc00) === 0xdc00;
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
    if (bytes + size > MAX_TEXT) break;
    bytes += size;
    end += pair ? 2 : 1;
  }
  return { bytes: Buffer.from(text.slice(0, end), 'utf8'), cut: end < text.length };
}

type Value = number | boolean | string | object | undefined;
interface PropSpec {
  key: string;
  value: Value;
  nested: EntrySpec[];
  throws: boolean;
  catchNested: boolean;
}
interface EntrySpec {
  template: string;
  props: PropSpec[] | undefined;
  proxy: 'none' | 'get' | 'ownKeys' | 'descriptor';
  proxyNested: EntrySpec[];
}
interface Expected {
  template: string;
  /** Per kept property: key, type, value (number, or text bytes). */
  kept: { key: string; type: number; value: number; text?: Buffer }[];
  flags: number;
}

function expectedOf(spec: EntrySpec): Expected | 'throws' {
  const kept: Expected['kept'] = [];
  let flags = 0;
  let texts = 0;
  if (spec.props !== undefined) {
    for (const p of spec.props) {
      if (kept.length === 4) {
        flags |= LogFlags.PROPERTIES_LEFT_OUT;
        break;
      }
      if (p.throws || (!p.catchNested && p.nested.some((n) => expectedOf(n) === 'throws'))) return 'throws';
      const v = p.value;
      if (typeof v === 'number') kept.push({ key: p.key, type: PropertyType.NUMBER, value: v });
      else if (typeof v === 'boolean')
        kept.push({ key: p.key, type: PropertyType.BOOLEAN, value: v ? 1 : 0 });
      else if (typeof v === 'string' && texts < 2) {
        const { bytes, cut } = refCut(v);
        if (cut) flags |= LogFlags.TEXT_CUT;
        kept.push({ key: p.key, type: PropertyType.STRING, value: texts++, text: bytes });
      } else flags |= LogFlags.PROPERTIES_LEFT_OUT;
    }
  }
  return { template: spec.template, kept, flags };
}

class Model {
  readonly committed: Expected[] = [];
  readonly u8: Uint8Array;
  readonly f64: Float64Array;
  readonly u32: Uint32Array;
  readonly u16: Uint16Array;
  readonly core: { slotsByte: number; stride: number; messageByte: number; seq: { capacity: number } };
  checks = 0;
  constructor(readonly fresh: Fresh) {
    const buffer = fresh.reader.logs.buffer;
    this.u8 = new Uint8Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.u32 = new Uint32Array(buffer);
    this.u16 = new Uint16Array(buffer);
    this.core = (fresh.reader.logs as unknown as { core: Model['core'] }).core;
  }

  /** The raw slot of sequence `seq` holds exactly `e`: every property field, tails of texts zero. */
  checkSlot(seq: number, e: Expected): void {
    this.checks++;
    const cap = this.core.seq.capacity;
    const at = this.core.slotsByte + (seq & (cap - 1)) * this.core.stride + this.core.messageByte;
    const strings = this.fresh.reader.strings;
    const tmpl = strings.text(this.u32[(at + LogEvent.offsetOf('template')) >> 2]!);
    const got: unknown[] = [tmpl, this.u8[at + FLAGS]];
    const want: unknown[] = [e.template, e.flags];
    const texts: (Buffer | undefined)[] = [undefined, undefined];
    for (let i = 0; i < 4; i++) {
      const k = e.kept[i];
      const keyId = this.u32[(at + KEY0 + 4 * i) >> 2]!;
      got.push([
        this.u8[at + TYPE0 + i],
        k === undefined ? keyId : strings.text(keyId),
        this.f64[(at + VALUE0 + 8 * i) >> 3],
      ]);
      want.push(k === undefined ? [PropertyType.NONE, 0, 0] : [k.type, k.key, k.value]);
      if (k?.text !== undefined) texts[k.value] = k.text;
    }
    for (const [n, off] of [TEXT0, TEXT1].entries()) {
      const len = this.u16[(at + off) >> 1]!;
      const bytes = Buffer.from(this.u8.subarray(at + off + 2, at + off + 2 + MAX_TEXT));
      got.push([len, bytes.toString('hex')]);
      const w = texts[n] ?? Buffer.alloc(0);
      const full = Buffer.alloc(MAX_TEXT);
      w.copy(full);
      want.push([w.length, full.toString('hex')]);
    }
    expect(got, `slot of seq ${seq}`).toEqual(want);
  }

  run(spec: EntrySpec): void {
    const log = logger('fuzz');
    const props = this.build(spec);
    const expected = expectedOf(spec);
    let threw = false;
    try {
      log.info(spec.template, props as never);
    } catch {
      threw = true;
    }
    expect(threw, JSON.stringify(spec.template)).toBe(expected === 'throws');
    if (expected === 'throws') {
      // Nothing of its own committed (nested ones may have been).
      expect(threadWriter().logs.sequence).toBe(this.committed.length);
      return;
    }
    const seq = threadWriter().logs.sequence - 1;
    expect(seq).toBe(this.committed.length);
    this.committed.push(expected);
    this.checkSlot(seq, expected);
  }

  private runNested(list: EntrySpec[], catchNested: boolean): void {
    for (const n of list) {
      if (catchNested) this.run(n);
      else {
        // Must propagate the nested throw: run it without the model's catch.
        const e = expectedOf(n);
        if (e === 'throws') {
          logger('fuzz').info(n.template, this.build(n) as never); // throws
        } else this.run(n);
      }
    }
  }

  private build(spec: EntrySpec): object | undefined {
    if (spec.props === undefined) return undefined;
    const target: Record<string, unknown> = {};
    for (const p of spec.props) {
      if (p.nested.length === 0 && !p.throws) {
        target[p.key] = p.value;
        continue;
      }
      Object.defineProperty(target, p.key, {
        enumerable: true,
        get: () => {
          this.runNested(p.nested, p.catchNested);
          if (p.throws) throw new Error(`getter ${p.key}`);
          return p.value;
        },
      });
    }
    if (spec.proxy === 'none') return target;
    const nested = () => this.runNested(spec.proxyNested, true);
    return new Proxy(target, {
      ownKeys: (t) => {
        if (spec.proxy === 'ownKeys') nested();
        return Reflect.ownKeys(t);
      },
      getOwnPropertyDescriptor: (t, k) => {
        if (spec.proxy === 'descriptor') nested();
        return Reflect.getOwnPropertyDescriptor(t, k);
      },
      get: (t, k, r) => {
        if (spec.proxy === 'get') nested();
        return Reflect.get(t, k, r);
      },
    });
  }
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['a', 'é', '€', '😀', '\ud800', '\udc00', '\u07ff', '\u0800', 'x'.repeat(15), 'é'.repeat(7)];

function randomText(r: () => number): string {
  const target = Math.floor(r() * 60);
  let s = '';
  while (s.length < target) s += PIECES[Math.floor(r() * PIECES.length)]!;
  return s;
}

function randomEntry(r: () => number, depth: number, id: { n: number }): EntrySpec {
  const template = `t${id.n++ % 7}`;
  const shape = r();
  const props: PropSpec[] | undefined = shape < 0.25 ? undefined : [];
  if (props !== undefined) {
    const count = shape < 0.3 ? 0 : Math.floor(r() * 7);
    for (let i = 0; i < count; i++) {
      const kind = r();
      const value: Value =
        kind < 0.3 ? Math.round(r() * 1000) / 8 : kind < 0.45 ? r() < 0.5 : kind < 0.9 ? randomText(r) : {};
      const nested: EntrySpec[] = [];
      if (depth < 5 && r() < 0.25) {
        const k = 1 + Math.floor(r() * 3);
        for (let j = 0; j < k; j++) nested.push(randomEntry(r, depth + 1, id));
      }
      props.push({ key: `k${i}`, value, nested, throws: r() < 0.05, catchNested: r() < 0.7 });
    }
  }
  const pr = r();
  const proxy =
    props === undefined || depth >= 5
      ? 'none'
      : pr < 0.85
        ? 'none'
        : pr < 0.9
          ? 'get'
          : pr < 0.95
            ? 'ownKeys'
            : 'descriptor';
  const proxyNested = proxy === 'none' ? [] : [randomEntry(r, depth + 1, id)];
  return { template, props, proxy, proxyNested };
}

describe('log entries whose properties log, throw, or are Proxies: every slot exact, raw', () => {
  for (const capacity of [4, 8]) {
    it(`random nesting on a ${capacity}-slot ring: every committed slot is exact`, () => {
      const fresh = freshBuffers({ logCapacity: capacity });
      const model = new Model(fresh);
      const r = rng(capacity * 7919);
      const id = { n: 0 };
      for (let i = 0; i < 3000; i++) model.run(randomEntry(r, 0, id));
      expect(model.checks).toBeGreaterThan(3000);
    });
  }

  it('a getter logs bare entries into the slot its outer entry takes, at every offset', () => {
    const fresh = freshBuffers({ logCapacity: 4 });
    const model = new Model(fresh);
    const bare: EntrySpec = { template: 'bare', props: undefined, proxy: 'none', proxyNested: [] };
    const withText: EntrySpec = {
      template: 'text',
      props: [{ key: 's', value: 'z'.repeat(48), nested: [], throws: false, catchNested: true }],
      proxy: 'none',
      proxyNested: [],
    };
    for (let lap = 0; lap < 6; lap++)
      for (let k = 0; k < 6; k++) {
        model.run({
          template: 'outer',
          props: [
            {
              key: 'a',
              value: 'é'.repeat(24),
              nested: [...Array(k).fill(bare), withText],
              throws: false,
              catchNested: true,
            },
          ],
          proxy: 'none',
          proxyNested: [],
        });
        model.run({
          template: 'outer-empty',
          props: [{ key: 'o', value: {}, nested: Array(k).fill(bare), throws: false, catchNested: true }],
          proxy: 'none',
          proxyNested: [],
        });
        model.run({ template: 'outer-none', props: [], proxy: 'none', proxyNested: [] });
        for (let j = 0; j < lap; j++) model.run(bare);
      }
  });

  it('TEXT_CUT is exact at and around 48 bytes', () => {
    const fresh = freshBuffers({ logCapacity: 4 });
    const model = new Model(fresh);
    const texts = [
      'x'.repeat(48),
      'x'.repeat(49),
      `${'x'.repeat(47)}é`,
      `${'x'.repeat(46)}é`,
      `${'x'.repeat(45)}€`,
      `${'x'.repeat(46)}€`,
      `${'x'.repeat(44)}😀`,
      `${'x'.repeat(45)}😀`,
      `${'x'.repeat(45)}\ud800`,
      `${'x'.repeat(46)}\ud800`,
      `${'x'.repeat(45)}\ud800\udc00`,
      `${'x'.repeat(44)}\ud800\udc00`,
      '€'.repeat(16),
      `${'€'.repeat(16)}a`,
      `${'€'.repeat(15)}ab`,
      `${'€'.repeat(15)}éa`,
      '😀'.repeat(12),
      `${'😀'.repeat(11)}\ud83d`,
      `${'😀'.repeat(11)}\ud83d\ud83d`,
      '\udc00'.repeat(16),
      '\udc00'.repeat(17),
      'é'.repeat(24),
      'é'.repeat(25),
    ];
    for (const t of texts)
      model.run({
        template: 'cut',
        props: [
          { key: 'a', value: t, nested: [], throws: false, catchNested: true },
          { key: 'b', value: t, nested: [], throws: false, catchNested: true },
        ],
        proxy: 'none',
        proxyNested: [],
      });
    expect(fresh.logs().at(-1)!.properties).toEqual({ a: 'é'.repeat(24), b: 'é'.repeat(24) });
  });
});

describe('the writer after throws and runaway recursion', () => {
  type Internals = { resolving: boolean; inner?: Internals; free(): unknown };
  const internals = () => threadWriter().properties as unknown as Internals;

  it('after a getter throws at depth 1, 2 and 3, the thread writer is used again (the finally)', () => {
    const fresh = freshBuffers({ logCapacity: 8 });
    const log = logger('throws');
    const thrower = (depth: number): object => ({
      a: 1,
      get b(): number {
        if (depth === 0) throw new Error('boom');
        log.info(`d${depth}`, thrower(depth - 1) as never);
        return 2;
      },
    });
    for (const depth of [0, 1, 2, 3]) {
      expect(() => log.info('outer', thrower(depth) as never)).toThrow('boom');
      const w = internals();
      expect([w.resolving, w.inner?.resolving ?? false]).toEqual([false, false]);
      expect(w.free()).toBe(w);
    }
    log.info('after', { x: 1 });
    expect(fresh.logs().map((e) => [e.template, e.properties])).toEqual([['after', { x: 1 }]]);
  });

  it('a getter that logs its own object forever overflows the stack; logging works after', () => {
    const fresh = freshBuffers({ logCapacity: 8 });
    const log = logger('runaway');
    const self: Record<string, unknown> = { n: 1 };
    Object.defineProperty(self, 'again', {
      enumerable: true,
      get() {
        log.info('again', self as never);
        return 1;
      },
    });
    expect(() => log.info('outer', self as never)).toThrow(RangeError);
    const w = internals();
    expect([w.resolving, w.inner?.resolving ?? false]).toEqual([false, false]);
    log.info('after', { x: 1, s: 'é' });
    log.info('bare');
    expect(fresh.logs().map((e) => [e.template, e.properties])).toEqual([
      ['after', { x: 1, s: 'é' }],
      ['bare', {}],
    ]);
  });

  it('Proxies: traps that log (ownKeys, descriptor, get) and a revoked proxy', () => {
    const fresh = freshBuffers({ logCapacity: 4 });
    const log = logger('proxy');
    const trapped = (trap: 'ownKeys' | 'getOwnPropertyDescriptor' | 'get') =>
      new Proxy(
        { a: 1, s: 'text' },
        {
          [trap]: (...args: unknown[]) => {
            log.info('trap', { t: trap, n: 3, f: false });
            return (Reflect[trap] as (...a: unknown[]) => unknown)(...args);
          },
        },
      );
    for (const trap of ['ownKeys', 'getOwnPropertyDescriptor', 'get'] as const) {
      log.info('outer', trapped(trap) as never);
      const entries = fresh.logs();
      expect(entries.at(-1)!.properties).toEqual({ a: 1, s: 'text' });
      for (const e of entries.slice(0, -1)) expect(e.properties).toEqual({ t: trap, n: 3, f: false });
    }
    const { proxy, revoke } = Proxy.revocable({ a: 1 }, {});
    revoke();
    expect(() => log.info('revoked', proxy as never)).toThrow(TypeError);
    expect(internals().resolving).toBe(false);
    log.info('bare');
    expect(fresh.logs().map((e) => [e.template, e.properties])).toEqual([['bare', {}]]);
  });
});
