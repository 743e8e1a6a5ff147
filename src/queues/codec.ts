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
 * A layout's encode/decode bound to one buffer. All three functions are generated once per
 * binding with every offset a constant, so the hot path has no loop over fields, no closure and
 * no allocation per message (a decoded `string` or `i64` is the only allocation, and a string
 * whose bytes did not change since the last decode is reused).
 */
export interface BoundCodec<M> {
  /** Throws a `LayoutError` naming the field if `msg` does not fit; writes nothing. */
  check(msg: M): void;
  /** Writes a checked message at byte offset `base`. Never throws. */
  write(base: number, msg: M): void;
  /** Reads the message at byte offset `base` into `out`. Never throws, even on torn bytes. */
  read(base: number, out: M): void;
}

type CodecFactory = (
  views: BufferViews,
  helpers: CodecHelpers,
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

const VIEW_SHIFT: Record<string, [view: keyof BufferViews, shift: number]> = {
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

/** Compiles a layout description into a factory of buffer-bound codecs (done once per layout). */
export function compileCodec(layout: LayoutDescription): <M>(views: BufferViews) => BoundCodec<M> {
  const checks: string[] = [];
  const writes: string[] = [];
  const reads: string[] = [];
  const state: string[] = [];

  for (const field of layout.fields) {
    emitField(field, checks, writes, reads, state);
  }

  const source = `
const { u8, i8, u16, i16, u32, i32, f32, f64, i64, u64, bytes } = views;
const Buffer = helpers.Buffer;
const { fail, utf8Length } = helpers;
const I64_MIN = ${I64_MIN}n, I64_MAX = ${I64_MAX}n, U64_MAX = ${U64_MAX}n;
${state.join('\n')}
return {
  check(m) {
    if (m === null || typeof m !== 'object') fail('', 'an object', m);
${checks.join('\n')}
  },
  write(base, m) {
${writes.join('\n')}
  },
  read(base, o) {
${reads.join('\n')}
  },
};`;
  const factory = new Function('views', 'helpers', source) as CodecFactory;
  const helpers: CodecHelpers = {
    fail(field, expected, value) {
      const where = field ? `field '${field}' of message '${layout.name}'` : `message '${layout.name}'`;
      throw new LayoutError(`${where}: expected ${expected}, got ${describe(value)}`);
    },
    utf8Length,
    Buffer,
  };
  return <M>(views: BufferViews) => factory(views, helpers) as BoundCodec<M>;
}

function emitField(
  f: FieldDescription,
  checks: string[],
  writes: string[],
  reads: string[],
  state: string[],
) {
  const p = `m.${f.name}`;
  const name = JSON.stringify(f.name);
  const at = `base + ${f.offset}`;
  switch (f.type) {
    case 'f64':
    case 'f32': {
      const [view, shift] = VIEW_SHIFT[f.type]!;
      checks.push(`if (typeof ${p} !== 'number') fail(${name}, 'a number', ${p});`);
      writes.push(`${view}[(${at}) >> ${shift}] = ${p};`);
      reads.push(`o.${f.name} = ${view}[(${at}) >> ${shift}];`);
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
      checks.push(
        `{ const v = ${p}; if (typeof v !== 'number' || !(v >= ${lo} && v <= ${hi}) || Math.floor(v) !== v) fail(${name}, 'an integer from ${lo} to ${hi}', v); }`,
      );
      writes.push(`${view}[(${at}) >> ${shift}] = ${p};`);
      reads.push(`o.${f.name} = ${view}[(${at}) >> ${shift}];`);
      return;
    }
    case 'i64':
    case 'u64': {
      const [view, shift] = VIEW_SHIFT[f.type]!;
      const range = f.type === 'i64' ? 'v < I64_MIN || v > I64_MAX' : 'v < 0n || v > U64_MAX';
      const text = f.type === 'i64' ? 'a bigint from -2^63 to 2^63-1' : 'a bigint from 0 to 2^64-1';
      checks.push(`{ const v = ${p}; if (typeof v !== 'bigint' || ${range}) fail(${name}, '${text}', v); }`);
      writes.push(`${view}[(${at}) >> ${shift}] = ${p};`);
      reads.push(`o.${f.name} = ${view}[(${at}) >> ${shift}];`);
      return;
    }
    case 'bool':
      checks.push(`if (typeof ${p} !== 'boolean') fail(${name}, 'a boolean', ${p});`);
      writes.push(`u8[${at}] = ${p} ? 1 : 0;`);
      reads.push(`o.${f.name} = u8[${at}] !== 0;`);
      return;
    case 'string':
      emitString(f, checks, writes, reads, state);
      return;
    case 'bytes': {
      const n = f.bytes!;
      checks.push(
        `if (!(${p} instanceof Uint8Array) || ${p}.length > ${n}) fail(${name}, 'a Uint8Array of at most ${n} bytes', ${p});`,
      );
      // A shorter value is zero-padded: a bytes field always decodes to exactly `bytes` bytes.
      writes.push(
        `u8.set(${p}, ${at}); if (${p}.length < ${n}) u8.fill(0, ${at} + ${p}.length, ${at} + ${n});`,
      );
      reads.push(
        `{ let d = o.${f.name}; if (!(d instanceof Uint8Array) || d.length !== ${n}) d = o.${f.name} = new Uint8Array(${n});` +
          ` const at = ${at}; for (let i = 0; i < ${n}; i++) d[i] = u8[at + i]; }`,
      );
      return;
    }
  }
}

/**
 * A string is stored as a u16 byte length followed by up to `bytes` UTF-8 bytes. Decoding keeps
 * the last string read per field and reuses it while the bytes are the same (symbols, names), so
 * a steady stream decodes without allocating.
 */
function emitString(
  f: FieldDescription,
  checks: string[],
  writes: string[],
  reads: string[],
  state: string[],
) {
  const n = f.bytes!;
  const p = `m.${f.name}`;
  const name = JSON.stringify(f.name);
  const k = f.name;
  state.push(`let lastLen_${k} = -1, lastStr_${k} = ''; const lastBytes_${k} = new Uint8Array(${n});`);
  state.push(`let encStr_${k} = '', encLen_${k} = 0;`);
  checks.push(
    `{ const s = ${p}; if (typeof s !== 'string') fail(${name}, 'a string', s);` +
      ` if (s !== encStr_${k}) { const len = utf8Length(s); if (len > ${n}) fail(${name}, 'a string of at most ${n} UTF-8 bytes (this one has ' + len + ')', s); encStr_${k} = s; encLen_${k} = len; } }`,
  );
  writes.push(
    `{ const s = ${p}, len = encLen_${k}, at = base + ${f.offset};` +
      ` u16[at >> 1] = len;` +
      ` if (len === s.length) { for (let i = 0; i < len; i++) u8[at + 2 + i] = s.charCodeAt(i); }` +
      ` else bytes.write(s, at + 2, len, 'utf8'); }`,
  );
  // The string is decoded from the private copy, never from the slot a second time: a producer
  // may be overwriting the slot, and the cache must pair a string with the bytes it came from.
  state.push(`const lastText_${k} = Buffer.from(lastBytes_${k}.buffer);`);
  reads.push(
    `{ const at = base + ${f.offset}; let len = u16[at >> 1]; if (len > ${n}) len = ${n};` +
      ` let same = len === lastLen_${k};` +
      ` for (let i = 0; same && i < len; i++) same = u8[at + 2 + i] === lastBytes_${k}[i];` +
      ` if (!same) { for (let i = 0; i < len; i++) lastBytes_${k}[i] = u8[at + 2 + i];` +
      ` lastLen_${k} = len; lastStr_${k} = lastText_${k}.toString('utf8', 0, len); }` +
      ` o.${k} = lastStr_${k}; }`,
  );
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
