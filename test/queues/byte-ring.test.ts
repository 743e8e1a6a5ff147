import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ByteRing, ByteRingHeader } from '../../src/queues/byte-ring.js';
import { ringRecord } from '../fixtures/byte-ring-records.js';
import { compiledUrl } from '../helpers/compiled.js';
import { messageOfType, startWorker } from '../helpers/workers.js';

const peer = compiledUrl('../fixtures/byte-ring-peer.ts', import.meta.url);
const workers: Worker[] = [];

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

interface Verdict {
  type: 'done';
  done: number;
  bad: number;
  waits: number;
}

function startPeer(data: Record<string, unknown>): Promise<Verdict> {
  const worker = startWorker(peer, data);
  workers.push(worker);
  return messageOfType<Verdict>(worker, 'done');
}

/** Writes and reads records `from`…`to` through `ring` in one thread, `batch` at a time; returns how many were split by the end of the data. */
function roundTrip(ring: ByteRing, from: number, to: number, batch: number, maxLength: number): number {
  const into = new Uint8Array(ring.maxRecord);
  const offsets = new Int32Array(ring.buffer, 0, 2);
  let split = 0;
  let next = from;
  while (next < to) {
    const first = next;
    for (; next < Math.min(to, first + batch); next++) {
      const record = ringRecord(next, maxLength);
      const at = offsets[ByteRingHeader.HEAD]! & (ring.capacity - 1);
      if (at + ByteRingHeader.LENGTH_BYTES + record.length > ring.capacity) split++;
      expect(ring.tryWrite(record), `record ${next}`).toBe(true);
    }
    for (let i = first; i < next; i++) {
      const length = ring.tryRead(into);
      expect(Buffer.from(into.subarray(0, length)), `record ${i}`).toEqual(ringRecord(i, maxLength));
    }
    expect(ring.tryRead(into)).toBe(-1);
  }
  return split;
}

