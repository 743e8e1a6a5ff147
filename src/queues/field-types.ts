import { LayoutError } from '../errors.js';

/** Scalar field types, each with its byte size. */
export const SCALAR_SIZES = {
  f64: 8,
  f32: 4,
  i8: 1,
  u8: 1,
  i16: 2,
  u16: 2,
  i32: 4,
  u32: 4,
  i64: 8,
  u64: 8,
  bool: 1,
} as const;

export type ScalarType = keyof typeof SCALAR_SIZES;

/** A fixed-size string (UTF-8, at most `bytes` bytes) or a fixed-size byte array. */
export interface SizedFieldSpec {
  readonly type: 'string' | 'bytes';
  readonly bytes: number;
}

/** How a field is declared in `defineMessage`: `'f64'`, or `{ type: 'string', bytes: 8 }`. */
export type FieldSpec = ScalarType | { readonly type: ScalarType } | SizedFieldSpec;

export type FieldSpecs = Readonly<Record<string, FieldSpec>>;

/** The JavaScript value type a field spec maps to. */
export type FieldValue<S extends FieldSpec> = S extends 'i64' | 'u64' | { readonly type: 'i64' | 'u64' }
  ? bigint
  : S extends 'bool' | { readonly type: 'bool' }
    ? boolean
    : S extends { readonly type: 'string' }
      ? string
      : S extends { readonly type: 'bytes' }
        ? Uint8Array
        : number;

/** The message object type of a set of field specs. */
export type MessageOf<F extends FieldSpecs> = { -readonly [K in keyof F]: FieldValue<F[K]> };

/** A field type name as stored in layout descriptions. */
export type FieldTypeName = ScalarType | 'string' | 'bytes';

/**
 * A field as plain data: enough to decode raw slot bytes without the code that declared it
 * (the persister ships these descriptions with every stream).
 */
export interface FieldDescription {
  readonly name: string;
  readonly type: FieldTypeName;
  /** Byte offset of the field inside the message. */
  readonly offset: number;
  /** For `string` and `bytes`: the capacity in bytes (a `string` is preceded by a u16 length). */
  readonly bytes?: number;
}

/** A message layout as plain data (JSON- and CBOR-safe). */
export interface LayoutDescription {
  readonly name: string;
  /** Total byte size of one encoded message. */
  readonly size: number;
  readonly fields: readonly FieldDescription[];
}

/** Largest `bytes` of a string or bytes field; a string's length is stored in a u16. */
export const MAX_SIZED_FIELD_BYTES = 65_535;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Normalizes and checks one field declaration; throws a `LayoutError` naming the field. */
export function normalizeField(
  layoutName: string,
  name: string,
  spec: unknown,
): { type: FieldTypeName; bytes?: number } {
  const where = `field '${name}' of message '${layoutName}'`;
  if (!IDENTIFIER.test(name)) {
    throw new LayoutError(`${where}: the name must be a JavaScript identifier`);
  }
  // `o.__proto__ = v` sets an object's prototype, not a field: such a field was never read back.
  if (name === '__proto__') throw new LayoutError(`${where}: '__proto__' cannot name a field`);
  const type = typeof spec === 'string' ? spec : (spec as { type?: unknown } | null)?.type;
  if (typeof type !== 'string') {
    throw new LayoutError(`${where}: expected a type name or { type, bytes }, got ${describe(spec)}`);
  }
  if (Object.hasOwn(SCALAR_SIZES, type)) return { type: type as ScalarType };
  if (type === 'string' || type === 'bytes') {
    const bytes = (spec as { bytes?: unknown }).bytes;
    if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < 1 || bytes > MAX_SIZED_FIELD_BYTES) {
      throw new LayoutError(
        `${where}: a ${type} field needs 'bytes', an integer from 1 to ${MAX_SIZED_FIELD_BYTES}, got ${describe(bytes)}`,
      );
    }
    return { type, bytes };
  }
  throw new LayoutError(
    `${where}: unknown field type '${type}' (known: ${[...Object.keys(SCALAR_SIZES), 'string', 'bytes'].join(', ')})`,
  );
}

/** Byte size and alignment of a normalized field. */
export function fieldFootprint(type: FieldTypeName, bytes = 0): { size: number; align: number } {
  if (type === 'string') return { size: 2 + bytes, align: 2 };
  if (type === 'bytes') return { size: bytes, align: 1 };
  const size = SCALAR_SIZES[type];
  return { size, align: size };
}

/** A short, safe rendering of a value for error messages. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}
