import { hasLoneSurrogate } from '../../queues/codec.js';
import { WireFormatError } from '../errors.js';
import { normalizeRfc3339 } from './time.js';

/**
 * Typed readers over decoded CBOR. Each names the record and the field in its error, so a client
 * learns exactly what was wrong (`block: field "beginTime" must be an RFC 3339 time, got "noon"`).
 */

/** A decoded CBOR map with string keys. */
export type WireObject = Readonly<Record<string, unknown>>;

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Entries of a string map (properties). */
const MAX_MAP_ENTRIES = 1024;

/** A client's text cut short for an error message. */
const clip = (text: string): string => (text.length > 60 ? `${text.slice(0, 60)}…` : text);

/** A short, safe rendering of a value for error messages. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(clip(value));
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || value === undefined) return String(value);
  if (value instanceof Uint8Array) return `bytes(${value.length})`;
  if (Array.isArray(value)) return `array(${value.length})`;
  if (value instanceof Map) return 'a map with non-string keys';
  if (typeof value === 'object') return 'a map';
  return String(value);
}

/** True for a plain object (what cbor-x makes of a map whose keys are all strings). */
export function isWireObject(value: unknown): value is WireObject {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Requires a CBOR map with string keys. */
export function expectObject(value: unknown, what: string): WireObject {
  if (!isWireObject(value))
    throw new WireFormatError(`${what} must be a CBOR map with string keys, got ${show(value)}`);
  return value;
}

function present(obj: WireObject, key: string, what: string): unknown {
  const value = Object.hasOwn(obj, key) ? obj[key] : undefined;
  if (value === undefined) throw new WireFormatError(`${what}: missing field "${key}"`);
  return value;
}

function fail(what: string, key: string, expected: string, value: unknown): never {
  throw new WireFormatError(`${what}: field "${key}" must be ${expected}, got ${show(value)}`);
}

/**
 * A string field (`maxLength` in UTF-16 code units), text a database column holds: no U+0000
 * (PostgreSQL's text refuses it: the record was retried for ever as a lake down) and no lone
 * surrogate (stored as U+FFFD, the same record sent again clashed with itself).
 */
export function readString(obj: WireObject, key: string, what: string, maxLength = 65_536): string {
  const value = present(obj, key, what);
  if (typeof value !== 'string') fail(what, key, 'a string', value);
  if (value.length > maxLength) fail(what, key, `a string of at most ${maxLength} characters`, value);
  if (value.includes('\u0000')) fail(what, key, 'text without U+0000', value);
  if (hasLoneSurrogate(value)) fail(what, key, 'well-formed Unicode (no lone surrogate)', value);
  return value;
}

/** Whether a value is a UUID, in the spelling a lake takes (either case). */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/** A UUID field, returned in lowercase so that one id has one spelling in the lake. */
export function readUuid(obj: WireObject, key: string, what: string): string {
  const value = present(obj, key, what);
  if (!isUuid(value)) fail(what, key, 'a UUID', value);
  return value.toLowerCase();
}

/** An optional UUID field. */
export function readOptionalUuid(obj: WireObject, key: string, what: string): string | undefined {
  const value = Object.hasOwn(obj, key) ? obj[key] : undefined;
  return value === undefined || value === null ? undefined : readUuid(obj, key, what);
}

/** An RFC 3339 time field, normalized to UTC with nine fraction digits. */
export function readTime(obj: WireObject, key: string, what: string): string {
  const value = present(obj, key, what);
  const normalized = typeof value === 'string' ? normalizeRfc3339(value) : undefined;
  if (normalized === undefined)
    fail(
      what,
      key,
      'an RFC 3339 time such as 2025-01-02T03:04:05.123456789Z, in the years 1678 to 2261',
      value,
    );
  return normalized;
}

/** A safe integer field (CBOR may carry it as a bigint) within `[min, max]`. */
export function readInteger(
  obj: WireObject,
  key: string,
  what: string,
  min = Number.MIN_SAFE_INTEGER,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = present(obj, key, what);
  const value = typeof raw === 'bigint' && raw >= BigInt(min) && raw <= BigInt(max) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(what, key, `an integer in [${min}, ${max}]`, raw);
  }
  return value;
}

/** A positive finite number field. */
export function readPositiveNumber(obj: WireObject, key: string, what: string): number {
  const value = present(obj, key, what);
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    fail(what, key, 'a positive number', value);
  return value;
}

/** A byte string field. */
export function readBytes(obj: WireObject, key: string, what: string): Uint8Array {
  const value = present(obj, key, what);
  if (!(value instanceof Uint8Array)) fail(what, key, 'a byte string', value);
  return value;
}

/** An array field. */
export function readArray(obj: WireObject, key: string, what: string, maxItems = 65_536): readonly unknown[] {
  const value = present(obj, key, what);
  if (!Array.isArray(value)) fail(what, key, 'an array', value);
  if (value.length > maxItems) fail(what, key, `an array of at most ${maxItems} items`, value);
  return value;
}

/** An array of strings. */
export function readStringArray(obj: WireObject, key: string, what: string): string[] {
  return readArray(obj, key, what, 1024).map((item, i) => {
    if (typeof item !== 'string' || item.length > 1024) fail(what, `${key}[${i}]`, 'a string', item);
    return item;
  });
}

/** A map of string to string (absent means empty). */
export function readStringMap(obj: WireObject, key: string, what: string): Record<string, string> {
  const raw = Object.hasOwn(obj, key) ? obj[key] : undefined;
  if (raw === undefined || raw === null) return {};
  if (!isWireObject(raw)) fail(what, key, 'a map of strings to strings', raw);
  const entries = Object.entries(raw);
  if (entries.length > MAX_MAP_ENTRIES) fail(what, key, `a map of at most ${MAX_MAP_ENTRIES} entries`, raw);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (typeof v !== 'string') fail(what, `${key}.${clip(k)}`, 'a string', v);
    out[k] = v;
  }
  return out;
}
