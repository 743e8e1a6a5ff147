import { LayoutError } from '../errors.js';
import { type BoundCodec, type BufferViews, compileCodec } from './codec.js';
import {
  describe as describeValue,
  type FieldDescription,
  type FieldSpecs,
  type FieldTypeName,
  fieldFootprint,
  type LayoutDescription,
  type MessageOf,
  normalizeField,
} from './field-types.js';

/**
 * A fixed-size message layout, compiled once to allocation-free encode/decode.
 *
 * @example
 * const Tick = defineMessage('Tick', {
 *   symbol: { type: 'string', bytes: 8 },
 *   price: 'f64',
 *   size: 'u32',
 *   ts: 'i64',
 * });
 * const tick = Tick.create();      // { symbol: '', price: 0, size: 0, ts: 0n }
 * Tick.size;                       // bytes per message
 * Tick.describe();                 // the layout as plain data
 */
export class Layout<M extends object = Record<string, unknown>> {
  /** Byte size of one encoded message (a multiple of 8). */
  readonly size: number;
  /** A 32-bit fingerprint of the description: a queue refuses to attach with another layout. */
  readonly fingerprint: number;
  private readonly description: LayoutDescription;
  private readonly factory: <T>(views: BufferViews) => BoundCodec<T>;
  private readonly blank: () => M;

  /** Use `defineMessage` or `Layout.fromDescription`. */
  private constructor(description: LayoutDescription) {
    this.description = deepFreeze(description);
    this.size = description.size;
    this.fingerprint = fingerprintOf(description);
    this.factory = compileCodec(description);
    this.blank = blankFactory(description.name, description.fields);
  }

  /** The message type's name. */
  get name(): string {
    return this.description.name;
  }

  /** A new message object holding default values (0, 0n, false, '', zeroed bytes). Reuse it. */
  create(): M {
    return this.blank();
  }

  /** The layout as plain data (JSON- and CBOR-safe), enough to decode raw message bytes. */
  describe(): LayoutDescription {
    return this.description;
  }

  /**
   * The byte offset of field `field` in an encoded message, for a writer that stores fields into
   * a claimed slot (see `ClaimingProducer`). A `LayoutError` for a field the layout lacks.
   */
  offsetOf(field: keyof M & string): number {
    const found = this.description.fields.find((f) => f.name === field);
    if (found === undefined) throw new LayoutError(`message '${this.name}' has no field '${String(field)}'`);
    return found.offset;
  }

  /** Binds encode/decode to a buffer. Internal to queues; each handle binds its own. */
  bind(views: BufferViews): BoundCodec<M> {
    return this.factory<M>(views);
  }

  /**
   * Rebuilds a layout from its description (for example one read back from the lake). Offsets
   * are validated, not trusted: a description that overlaps fields or overruns its size throws.
   */
  static fromDescription<T extends object = Record<string, unknown>>(
    description: LayoutDescription,
  ): Layout<T> {
    return new Layout<T>(validateDescription(description));
  }

  /** @internal used by `defineMessage`. */
  static fromSpecs<F extends FieldSpecs>(name: string, fields: F): Layout<MessageOf<F>> {
    return new Layout<MessageOf<F>>(planLayout(name, fields));
  }
}

/**
 * Declares a message layout. Field types: `f64 f32 i8 u8 i16 u16 i32 u32 i64 u64 bool`
 * (`i64`/`u64` are bigints), `{ type: 'string', bytes: N }` (UTF-8, at most N bytes; a longer
 * value is an error, never silently cut) and `{ type: 'bytes', bytes: N }` (a Uint8Array of
 * exactly N bytes when read; a shorter one is zero-padded when written).
 */
export function defineMessage<const F extends FieldSpecs>(name: string, fields: F): Layout<MessageOf<F>> {
  return Layout.fromSpecs(name, fields);
}

/** The message object type of a layout. */
export type MessageOfLayout<L> = L extends Layout<infer M> ? M : never;

function planLayout(name: string, fields: FieldSpecs): LayoutDescription {
  if (typeof name !== 'string' || name.length === 0) {
    throw new LayoutError('a message needs a non-empty name');
  }
  if (fields === null || typeof fields !== 'object') {
    throw new LayoutError(`message '${name}': fields must be an object of { name: type }`);
  }
  const entries = Object.entries(fields).map(([fieldName, spec], order) => {
    const { type, bytes } = normalizeField(name, fieldName, spec);
    return { name: fieldName, type, bytes, order, ...fieldFootprint(type, bytes) };
  });
  if (entries.length === 0) throw new LayoutError(`message '${name}' has no fields`);
  // A message's fields become a lake table's columns, where case does not tell names apart.
  const folded = new Map<string, string>();
  for (const { name: field } of entries) {
    const other = folded.get(field.toLowerCase());
    if (other !== undefined) {
      throw new LayoutError(
        `message '${name}': fields '${other}' and '${field}' differ in case only (in the lake's SQL tables they would be one column)`,
      );
    }
    folded.set(field.toLowerCase(), field);
  }
  // Largest alignment first keeps padding rare; declaration order breaks ties so the plan is
  // deterministic. A string's size can be odd, so each offset is still rounded up to its
  // field's alignment.
  entries.sort((a, b) => b.align - a.align || a.order - b.order);
  let offset = 0;
  const planned: FieldDescription[] = entries.map((e) => {
    offset = roundUp(offset, e.align);
    const field: FieldDescription =
      e.bytes === undefined
        ? { name: e.name, type: e.type, offset }
        : { name: e.name, type: e.type, offset, bytes: e.bytes };
    offset += e.size;
    return field;
  });
  const size = roundUp(offset, 8);
  if (size > MAX_MESSAGE_BYTES)
    throw new LayoutError(
      `message '${name}' takes ${size} bytes, over the ${MAX_MESSAGE_BYTES} a message may take`,
    );
  return { name, size, fields: planned };
}