describe('ByteRing', () => {
  it('refuses a capacity that is not a power of two from 64 B to 1 GiB, naming it', () => {
    for (const capacity of [0, 32, 100, 1000.5, 2 ** 31]) {
      expect(() => ByteRing.create(capacity), String(capacity)).toThrow(
        new RegExp(`power of two from 64 to 1073741824 bytes, got ${capacity}`),
      );
    }
    expect(() => ByteRing.attach(new SharedArrayBuffer(200))).toThrow(/not a byte ring's buffer/);
    // Smaller than the header (a RangeError once), and a header whose capacity is no power of two.
    expect(() => ByteRing.attach(new SharedArrayBuffer(32))).toThrow(/not a byte ring's buffer/);
    const odd = new SharedArrayBuffer(ByteRingHeader.DATA_BYTE + 100);
    new Int32Array(odd)[ByteRingHeader.CAPACITY] = 100;
    expect(() => ByteRing.attach(odd)).toThrow(/not a byte ring's buffer/);
  });

  it('wraps around its end: records of every length, split across it, come back whole and in order', () => {
    const ring = ByteRing.create(256);
    // Batches of 1 to 5 records (up to 40 bytes each) fill the ring to different depths, so
    // that records start everywhere in it.
    let split = 0;
    for (let batch = 1, from = 0; from < 5000; from += 500, batch = (batch % 5) + 1) {
      split += roundTrip(ring, from, from + 500, batch, 40);
    }
    expect(split).toBeGreaterThan(100);
  });

  it('keeps its positions right past 2^31 and 2^32 bytes (kept mod 2^32)', () => {
    for (const start of [2 ** 31 - 40, 2 ** 32 - 40]) {
      const ring = ByteRing.create(128);
      const words = new Int32Array(ring.buffer);
      words[ByteRingHeader.HEAD] = start | 0;
      words[ByteRingHeader.TAIL] = start | 0;
      // Handles read the positions when made: these two start just short of the wrap.
      const writer = ByteRing.attach(ring.buffer);
      const reader = ByteRing.attach(ring.buffer);
      const into = new Uint8Array(reader.maxRecord);
      // Full across the wrap: HEAD past it, TAIL short of it.
      expect(writer.tryWrite(new Uint8Array(56).fill(8))).toBe(true);
      expect(writer.tryWrite(new Uint8Array(56).fill(9))).toBe(true);
      expect(writer.tryWrite(new Uint8Array(1))).toBe(false);
      expect(writer.used).toBe(128);
      expect(Buffer.from(into.subarray(0, reader.tryRead(into)))).toEqual(Buffer.alloc(56, 8));
      expect(Buffer.from(into.subarray(0, reader.tryRead(into)))).toEqual(Buffer.alloc(56, 9));
      for (let i = 0; i < 200; i++) {
        expect(writer.tryWrite(ringRecord(i, 60)), `${start}: record ${i}`).toBe(true);
        expect(Buffer.from(into.subarray(0, reader.tryRead(into))), `${start}: record ${i}`).toEqual(
          ringRecord(i, 60),
        );
      }
      expect(reader.tryRead(into)).toBe(-1);
    }
  });

  it('refuses a record longer than it can ever hold, clearly, and writes nothing; one of maxRecord fits an empty ring', () => {
    const ring = ByteRing.create(1024);
    expect(ring.maxRecord).toBe(1016);
    expect(() => ring.tryWrite(new Uint8Array(1017))).toThrow(
      'a record of 1017 bytes does not fit a byte ring of 1024 bytes (at most 1016)',
    );
    expect(ring.used).toBe(0);
    const whole = Uint8Array.from({ length: 1016 }, (_, i) => i & 255);
    expect(ring.tryWrite(whole)).toBe(true);
    expect(ring.tryWrite(new Uint8Array(0))).toBe(false);
    const into = new Uint8Array(1016);
    expect(ring.tryRead(into)).toBe(1016);
    expect(into).toEqual(whole);
    // A reader's buffer too short for a record is told so, and the record stays.
    expect(ring.tryWrite(new Uint8Array(10))).toBe(true);
    expect(() => ring.tryRead(new Uint8Array(4))).toThrow('a record of 10 bytes does not fit a buffer of 4');
    expect(ring.tryRead(into)).toBe(10);
  });

  it('when full, refuses without writing; a read makes room; closed and read to the end, it says drained', () => {
    const ring = ByteRing.create(64);
    const into = new Uint8Array(ring.maxRecord);
    expect(ring.tryWrite(ringRecord(0, 20))).toBe(true);
    expect(ring.tryWrite(ringRecord(1, 20))).toBe(true);
    const used = ring.used;
    expect(ring.tryWrite(ringRecord(2, 40))).toBe(false);
    expect(ring.used).toBe(used);
    expect(Buffer.from(into.subarray(0, ring.tryRead(into)))).toEqual(ringRecord(0, 20));
    expect(ring.tryWrite(ringRecord(2, 40))).toBe(true);
    ring.close();
    expect(() => ring.tryWrite(new Uint8Array(1))).toThrow('the byte ring is closed');
    expect(ring.drained).toBe(false);
    expect(Buffer.from(into.subarray(0, ring.tryRead(into)))).toEqual(ringRecord(1, 20));
    expect(Buffer.from(into.subarray(0, ring.tryRead(into)))).toEqual(ringRecord(2, 40));
    expect(ring.tryRead(into)).toBe(-1);
    expect(ring.drained).toBe(true);
  });

  it('a writer waiting for room with nobody reading is let go at its time limit, the ring still full', async () => {
    const ring = ByteRing.create(64);
    expect(ring.tryWrite(new Uint8Array(56))).toBe(true);
    expect(ring.tryWrite(new Uint8Array(1))).toBe(false);
    await ring.roomFreed(20);
    expect(ring.tryWrite(new Uint8Array(1))).toBe(false);
  });

  it('across threads, the main thread writing and waiting for room: a slow reader gets 20,000 records through a 1 KiB ring, each intact, in order', async () => {
    const records = 20_000;
    const ring = ByteRing.create(1024);
    const verdict = startPeer({ buffer: ring.buffer, role: 'read', records, maxLength: 300, napEvery: 97 });
    let waits = 0;
    for (let i = 0; i < records; i++) {
      const record = ringRecord(i, 300);
      while (!ring.tryWrite(record)) {
        waits++;
        await ring.roomFreed(100);
      }
    }
    ring.close();
    expect(await verdict).toMatchObject({ done: records, bad: -1 });
    // The ring holds a few records at most: the writer waited for the reader.
    expect(waits).toBeGreaterThan(0);
  }, 60_000);

  it('across threads, the main thread reading and waiting for records: a writer on a worker gets 5,000 records through, each intact, in order', async () => {
    const records = 5_000;
    const ring = ByteRing.create(1024);
    const verdict = startPeer({ buffer: ring.buffer, role: 'write', records, maxLength: 300 });
    const into = new Uint8Array(ring.maxRecord);
    let read = 0;
    let waits = 0;
    while (!ring.drained) {
      const length = ring.tryRead(into);
      if (length < 0) {
        waits++;
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      expect(Buffer.from(into.subarray(0, length)), `record ${read}`).toEqual(ringRecord(read, 300));
      read++;
    }
    expect(read).toBe(records);
    expect(await verdict).toMatchObject({ done: records, bad: -1 });
    expect(waits).toBeGreaterThan(0);
  }, 60_000);
});
