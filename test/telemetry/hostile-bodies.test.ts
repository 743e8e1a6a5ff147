import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Encoder, Tag } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayoutDescription } from '../../src/index.js';
import { Lake } from '../../src/lake.js';
import {
  type Block,
  compressPart,
  encodeBlock,
  encodeProcessInfo,
  encodeStreamInfo,
} from '../../src/wire.js';
import { startDorsalServe } from './cli-helpers.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { parseRaw, post, rawConnection } from './http-helpers.js';

/**
 * Each hostile body the probe found, sent to a real `dorsal serve` in a child process: it must
 * answer 4xx, keep answering /health meanwhile, stay up, and keep its memory (peak RSS, reset
 * before each case through /proc/PID/clear_refs) within bounds.
 */

const MiB = 1024 * 1024;
const plain = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true });
const sharing = new Encoder({ useRecords: false, tagUint8Array: false, structuredClone: true });

/**
 * Whether the server answers /health: a liveness check, between and after hostile requests. How
 * soon it answers is not asserted (speed is measured in bench/); a server that never answers
 * fails the test by the test's own timeout.
 */
async function healthy(url: string): Promise<boolean> {
  const res = await fetch(`${url}/health`);
  return res.status === 200;
}

function wideLayout(n: number): LayoutDescription {
  return {
    name: `Wide${n}`,
    size: n,
    fields: Array.from({ length: n }, (_, i) => ({ name: `f${i}`, type: 'u8' as const, offset: i })),
  };
}

