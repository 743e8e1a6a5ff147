/**
 * The telemetry wire format: records, their validation, CBOR + lz4 encoding. Imports no database,
 * HTTP or file-system code; every other part of the telemetry imports it from here.
 */
export {
  decodeBlock,
  decodeDropReport,
  decodeProcessInfo,
  decodeStreamInfo,
  encodeBlock,
  encodeDropReport,
  encodeProcessInfo,
  encodeStreamInfo,
} from './codec.js';
export { isUuid } from './fields.js';
export { validateLayout } from './layouts.js';
export { DEFAULT_RECORD_BODY_LIMIT, MAX_LAYOUT_FIELDS, MAX_METADATA_TEXT_BYTES } from './limits.js';
export {
  checkPayloadSizes,
  compressPart,
  compressPartAsync,
  DEFAULT_MAX_BLOCK_BYTES,
  DEFAULT_MAX_COMPRESSION_RATIO,
  decodePayload,
  decodePayloadAsync,
  decodePayloadBlob,
  decompressPart,
  encodePayloadBlob,
  MAX_STORED_PART_BYTES,
  type PayloadLimits,
  RATIO_FREE_BYTES,
  verifyPayload,
} from './payload.js';
export { validateBlock, validateDropReport, validateProcessInfo, validateStreamInfo } from './records.js';
export {
  formatRfc3339Ns,
  MAX_EPOCH_NS,
  MIN_EPOCH_NS,
  normalizeRfc3339,
  nowRfc3339Ns,
  rfc3339ToEpochNs,
} from './time.js';
export {
  type Block,
  type BlockHeader,
  type BlockPayload,
  type ClockDescription,
  type DecodedPayload,
  type DropReport,
  type LayoutDescription,
  type LayoutFieldDescription,
  type LayoutFieldType,
  type ProcessInfo,
  type StreamInfo,
  type StreamTag,
  streamName,
  WIRE_FORMAT_VERSION,
} from './types.js';
