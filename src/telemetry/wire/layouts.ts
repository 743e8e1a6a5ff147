import { WireFormatError } from '../errors.js';
import { expectObject, readArray, readInteger, readString, show } from './fields.js';
import type { LayoutDescription, LayoutFieldDescription, LayoutFieldType } from './types.js';

/** Byte size of each scalar field type. */
const SCALAR_BYTES: Readonly<Record<string, number>> = {
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
};

/** Largest message a layout may describe, and largest `bytes` of a sized field (a u16 length). */
const MAX_MESSAGE_BYTES = 1 << 20;
const MAX_SIZED_BYTES = 65_535;

/** Bytes a field occupies: a `string` is a u16 length followed by its capacity. */
function footprint(type: LayoutFieldType, bytes: number): number {
  if (type === 'string') return 2 + bytes;
  if (type === 'bytes') return bytes;
  return SCALAR_BYTES[type] ?? 0;
}

function validateField(value: unknown, what: string, size: number): LayoutFieldDescription {
  const obj = expectObject(value, what);
  const name = readString(obj, 'name', what, 256);
  const type = readString(obj, 'type', what, 16);
  if (type !== 'string' && type !== 'bytes' && SCALAR_BYTES[type] === undefined) {
    throw new WireFormatError(
      `${what}: field "type" must be one of ${Object.keys(SCALAR_BYTES).join(' ')} string bytes, got ${show(type)}`,
    );
  }
  const fieldType = type as LayoutFieldType;
  const offset = readInteger(obj, 'offset', what, 0, size);
  const sized = fieldType === 'string' || fieldType === 'bytes';
  const bytes = sized ? readInteger(obj, 'bytes', what, 1, MAX_SIZED_BYTES) : 0;
  if (offset + footprint(fieldType, bytes) > size) {
    throw new WireFormatError(
      `${what}: field ${show(name)} (${type} at offset ${offset}) overruns the message size ${size}`,
    );
  }
  return sized ? { name, type: fieldType, offset, bytes } : { name, type: fieldType, offset };
}

/**
 * Validates one layout description: known field types, unique names, fields inside the message and
 * not overlapping. Offsets are checked, not trusted: a reader will decode raw bytes by them.
 */
export function validateLayout(value: unknown, what: string): LayoutDescription {
  const obj = expectObject(value, what);
  const name = readString(obj, 'name', what, 256);
  const size = readInteger(obj, 'size', what, 1, MAX_MESSAGE_BYTES);
  const fields = readArray(obj, 'fields', what, 4096).map((f, i) =>
    validateField(f, `${what}.fields[${i}]`, size),
  );
  const names = new Set<string>();
  const byOffset = [...fields].sort((a, b) => a.offset - b.offset);
  let end = 0;
  let previous = '';
  for (const field of byOffset) {
    if (names.has(field.name)) throw new WireFormatError(`${what}: duplicate field name ${show(field.name)}`);
    names.add(field.name);
    if (field.offset < end) {
      throw new WireFormatError(`${what}: field ${show(field.name)} overlaps field ${show(previous)}`);
    }
    end = field.offset + footprint(field.type, field.bytes ?? 0);
    previous = field.name;
  }
  return { name, size, fields };
}

/** Validates an array of layout descriptions. */
export function validateLayouts(values: readonly unknown[], what: string): LayoutDescription[] {
  return values.map((value, i) => validateLayout(value, `${what}[${i}]`));
}