/**
 * The largest message, in bytes: far past any slot a queue would want, and a bound on what a
 * description read back from the lake can make this process allocate.
 */
export const MAX_MESSAGE_BYTES = 2 ** 24;

function validateDescription(d: LayoutDescription): LayoutDescription {
  if (d === null || typeof d !== 'object' || !Array.isArray(d.fields)) {
    throw new LayoutError('a layout description needs { name, size, fields: [...] }');
  }
  const name = String(d.name);
  if (!Number.isInteger(d.size) || d.size < 0 || d.size % 8 !== 0 || d.size > MAX_MESSAGE_BYTES) {
    throw new LayoutError(
      `layout '${name}': size must be a multiple of 8 from 0 to ${MAX_MESSAGE_BYTES}, got ${d.size}`,
    );
  }
  const fields: FieldDescription[] = [];
  const seen = new Set<string>();
  const used = new Uint8Array(d.size);
  for (const f of d.fields) {
    if (f === null || typeof f !== 'object') {
      throw new LayoutError(
        `layout '${name}': a field must be { name, type, offset }, got ${describeValue(f)}`,
      );
    }
    // Not String(f.name): ['a'] would pass as 'a', and the duplicate check below miss it.
    if (typeof f.name !== 'string') {
      throw new LayoutError(
        `layout '${name}': a field's name must be a string, got ${describeValue(f.name)}`,
      );
    }
    const { type, bytes } = normalizeField(name, f.name, f.bytes === undefined ? f.type : f);
    const { size, align } = fieldFootprint(type as FieldTypeName, bytes);
    if (seen.has(f.name)) throw new LayoutError(`layout '${name}': field '${f.name}' appears twice`);
    seen.add(f.name);
    if (!Number.isInteger(f.offset) || f.offset < 0 || f.offset % align !== 0 || f.offset + size > d.size) {
      throw new LayoutError(`layout '${name}': field '${f.name}' has a bad offset ${f.offset}`);
    }
    for (let i = f.offset; i < f.offset + size; i++) {
      if (used[i]) throw new LayoutError(`layout '${name}': field '${f.name}' overlaps another field`);
      used[i] = 1;
    }
    fields.push(
      bytes === undefined
        ? { name: f.name, type, offset: f.offset }
        : { name: f.name, type, offset: f.offset, bytes },
    );
  }
  if (fields.length === 0) throw new LayoutError(`layout '${name}' has no fields`);
  return { name, size: d.size, fields };
}

function blankFactory<M>(name: string, fields: readonly FieldDescription[]): () => M {
  const body = fields
    .map((f) => {
      const key = `this[${JSON.stringify(f.name)}]`;
      switch (f.type) {
        case 'i64':
        case 'u64':
          return `${key} = 0n;`;
        case 'bool':
          return `${key} = false;`;
        case 'string':
          return `${key} = '';`;
        case 'bytes':
          return `${key} = new Uint8Array(${f.bytes});`;
        default:
          // 0.5 then 0: the field starts as a double, so V8 stores it unboxed from the start
          // instead of as a small integer that a decoded double would have to widen.
          return `${key} = ${f.type === 'f64' || f.type === 'f32' ? '0.5' : '0'}; ${key} = 0;`;
      }
    })
    .join(' ');
  // A class per layout: its instances get a hidden class of their own, instead of sharing one
  // with every object literal of the same shape in the program, whose field representations
  // other code may have widened (a decoded f64 stored into a widened field allocates).
  const MessageClass = new Function(
    `return class ${safeClassName(name)} { constructor() { ${body} } };`,
  )() as new () => M;
  return () => new MessageClass();
}

/**
 * The layout's name as a class name (what a heap snapshot shows): its other characters as `_`,
 * and `_` before a name no class can take (a digit first, a reserved word: `class`, `eval`…).
 */
function safeClassName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_$]/g, '_');
  if (!/^[A-Za-z_$]/.test(cleaned)) return `_${cleaned}`;
  try {
    new Function(`'use strict'; return class ${cleaned} {};`);
    return cleaned;
  } catch {
    return `_${cleaned}`;
  }
}

function fingerprintOf(d: LayoutDescription): number {
  // FNV-1a over the canonical description: cheap, stable across threads and processes.
  const text = JSON.stringify([
    d.name,
    d.size,
    d.fields.map((f) => [f.name, f.type, f.offset, f.bytes ?? 0]),
  ]);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