describe('the server under hostile bodies (a real `dorsal serve`)', () => {
  const { dir, cleanup } = tempDir();
  const data = join(dir, 'lake');
  let server: Awaited<ReturnType<typeof startDorsalServe>>;
  const process = makeProcess();
  const stream = makeStream(process.processId);
  const other = makeStream(process.processId);

  /** Peak RSS since the last reset, in MiB. */
  const peakMiB = (): number =>
    Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))?.[1]) / 1024;
  const resetPeak = (): void => writeFileSync(`/proc/${server.child.pid}/clear_refs`, '5');
  /** Runs `attack` and returns how far the server's peak RSS rose above its RSS before it, in MiB. */
  async function growth(attack: () => Promise<void>): Promise<number> {
    resetPeak();
    const before = peakMiB();
    await attack();
    const rise = peakMiB() - before;
    console.log(`peak RSS rise: ${rise.toFixed(1)} MiB`);
    return rise;
  }

  beforeAll(async () => {
    server = await startDorsalServe(['--port', '0', '--data', data, '--stall-timeout', '1000']);
    for (const [kind, bytes] of [
      ['process', encodeProcessInfo(process)],
      ['stream', encodeStreamInfo(stream)],
      ['stream', encodeStreamInfo(other)],
      ['block', encodeBlock(makeBlock(stream, 100).block)],
    ] as const) {
      expect((await post(server.url, kind, bytes)).status).toBe(200);
    }
  });

  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    cleanup();
  });

  it('refuses blocks carrying a 512 KiB tag-2 bignum, 4 at a time, answering /health between them', async () => {
    const bytes = plain.encode({
      formatVersion: 1,
      kind: 'block',
      ...makeBlock(stream, 64).block,
      extra: new Tag(Buffer.alloc(512 * 1024, 0xff), 2),
    });
    const rise = await growth(async () => {
      for (let round = 0; round < 2; round++) {
        const [answers, health] = await Promise.all([
          Promise.all(Array.from({ length: 4 }, () => post(server.url, 'block', bytes))),
          healthy(server.url),
        ]);
        for (const answer of answers) {
          expect(answer.status).toBe(400);
          expect(answer.body.error?.message).toMatch(
            /^block: CBOR tag 2 at byte \d+: tags are not accepted$/,
          );
        }
        expect(health).toBe(true);
        expect(await healthy(server.url)).toBe(true);
      }
    });
    expect(rise).toBeLessThan(100);
  });

  it('refuses streams made of shared references (294 KB and 52 KB variants), storing nothing', async () => {
    const layout = wideLayout(4096);
    const attack = makeStream(process.processId);
    const refs = sharing.encode({
      formatVersion: 1,
      kind: 'stream',
      ...attack,
      dependenciesLayouts: Array.from({ length: 4096 }, () => layout),
      objectsLayouts: Array.from({ length: 4096 }, () => layout),
    });
    const small = wideLayout(1000);
    const variant = makeStream(process.processId);
    const smallRefs = sharing.encode({
      formatVersion: 1,
      kind: 'stream',
      ...variant,
      objectsLayouts: Array.from({ length: 4000 }, () => small),
    });
    expect(refs.length).toBeLessThan(300_000);
    expect(smallRefs.length).toBeLessThan(60_000);
    const rise = await growth(async () => {
      for (const bytes of [refs, smallRefs]) {
        const answer = await post(server.url, 'stream', bytes);
        expect(answer.status).toBe(400);
        expect(answer.body.error?.message).toMatch(/CBOR tag 2[89] at byte \d+: tags are not accepted/);
      }
      // Written out without references, a few such layouts already exceed a stream record's 1 MiB.
      const written = plain.encode({
        formatVersion: 1,
        kind: 'stream',
        ...attack,
        objectsLayouts: Array.from({ length: 12 }, () => layout),
      });
      expect(written.length).toBeGreaterThan(MiB);
      expect((await post(server.url, 'stream', written)).status).toBe(413);
      expect(await healthy(server.url)).toBe(true);
    });
    expect(rise).toBeLessThan(100);
    const lake = Lake.open({ data });
    try {
      expect(await lake.stream(attack.streamId)).toBeUndefined();
      expect(await lake.stream(variant.streamId)).toBeUndefined();
    } finally {
      await lake.close();
    }
  });

  it('refuses 16 lz4 bombs at once (2.1 MB bodies whose parts hold 256 MiB each) in bounded memory', async () => {
    const part = compressPart(new Uint8Array(256 * MiB));
    const bomb = (block: Block): Uint8Array =>
      encodeBlock({ ...block, payload: { dependencies: part, objects: part } });
    const bodies = Array.from({ length: 16 }, (_, i) => bomb(makeBlock(stream, 1, i + 1).block));
    expect(bodies[0]?.length).toBeGreaterThan(2 * MiB);
    // Within the block limit, a bomb is refused for its ratio.
    const small = compressPart(new Uint8Array(16 * MiB));
    const ratioBomb = encodeBlock({
      ...makeBlock(stream, 1, 99).block,
      payload: { dependencies: compressPart(new Uint8Array(0)), objects: small },
    });
    const rise = await growth(async () => {
      const answers = await Promise.all(bodies.map((body) => post(server.url, 'block', body)));
      for (const answer of answers) {
        expect(answer.status).toBe(400);
        expect(answer.body.error?.message).toBe(
          `block.payload.dependencies: lz4 part declares ${256 * MiB} decompressed bytes, over the limit of ${64 * MiB}`,
        );
      }
      const ratio = await post(server.url, 'block', ratioBomb);
      expect(ratio.status).toBe(400);
      expect(ratio.body.error?.message).toContain('more than 64 times its size');
      expect(await healthy(server.url)).toBe(true);
    });
    expect(rise).toBeLessThan(150);
  });

  it('verifies 16 large blocks at once (32 MiB each once decompressed) in bounded memory', async () => {
    const raw = new Uint8Array(32 * MiB);
    for (let i = 0; i < raw.length; i += 64) raw.set([i & 255, (i >> 8) & 255, (i >> 16) & 255], i);
    const objects = compressPart(raw);
    const blocks = Array.from({ length: 16 }, (_, i) => {
      const { block } = makeBlock(stream, 1, 1000 + i);
      return { ...block, objectCount: raw.length / 32, payload: { ...block.payload, objects } };
    });
    const rise = await growth(async () => {
      const answers = await Promise.all(blocks.map((block) => post(server.url, 'block', encodeBlock(block))));
      expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 16 }, () => 200));
    });
    // Decompressing each to verify it took the server from 110 to 700 MiB.
    expect(rise).toBeLessThan(250);
  });

  it('answers 408 to a body that declares 50 MiB and sends 16 bytes, and /health while it waits', async () => {
    const conn = rawConnection(
      Number(new URL(server.url).port),
      `POST /ingestion/insert_block HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/cbor\r\ncontent-length: ${50 * MiB}\r\n\r\n`,
    );
    conn.socket.write(Buffer.alloc(16));
    expect(await healthy(server.url)).toBe(true);
    const answer = parseRaw(await conn.answer);
    expect(answer.status).toBe(408);
    expect(answer.body.error?.code).toBe('DORSAL_REQUEST_TIMEOUT');
  });

  it('answers 200 to a process or stream record sent again as it was, 409 to other content under its id', async () => {
    expect((await post(server.url, 'process', encodeProcessInfo(process))).status).toBe(200);
    expect((await post(server.url, 'stream', encodeStreamInfo(stream))).status).toBe(200);
    const relaid = await post(
      server.url,
      'stream',
      encodeStreamInfo({ ...stream, objectsLayouts: [...stream.objectsLayouts, ...stream.objectsLayouts] }),
    );
    expect(relaid.status).toBe(409);
    expect(relaid.body.error?.code).toBe('DORSAL_RECORD_CONFLICT');
    const renamed = await post(server.url, 'process', encodeProcessInfo({ ...process, host: 'elsewhere' }));
    expect(renamed.status).toBe(409);
    expect(renamed.body.error?.message).toMatch(/already stored with another host/);
  });

  it('answers 409 to a block id re-sent with other bytes or under another stream, leaving no file', async () => {
    const first = makeBlock(stream, 20, 1).block;
    expect((await post(server.url, 'block', encodeBlock(first))).status).toBe(200);
    const changed = { ...makeBlock(stream, 30, 2).block, blockId: first.blockId };
    const conflict = await post(server.url, 'block', encodeBlock(changed));
    expect(conflict.status).toBe(409);
    expect(conflict.body.error?.code).toBe('DORSAL_BLOCK_CONFLICT');
    const moved = await post(server.url, 'block', encodeBlock({ ...first, streamId: other.streamId }));
    expect(moved.status).toBe(409);
    // Neither refused send left a file: the other stream has none, the first one's only the stored.
    const files = (streamId: string): string[] => {
      const at = join(data, 'blobs', process.processId, streamId);
      return existsSync(at) ? readdirSync(at).filter((name) => name.startsWith(first.blockId)) : [];
    };
    expect(files(other.streamId)).toEqual([]);
    expect(files(stream.streamId)).toHaveLength(1);
  });

  it('keeps error messages short, and is still up after all of it', async () => {
    const answer = await post(
      server.url,
      'process',
      plain.encode({
        formatVersion: 1,
        kind: 'process',
        ...makeProcess(),
        properties: { ['k'.repeat(1000)]: 1 },
      }),
    );
    expect(answer.status).toBe(400);
    expect(answer.body.error?.message.length).toBeLessThan(200);
    expect(server.child.exitCode).toBeNull();
    expect(await healthy(server.url)).toBe(true);
  });
});
