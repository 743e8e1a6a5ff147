import { randomUUID } from 'node:crypto';
import {
  type Block,
  compressPart,
  encodeBlock,
  formatRfc3339Ns,
  type ProcessInfo,
  type StreamInfo,
} from '../../src/telemetry/wire/index.js';

/** Bytes per event: a Tick-like message (8-byte symbol, u32 size, f64 price, i64 timestamp). */
export const EVENT_BYTES = 32;

/**
 * Events as a persister would copy them out of queue slots: a few symbols, prices that wander,
 * sizes and timestamps that grow. Deterministic (xorshift), so runs compare.
 */
export function events(count: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(count * EVENT_BYTES);
  const view = new DataView(bytes.buffer);
  let x = seed | 1;
  let price = 100;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const at = i * EVENT_BYTES;
    view.setUint16(at, 3, true);
    bytes.set([65 + (x & 3), 66, 67], at + 2);
    view.setUint32(at + 12, (x >>> 8) & 0xffff, true);
    price += ((x & 0xff) - 127.5) / 1000;
    view.setFloat64(at + 16, price, true);
    view.setBigInt64(at + 24, 1_700_000_000_000_000_000n + BigInt(i) * 1000n, true);
  }
  return bytes;
}

/** A process and one `messages` stream for the bench. */
export function benchProcess(): { process: ProcessInfo; stream: StreamInfo } {
  const process: ProcessInfo = {
    processId: randomUUID(),
    exe: 'bench/ingest',
    host: 'bench',
    username: 'bench',
    startTime: formatRfc3339Ns(BigInt(Date.now()) * 1_000_000n),
    startTicks: 0,
    clock: { name: 'dorsal-monotonic-ns', ticksPerSecond: 1e9 },
    properties: {},
  };
  const stream: StreamInfo = {
    streamId: randomUUID(),
    processId: process.processId,
    tags: ['messages'],
    dependenciesLayouts: [],
    objectsLayouts: [
      {
        name: 'Tick',
        size: EVENT_BYTES,
        fields: [
          { name: 'symbol', type: 'string', offset: 0, bytes: 8 },
          { name: 'size', type: 'u32', offset: 12 },
          { name: 'price', type: 'f64', offset: 16 },
          { name: 'ts', type: 'i64', offset: 24 },
        ],
      },
    ],
    properties: {},
  };
  return { process, stream };
}

/** A block template of `count` events; give each copy a fresh `blockId` before ingesting it. */
export function blockTemplate(stream: StreamInfo, count: number): Block {
  const begin = BigInt(Date.now()) * 1_000_000n;
  return {
    blockId: randomUUID(),
    streamId: stream.streamId,
    processId: stream.processId,
    beginTime: formatRfc3339Ns(begin),
    beginTicks: 0,
    endTime: formatRfc3339Ns(begin + 1_000_000n),
    endTicks: 1_000_000,
    objectCount: count,
    payload: {
      dependencies: compressPart(new TextEncoder().encode('{"queue":"ticks"}')),
      objects: compressPart(events(count, count)),
    },
  };
}

/**
 * The CBOR of a block, with the place of its block id, so that a sender can stamp a fresh id into
 * a copy without encoding the payload again.
 */
export function encodedTemplate(block: Block): { bytes: Uint8Array; idAt: number } {
  const bytes = encodeBlock(block);
  const id = Buffer.from(block.blockId);
  const idAt = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).indexOf(id);
  if (idAt < 0) throw new Error('block id not found in its encoding');
  return { bytes, idAt };
}

/** Writes a fresh UUID into `bytes` at `idAt` (same length: 36 ASCII characters). */
export function stampId(bytes: Uint8Array, idAt: number): void {
  bytes.set(Buffer.from(randomUUID()), idAt);
}
