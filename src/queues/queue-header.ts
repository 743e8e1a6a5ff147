/**
 * Where everything lives in a queue's SharedArrayBuffer. Indices are Int32 word indices unless
 * the name ends in `_F64` (a Float64 index). Each region that one thread writes often sits on
 * its own 64-byte cache line, so that writers do not invalidate each other's lines.
 *
 * ```
 * byte 0    ┌ line 0: written at create, but CLOSED, PRODUCER_ATTACHED and POISONED ─────────┐
 *           │ MAGIC FORMAT KIND CAPACITY STRIDE MESSAGE_SIZE FINGERPRINT MAX_CONSUMERS        │
 *           │ CLOSED PRODUCER_ATTACHED ENVELOPE_SIZE ENVELOPE_FINGERPRINT POISON_TIMEOUT_MS   │
 *           │ POISONED (slots producers took over from a dead writer, or gave up)             │
 * byte 64   ├ line 1: the single producer's ───────────────────────────────────────────────────┤
 *           │ PUBLISHED_F64 at byte 72 (messages published, exact; its low 32 bits: the head)    │
 * byte 128  ├ line 2: the producers' of a multi-producer queue ────────────────────────────────┤
 *           │ CLAIM (next sequence to claim, mod 2^32, Atomics.add) · CLAIMED_F64 at byte 136   │
 *           │ (an exact sequence recently claimed, to widen CLAIM to 53 bits)                     │
 * byte 192  ├ line 3: the wake-up signal: WAKE (futex word), SLEEPERS (parked consumers)        ─┤
 * byte 256  ├ consumer table: MAX_CONSUMERS entries of 64 bytes ───────────────────────────────┤
 *           │ +0 STATE (0 free, 1 taken) +4 COMMITTED (low 32 bits of POSITION, SC-stored on commit)│
 *           │ +8 POSITION_F64 (exact next sequence) +16 RECEIVED_F64 +24 LOST_F64 (poisoned      │
 *           │ included) +32 POISONED_F64 +40 BEGAN_F64 (exact sequence it began at)              │
 *           ├ slots: CAPACITY × STRIDE bytes ───────────────────────────────────────────────────┤
 *           │ +0 VERSION (odd while written) +4 EPOCH (exact sequence ÷ 2^32, + 1; 0: never     │
 *           │ written) +8 envelope (optional) then message bytes … (STRIDE: a multiple of 64)    │
 *           └────────────────────────────────────────────────────────────────────────────────────┘
 * ```
 */
export const QueueHeader = {
  MAGIC: 0,
  FORMAT: 1,
  KIND: 2,
  CAPACITY: 3,
  STRIDE: 4,
  MESSAGE_SIZE: 5,
  FINGERPRINT: 6,
  MAX_CONSUMERS: 7,
  CLOSED: 8,
  PRODUCER_ATTACHED: 9,
  ENVELOPE_SIZE: 10,
  ENVELOPE_FINGERPRINT: 11,
  POISON_TIMEOUT_MS: 12,
  POISONED: 13,
  PUBLISHED_F64: 9,
  CLAIM: 32,
  CLAIMED_F64: 17,
  WAKE: 48,
  SLEEPERS: 49,
  /** Byte offset of the consumer table. */
  CONSUMERS_BYTE: 256,
  CONSUMER_ENTRY_BYTES: 64,
  /** Offsets inside a consumer entry, in bytes. */
  CONSUMER_STATE_BYTE: 0,
  CONSUMER_COMMITTED_BYTE: 4,
  CONSUMER_POSITION_BYTE: 8,
  CONSUMER_RECEIVED_BYTE: 16,
  CONSUMER_LOST_BYTE: 24,
  CONSUMER_POISONED_BYTE: 32,
  CONSUMER_BEGAN_BYTE: 40,
  /** Offset of a slot's epoch word (after the version word), in bytes. */
  SLOT_EPOCH_BYTE: 4,
  /** Offset of the envelope (or of the message without one) inside a slot: after version and epoch. */
  SLOT_PAYLOAD_BYTE: 8,
} as const;

export const QUEUE_MAGIC = 0x64727371; // 'drsq'
export const QUEUE_FORMAT = 2;
export const DEFAULT_POISON_TIMEOUT_MS = 1000;
export const DEFAULT_MAX_CONSUMERS = 64;

export const QueueKind = { SINGLE_PRODUCER: 1, MULTI_PRODUCER: 2 } as const;
export type QueueKindValue = (typeof QueueKind)[keyof typeof QueueKind];

export const CACHE_LINE = 64;

/** Geometry of a queue buffer, derived from its capacity, message size and consumer slots. */
export interface QueueGeometry {
  readonly capacity: number;
  readonly stride: number;
  readonly maxConsumers: number;
  readonly slotsByte: number;
  readonly byteLength: number;
}

/**
 * Bytes per slot: the version and epoch words (8 bytes) then `payloadSize` bytes, rounded up to
 * whole cache lines so that neighbouring slots never share a line (queues and vectors alike).
 */
export function slotStride(payloadSize: number): number {
  return Math.ceil((QueueHeader.SLOT_PAYLOAD_BYTE + payloadSize) / CACHE_LINE) * CACHE_LINE;
}

/** `payloadSize`: the envelope's size plus the message's size. */
export function queueGeometry(capacity: number, payloadSize: number, maxConsumers: number): QueueGeometry {
  const stride = slotStride(payloadSize);
  const slotsByte = QueueHeader.CONSUMERS_BYTE + maxConsumers * QueueHeader.CONSUMER_ENTRY_BYTES;
  return { capacity, stride, maxConsumers, slotsByte, byteLength: slotsByte + capacity * stride };
}
