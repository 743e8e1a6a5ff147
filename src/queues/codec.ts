import { LayoutError } from '../errors.js';
import type { FieldDescription, LayoutDescription } from './field-types.js';
import { describe } from './field-types.js';

/**
 * Typed views over one buffer, shared by every codec bound to it. Offsets handed to a codec are
 * byte offsets that are multiples of 8, so every field lands on its natural alignment.
 */
export interface BufferViews {
  readonly buffer: ArrayBufferLike;
  readonly u8: Uint8Array;
  readonly i8: Int8Array;
  readonly u16: Uint16Array;
  readonly i16: Int16Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f32: Float32Array;
  readonly f64: Float64Array;
  readonly i64: BigInt64Array;
  readonly u64: BigUint64Array;
  /** A Buffer over the same memory, for native UTF-8 encoding and decoding without copies. */
  readonly bytes: Buffer;
}

export function viewsOf(buffer: ArrayBufferLike): BufferViews {
  return {
    buffer,
    u8: new Uint8Array(buffer),
    i8: new Int8Array(buffer),
    u16: new Uint16Array(buffer, 0, buffer.byteLength >> 1),
    i16: new Int16Array(buffer, 0, buffer.byteLength >> 1),
    u32: new Uint32Array(buffer, 0, buffer.byteLength >> 2),
    i32: new Int32Array(buffer, 0, buffer.byteLength >> 2),
    f32: new Float32Array(buffer, 0, buffer.byteLength >> 2),
    f64: new Float64Array(buffer, 0, buffer.byteLength >> 3),
    i64: new BigInt64Array(buffer, 0, buffer.byteLength >> 3),
    u64: new BigUint64Array(buffer, 0, buffer.byteLength >> 3),
    bytes: Buffer.from(buffer as ArrayBuffer),
  };
}

/**
 * A layout's encode/decode bound to one buffer. The functions are generated once per layout with
 * every offset a constant, so the hot path has no loop over fields, no closure and no allocation
 * per message (a decoded `string` or `i64` is the only allocation, and a string whose bytes did
 * not change since the last decode is reused).
 */
export interface BoundCodec<M> {
  /** Throws a `LayoutError` naming the field if `msg` does not fit; writes nothing. */
  check(msg: M): void;
  /** Writes a checked message at byte offset `base`. Never throws. */
  write(base: number, msg: M): void;
  /** Reads the message at byte offset `base` into `out`. Never throws, even on torn bytes. */
  read(base: number, out: M): void;
}

/** The generated class of one layout's codecs: one instance per bound buffer. */
type CodecClass = new (
  views: BufferViews,
) => {
  check(msg: unknown): void;
  write(base: number, msg: unknown): void;
  read(base: number, out: unknown): void;
};

interface CodecHelpers {
  fail(field: string, expected: string, value: unknown): never;
  utf8Length(s: string): number;
  Buffer: typeof Buffer;
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;

const INT_RANGES: Record<string, readonly [number, number]> = {
  i8: [-128, 127],
  u8: [0, 255],
  i16: [-32768, 32767],
  u16: [0, 65535],
  i32: [-2147483648, 2147483647],
  u32: [0, 4294967295],
};

type ViewName = Exclude<keyof BufferViews, 'buffer'>;

const VIEW_SHIFT: Record<string, [view: ViewName, shift: number]> = {
  f64: ['f64', 3],
  f32: ['f32', 2],
  i8: ['i8', 0],
  u8: ['u8', 0],
  i16: ['i16', 1],
  u16: ['u16', 1],
  i32: ['i32', 2],
  u32: ['u32', 2],
  i64: ['i64', 3],
  u64: ['u64', 3],
};

/** Generated source of one method: its body and the views it reads from `this`. */
class MethodSource {
  readonly lines: string[] = [];
  readonly views = new Set<ViewName>();

  push(line: string, ...views: ViewName[]): void {
    this.lines.push(line);
    for (const v of views) this.views.add(v);
  }

