import { Decoder, Encoder } from 'cbor-x';
import { WireFormatError, WireVersionError } from '../errors.js';
import { expectObject, show } from './fields.js';
import { RECORD_LIMITS } from './limits.js';
import { validateBlock, validateDropReport, validateProcessInfo, validateStreamInfo } from './records.js';
import { checkStrictCbor } from './strict-cbor.js';
import {
  type Block,
  type DropReport,
  type ProcessInfo,
  type StreamInfo,
  WIRE_FORMAT_VERSION,
} from './types.js';

/**
 * CBOR encoding of the records. Every record travels in an envelope `{ formatVersion, kind, …fields }`:
 * the version is checked first, so a reader meeting a newer format says so instead of reporting
 * a confusing missing field.
 */

/** What an encoded record is. */
export type RecordKind = 'process' | 'stream' | 'block' | 'payload' | 'drops';

// Plain CBOR: no cbor-x record extension and no typed-array tags, so any CBOR library can read it.
const encoder = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Encodes a record of the given kind in the current format version. */
export function encodeRecord(kind: RecordKind, record: object): Uint8Array {
  return encoder.encode({ formatVersion: WIRE_FORMAT_VERSION, kind, ...record });
}

/**
 * Decodes CBOR bytes and checks the envelope: one CBOR item of plain types within the kind's
 * limits (checked before decoding, see strict-cbor.ts), a map, the known version, the expected
 * kind. Returns the map, whose fields are still to be validated.
 */
export function decodeRecord(bytes: Uint8Array, kind: RecordKind): Readonly<Record<string, unknown>> {
  checkStrictCbor(bytes, RECORD_LIMITS[kind], kind);
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new WireFormatError(`${kind}: malformed CBOR (${detail})`, { cause: error });
  }
  const obj = expectObject(value, kind);
  const version = obj.formatVersion;
  if (version === undefined) throw new WireFormatError(`${kind}: missing field "formatVersion"`);
  if (version !== WIRE_FORMAT_VERSION) throw new WireVersionError(version, WIRE_FORMAT_VERSION);
  if (obj.kind !== kind) throw new WireFormatError(`expected a ${kind} record, got kind ${show(obj.kind)}`);
  return obj;
}

/** Encodes a process record. */
export function encodeProcessInfo(process: ProcessInfo): Uint8Array {
  return encodeRecord('process', process);
}

/** Decodes and validates a process record. */
export function decodeProcessInfo(bytes: Uint8Array): ProcessInfo {
  return validateProcessInfo(decodeRecord(bytes, 'process'));
}

/** Encodes a stream record. */
export function encodeStreamInfo(stream: StreamInfo): Uint8Array {
  return encodeRecord('stream', stream);
}

/** Decodes and validates a stream record. */
export function decodeStreamInfo(bytes: Uint8Array): StreamInfo {
  return validateStreamInfo(decodeRecord(bytes, 'stream'));
}

/**
 * Encodes a block record. Its payload parts must already be lz4-compressed (`compressPart`).
 *
 * @example
 * const bytes = encodeBlock({ ...header, payload: { dependencies: compressPart(deps), objects: compressPart(objs) } });
 */
export function encodeBlock(block: Block): Uint8Array {
  return encodeRecord('block', block);
}

/**
 * Decodes and validates a block record. The payload parts stay compressed; `verifyPayload`
 * checks that they decompress.
 */
export function decodeBlock(bytes: Uint8Array): Block {
  return validateBlock(decodeRecord(bytes, 'block'));
}

/** Encodes a drop report. */
export function encodeDropReport(report: DropReport): Uint8Array {
  return encodeRecord('drops', report);
}

/** Decodes and validates a drop report. */
export function decodeDropReport(bytes: Uint8Array): DropReport {
  return validateDropReport(decodeRecord(bytes, 'drops'));
}
