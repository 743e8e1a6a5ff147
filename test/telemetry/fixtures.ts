import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LayoutDescription } from '../../src/index.js';
import {
  type Block,
  compressPart,
  formatRfc3339Ns,
  type ProcessInfo,
  type StreamInfo,
} from '../../src/wire.js';

/** A message layout as the queues describe it: 32 bytes. */
export const TICK_LAYOUT: LayoutDescription = {
  name: 'Tick',
  size: 32,
  fields: [
    { name: 'symbol', type: 'string', offset: 0, bytes: 8 },
    { name: 'size', type: 'u32', offset: 12 },
    { name: 'price', type: 'f64', offset: 16 },
    { name: 'ts', type: 'i64', offset: 24 },
  ],
};

/** A fresh temporary directory and its cleanup. */
export function tempDir(prefix = 'dorsal-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A process record with fresh ids. */
export function makeProcess(overrides: Partial<ProcessInfo> = {}): ProcessInfo {
  return {
    processId: randomUUID(),
    exe: '/usr/bin/example',
    host: 'test-host',
    username: 'tester',
    startTime: formatRfc3339Ns(1_700_000_000_123_456_789n),
    startTicks: 1000,
    clock: { name: 'dorsal-monotonic-ns', ticksPerSecond: 1e9 },
    properties: { version: '1.2.3' },
    ...overrides,
  };
}

/** A stream record of a process. */
export function makeStream(processId: string, overrides: Partial<StreamInfo> = {}): StreamInfo {
  return {
    streamId: randomUUID(),
    processId,
    tags: ['messages'],
    dependenciesLayouts: [],
    objectsLayouts: [TICK_LAYOUT],
    properties: { queue: 'ticks' },
    ...overrides,
  };
}

/** Raw bytes of `count` 32-byte events, deterministic for a seed. */
export function eventBytes(count: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(count * 32);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < count; i++) {
    const at = i * 32;
    view.setUint16(at, 3, true);
    bytes.set([65, 66, 67], at + 2);
    view.setUint32(at + 12, (i * 7 + seed) % 1000, true);
    view.setFloat64(at + 16, 100 + ((i * seed) % 97) / 8, true);
    view.setBigInt64(at + 24, BigInt(i + seed * 1_000_000), true);
  }
  return bytes;
}

/** A block of `count` events of a stream, with its raw parts for comparison. */
export function makeBlock(
  stream: StreamInfo,
  count = 16,
  seed = 1,
): { block: Block; dependencies: Uint8Array; objects: Uint8Array } {
  const dependencies = new TextEncoder().encode(JSON.stringify({ queue: 'ticks', seed }));
  const objects = eventBytes(count, seed);
  const begin = 1_700_000_001_000_000_000n + BigInt(seed) * 1_000_000n;
  const block: Block = {
    blockId: randomUUID(),
    streamId: stream.streamId,
    processId: stream.processId,
    beginTime: formatRfc3339Ns(begin),
    beginTicks: seed * 1000,
    endTime: formatRfc3339Ns(begin + 999_999n),
    endTicks: seed * 1000 + 999,
    objectCount: count,
    payload: { dependencies: compressPart(dependencies), objects: compressPart(objects) },
  };
  return { block, dependencies, objects };
}
