import { fieldFootprint, SCALAR_SIZES } from '../../queues/field-types.js';
import { WireFormatError } from '../errors.js';
import { expectObject, readArray, readInteger, readString, show } from './fields.js';
import { MAX_LAYOUT_FIELDS } from './limits.js';
import type { LayoutDescription, LayoutFieldDescription, LayoutFieldType } from './types.js';

/** Largest message a layout may describe, and largest `bytes` of a sized field (a u16 length). */
const MAX_MESSAGE_BYTES = 1 << 20;
const MAX_SIZED_BYTES = 65_535;

/** Bytes a field occupies, as the queues lay it out. */
function footprint(type: LayoutFieldType, bytes: number): number {
  return fieldFootprint(type, bytes).size;
}

function validateField(value: unknown, what: string, size: number): LayoutFieldDescription {
  const obj = expectObject(value, what);
  const name = readString(obj, 'name', what, 256);
  const type = readString(obj, 'type', what, 16);
  if (type !== 'string' && type !== 'bytes' && !Object.hasOwn(SCALAR_SIZES, type)) {
    throw new WireFormatError(
      `${what}: field "type" must be one of ${Object.keys(SCALAR_SIZES).join(' ')} string bytes, got ${show(type)}`,
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
  const fields = readArray(obj, 'fields', what, MAX_LAYOUT_FIELDS).map((f, i) =>
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
