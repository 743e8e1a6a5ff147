import { WireFormatError } from '../errors.js';
import {
  expectObject,
  readArray,
  readBytes,
  readInteger,
  readOptionalUuid,
  readPositiveNumber,
  readString,
  readStringArray,
  readStringMap,
  readTime,
  readUuid,
  show,
  type WireObject,
} from './fields.js';
import { validateLayouts } from './layouts.js';
import { MAX_LAYOUTS, MAX_STREAM_FIELDS } from './limits.js';
import type { Block, BlockHeader, DropReport, ProcessInfo, StreamInfo } from './types.js';

/**
 * Validation of the three records, from decoded CBOR (or from objects handed over in-process):
 * both paths go through these functions, so the embedded lake accepts exactly what HTTP accepts.
 * Ids come back lowercase and times normalized to UTC with nine fraction digits.
 */

const MAX_OBJECT_COUNT = 2 ** 31 - 1;

/** Validates a process record. */
export function validateProcessInfo(value: unknown): ProcessInfo {
  const what = 'process';
  const obj = expectObject(value, what);
  const clock = expectObject(obj.clock, `${what}.clock`);
  const parentProcessId = readOptionalUuid(obj, 'parentProcessId', what);
  return {
    processId: readUuid(obj, 'processId', what),
    exe: readString(obj, 'exe', what),
    host: readString(obj, 'host', what),
    username: readString(obj, 'username', what),
    startTime: readTime(obj, 'startTime', what),
    startTicks: readInteger(obj, 'startTicks', what),
    clock: {
      name: readString(clock, 'name', `${what}.clock`, 256),
      ticksPerSecond: readPositiveNumber(clock, 'ticksPerSecond', `${what}.clock`),
    },
    ...(parentProcessId === undefined ? {} : { parentProcessId }),
    properties: readStringMap(obj, 'properties', what),
  };
}

/** Validates a stream record, including its layouts. */
export function validateStreamInfo(value: unknown): StreamInfo {
  const what = 'stream';
  const obj = expectObject(value, what);
  const dependencies = readArray(obj, 'dependenciesLayouts', what, MAX_LAYOUTS);
  const objects = readArray(obj, 'objectsLayouts', what, MAX_LAYOUTS);
  // Counted before any layout is validated: a record handed over in-process was not checked as CBOR.
  let fields = 0;
  for (const layout of [...dependencies, ...objects]) {
    const list = typeof layout === 'object' && layout !== null ? (layout as WireObject).fields : undefined;
    fields += Array.isArray(list) ? list.length : 0;
  }
  if (fields > MAX_STREAM_FIELDS) {
    throw new WireFormatError(
      `${what}: its layouts have ${fields} fields, over the limit of ${MAX_STREAM_FIELDS}`,
    );
  }
  return {
    streamId: readUuid(obj, 'streamId', what),
    processId: readUuid(obj, 'processId', what),
    tags: readStringArray(obj, 'tags', what),
    dependenciesLayouts: validateLayouts(dependencies, `${what}.dependenciesLayouts`),
    objectsLayouts: validateLayouts(objects, `${what}.objectsLayouts`),
    properties: readStringMap(obj, 'properties', what),
  };
}

function validateHeader(obj: WireObject, what: string): BlockHeader {
  const header: BlockHeader = {
    blockId: readUuid(obj, 'blockId', what),
    streamId: readUuid(obj, 'streamId', what),
    processId: readUuid(obj, 'processId', what),
    beginTime: readTime(obj, 'beginTime', what),
    beginTicks: readInteger(obj, 'beginTicks', what),
    endTime: readTime(obj, 'endTime', what),
    endTicks: readInteger(obj, 'endTicks', what),
    objectCount: readInteger(obj, 'objectCount', what, 0, MAX_OBJECT_COUNT),
  };
  // Normalized times compare as text.
  if (header.endTime < header.beginTime) {
    throw new WireFormatError(`${what}: endTime ${header.endTime} is before beginTime ${header.beginTime}`);
  }
  if (header.endTicks < header.beginTicks) {
    throw new WireFormatError(
      `${what}: endTicks ${header.endTicks} is before beginTicks ${header.beginTicks}`,
    );
  }
  return header;
}

/** Validates a block record: its header, and that its payload holds two byte strings. */
export function validateBlock(value: unknown): Block {
  const what = 'block';
  const obj = expectObject(value, what);
  const payload = expectObject(obj.payload, `${what}.payload`);
  return {
    ...validateHeader(obj, what),
    payload: {
      dependencies: readBytes(payload, 'dependencies', `${what}.payload`),
      objects: readBytes(payload, 'objects', `${what}.payload`),
    },
  };
}

/** Reasons a drop report may count: short names with a count each. */
const MAX_DROP_REASONS = 16;
const REASON = /^[A-Za-z][A-Za-z0-9]{0,31}$/;

/** Validates a drop report: its ids, time, and a map of reasons to non-negative counts. */
export function validateDropReport(value: unknown): DropReport {
  const what = 'drops';
  const obj = expectObject(value, what);
  const countsObj = expectObject(obj.counts, `${what}.counts`);
  const reasons = Object.keys(countsObj);
  if (reasons.length === 0 || reasons.length > MAX_DROP_REASONS) {
    throw new WireFormatError(`${what}: field "counts" must hold 1 to ${MAX_DROP_REASONS} reasons`);
  }
  const counts: Record<string, number> = {};
  for (const reason of reasons) {
    if (!REASON.test(reason)) throw new WireFormatError(`${what}.counts: invalid reason ${show(reason)}`);
    counts[reason] = readInteger(countsObj, reason, `${what}.counts`, 0);
  }
  return {
    reportId: readUuid(obj, 'reportId', what),
    processId: readUuid(obj, 'processId', what),
    time: readTime(obj, 'time', what),
    counts,
  };
}
