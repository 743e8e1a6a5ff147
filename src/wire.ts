/**
 * `dorsal/wire`: the telemetry wire format. Processes, streams, blocks and drop reports as plain
 * records, their validation, and their encoding (CBOR, each block's payload parts lz4-compressed).
 * It loads `cbor-x` and `lz4-napi`, and no database, HTTP or file-system code. Every export is
 * named here explicitly.
 *
 * @example
 * import { type Block, compressPart, decodeBlock, encodeBlock } from 'dorsal/wire';
 * const objects = compressPart(new Uint8Array(64 * 1024));   // a block's raw slot bytes
 */
export { WireFormatError, WireVersionError } from './telemetry/errors.js';
export {
  type Block,
  type BlockHeader,
  type BlockPayload,
  type ClockDescription,
  compressPart,
  DEFAULT_MAX_BLOCK_BYTES,
  DEFAULT_MAX_COMPRESSION_RATIO,
  type DecodedPayload,
  type DropReport,
  decodeBlock,
  decodeDropReport,
  decodePayload,
  decodeProcessInfo,
  decodeStreamInfo,
  decompressPart,
  encodeBlock,
  encodeDropReport,
  encodeProcessInfo,
  encodeStreamInfo,
  formatRfc3339Ns,
  normalizeRfc3339,
  nowRfc3339Ns,
  type PayloadLimits,
  type ProcessInfo,
  rfc3339ToEpochNs,
  type StreamInfo,
  type StreamTag,
  validateBlock,
  validateDropReport,
  validateLayout,
  validateProcessInfo,
  validateStreamInfo,
  WIRE_FORMAT_VERSION,
} from './telemetry/wire/index.js';