  /** The views as locals (one load each from the codec), then the body. */
  toString(): string {
    const locals = [...this.views].map((v) => `const ${v} = this.${v};`);
    return [...locals, ...this.lines].join('\n');
  }
}

interface CodecSource {
  /** Per field, an expression true when the field's value fits (the fast path of `check`). */
  readonly fits: string[];
  /** Statements that find the first field that does not fit and throw (the slow path). */
  readonly explain: MethodSource;
  readonly write: MethodSource;
  readonly read: MethodSource;
  /** Constructor lines: per-binding state (string caches). */
  readonly state: string[];
  /** Further methods of the class. */
  readonly methods: string[];
}

/**
 * Compiles a layout description into a factory of buffer-bound codecs (done once per layout).
 *
 * The layout gets one generated class, and each binding is an instance holding its views: every
 * binding of a layout shares the same functions, so a call site that sees one layout is
 * monomorphic and V8 inlines the codec into it. (Closures made per binding defeated that: V8
 * cannot inline a target it knows only by a closure cell that many closures share, so every
 * publish and poll made two more calls. The class took a tracked spine hop from ~150 to ~130 ns.)
 *
 * `check` is one expression over all fields, small enough to be inlined too (V8 inlines by
 * bytecode size); only when it fails does `explain` walk the fields to name the culprit.
 */
export function compileCodec(layout: LayoutDescription): <M>(views: BufferViews) => BoundCodec<M> {
  const code: CodecSource = {
    fits: [],
    explain: new MethodSource(),
    write: new MethodSource(),
    read: new MethodSource(),
    state: [],
    methods: [],
  };
  for (const field of layout.fields) emitField(field, code);

  const views = new Set([...code.explain.views, ...code.write.views, ...code.read.views]);
  const source = `
const Buffer = helpers.Buffer;
const { fail, utf8Length } = helpers;
const I64_MIN = ${I64_MIN}n, I64_MAX = ${I64_MAX}n, U64_MAX = ${U64_MAX}n;
return class Codec {
  constructor(views) {
${[...views].map((v) => `    this.${v} = views.${v};`).join('\n')}
${code.state.join('\n')}
  }
  check(m) {
    if (m === null || typeof m !== 'object' || !(${code.fits.join(' && ') || 'true'})) this.explain(m);
  }
  explain(m) {
    if (m === null || typeof m !== 'object') fail('', 'an object', m);
${code.explain}
    fail('', 'a message that fits', m);
  }
  write(base, m) {
${code.write}
  }
  read(base, o) {
${code.read}
  }
${code.methods.join('\n')}
};`;
  const helpers: CodecHelpers = {
    fail(field, expected, value) {
      const where = field ? `field '${field}' of message '${layout.name}'` : `message '${layout.name}'`;
      throw new LayoutError(`${where}: expected ${expected}, got ${describe(value)}`);
    },
    utf8Length,
    Buffer,
  };
  const Codec = new Function('helpers', source)(helpers) as CodecClass;
  return <M>(views: BufferViews) => new Codec(views) as BoundCodec<M>;
}

/**
 * Whether `v` (a number) is an integer of `type`'s range, without a call: an integer in range
 * is the only number that survives the truncation to its width unchanged (NaN, fractions, -1,
 * 2^16 do not). `typeof` comes first, so that an object's valueOf is never run.
 */
const INT_FITS: Record<string, (v: string) => string> = {
  i8: (v) => `((${v} << 24) >> 24) === ${v}`,
  u8: (v) => `(${v} & 0xff) === ${v}`,
  i16: (v) => `((${v} << 16) >> 16) === ${v}`,
  u16: (v) => `(${v} & 0xffff) === ${v}`,
  i32: (v) => `(${v} | 0) === ${v}`,
  u32: (v) => `(${v} >>> 0) === ${v}`,
};

function emitField(f: FieldDescription, code: CodecSource) {
  const { fits, explain, write, read } = code;
  const p = `m.${f.name}`;
  const name = JSON.stringify(f.name);
  const at = `base + ${f.offset}`;
  switch (f.type) {
    case 'f64':
    case 'f32': {
      const [view, shift] = VIEW_SHIFT[f.type]!;
      fits.push(`typeof ${p} === 'number'`);
      explain.push(`if (typeof ${p} !== 'number') fail(${name}, 'a number', ${p});`);
      write.push(`${view}[(${at}) >> ${shift}] = ${p};`, view);
      read.push(`o.${f.name} = ${view}[(${at}) >> ${shift}];`, view);
      return;
    }
    case 'i8':
    case 'u8':
    case 'i16':
    case 'u16':
    case 'i32':
    case 'u32': {
      const [view, shift] = VIEW_SHIFT[f.type]!;
      const [lo, hi] = INT_RANGES[f.type]!;
      fits.push(`typeof ${p} === 'number' && ${INT_FITS[f.type]!(p)}`);
      explain.push(
        `{ const v = ${p}; if (typeof v !== 'number' || !(v >= ${lo} && v <= ${hi}) || Math.floor(v) !== v) fail(${name}, 'an integer from ${lo} to ${hi}', v); }`,
      );
      write.push(`${view}[(${at}) >> ${shift}] = ${p};`, view);
      read.push(`o.${f.name} = ${view}[(${at}) >> ${shift}];`, view);
      return;
    }
    case 'i64':
    case 'u64': {
      const [view, shift] = VIEW_SHIFT[f.type]!;
      const [min, max] = f.type === 'i64' ? ['I64_MIN', 'I64_MAX'] : ['0n', 'U64_MAX'];
      const range = `v < ${min} || v > ${max}`;
      const text = f.type === 'i64' ? 'a bigint from -2^63 to 2^63-1' : 'a bigint from 0 to 2^64-1';
      fits.push(`typeof ${p} === 'bigint' && ${p} >= ${min} && ${p} <= ${max}`);
      explain.push(`{ const v = ${p}; if (typeof v !== 'bigint' || ${range}) fail(${name}, '${text}', v); }`);
      write.push(`${view}[(${at}) >> ${shift}] = ${p};`, view);
      read.push(`o.${f.name} = ${view}[(${at}) >> ${shift}];`, view);
      return;
    }
    case 'bool':
      fits.push(`typeof ${p} === 'boolean'`);
      explain.push(`if (typeof ${p} !== 'boolean') fail(${name}, 'a boolean', ${p});`);
      write.push(`u8[${at}] = ${p} ? 1 : 0;`, 'u8');
      read.push(`o.${f.name} = u8[${at}] !== 0;`, 'u8');
      return;
    case 'string':
      emitString(f, code);
      return;
    case 'bytes': {
      const n = f.bytes!;
      fits.push(`${p} instanceof Uint8Array && ${p}.length <= ${n}`);
      explain.push(
        `if (!(${p} instanceof Uint8Array) || ${p}.length > ${n}) fail(${name}, 'a Uint8Array of at most ${n} bytes', ${p});`,
      );
      // A shorter value is zero-padded: a bytes field always decodes to exactly `bytes` bytes.
      write.push(
        `u8.set(${p}, ${at}); if (${p}.length < ${n}) u8.fill(0, ${at} + ${p}.length, ${at} + ${n});`,
        'u8',
      );
      read.push(
        `{ let d = o.${f.name}; if (!(d instanceof Uint8Array) || d.length !== ${n}) d = o.${f.name} = new Uint8Array(${n});` +
          ` const at = ${at}; for (let i = 0; i < ${n}; i++) d[i] = u8[at + i]; }`,
        'u8',
      );
      return;
    }
  }
}

/**
 * A string is stored as a u16 byte length followed by up to `bytes` UTF-8 bytes. Decoding keeps
 * the last string read per field and reuses it while the bytes are the same (symbols, names), so
 * a steady stream decodes without allocating. The caches are per binding (fields of `this`).
 */
function emitString(f: FieldDescription, code: CodecSource) {
  const n = f.bytes!;
  const p = `m.${f.name}`;
  const name = JSON.stringify(f.name);
  const k = f.name;
  code.state.push(
    `    this.lastLen_${k} = -1; this.lastStr_${k} = ''; this.lastBytes_${k} = new Uint8Array(${n});`,
    `    this.encStr_${k} = ''; this.encLen_${k} = 0;`,
    // The string is decoded from the private copy, never from the slot a second time: a producer
    // may be overwriting the slot, and the cache must pair a string with the bytes it came from.
    `    this.lastText_${k} = Buffer.from(this.lastBytes_${k}.buffer);`,
  );
  // The fast path measures a string only when it is not the one measured last.
  code.fits.push(`typeof ${p} === 'string' && (${p} === this.encStr_${k} || this.measure_${k}(${p}))`);
  code.methods.push(
    `  measure_${k}(s) { const len = utf8Length(s); if (len > ${n}) return false; this.encStr_${k} = s; this.encLen_${k} = len; return true; }`,
  );
  code.explain.push(
    `{ const s = ${p}; if (typeof s !== 'string') fail(${name}, 'a string', s);` +
      ` if (s !== this.encStr_${k}) { const len = utf8Length(s); if (len > ${n}) fail(${name}, 'a string of at most ${n} UTF-8 bytes (this one has ' + len + ')', s); this.encStr_${k} = s; this.encLen_${k} = len; } }`,
  );
  code.write.push(
    `{ const s = ${p}, len = this.encLen_${k}, at = base + ${f.offset};` +
      ` u16[at >> 1] = len;` +
      ` if (len === s.length) { for (let i = 0; i < len; i++) u8[at + 2 + i] = s.charCodeAt(i); }` +
      ` else bytes.write(s, at + 2, len, 'utf8'); }`,
    'u16',
    'u8',
    'bytes',
  );
  code.read.push(
    `{ const at = base + ${f.offset}; let len = u16[at >> 1]; if (len > ${n}) len = ${n};` +
      ` const last = this.lastBytes_${k}; let same = len === this.lastLen_${k};` +
      ` for (let i = 0; same && i < len; i++) same = u8[at + 2 + i] === last[i];` +
      ` if (!same) { for (let i = 0; i < len; i++) last[i] = u8[at + 2 + i];` +
      ` this.lastLen_${k} = len; this.lastStr_${k} = this.lastText_${k}.toString('utf8', 0, len); }` +
      ` o.${k} = this.lastStr_${k}; }`,
    'u16',
    'u8',
  );
}

/** A lone surrogate (in `u` mode a pair is one code point, not in `Cs`). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * `s` as it reads back from UTF-8: itself, or with each lone surrogate as U+FFFD (what
 * `Buffer.write` stores). A name kept as UTF-8 and looked up by its JS string is looked up by this.
 */
export function asUtf8(s: string): string {
  return hasLoneSurrogate(s) ? Buffer.from(s, 'utf8').toString('utf8') : s;
}

/** Whether `s` holds a lone surrogate: text no UTF-8 (nor a database column) keeps as it is. */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

/** UTF-8 byte length of a string, as Buffer.byteLength counts it (a lone surrogate is 3 bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
