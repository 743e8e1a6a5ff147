import { Encoder, Tag } from 'cbor-x';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DorsalError } from '../../src/errors.js';
import { type IngestionServer, IngestionService, startIngestionServer } from '../../src/ingestion.js';
import { answerFor } from '../../src/telemetry/ingestion/status.js';
import { encodeBlock, encodeDropReport, encodeProcessInfo, encodeStreamInfo } from '../../src/wire.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';

const plain = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: true });

type Kind = 'process' | 'stream' | 'block' | 'drops';
const KINDS: readonly Kind[] = ['process', 'stream', 'block', 'drops'];

const process = makeProcess();
const stream = makeStream(process.processId);
const validBlock = makeBlock(stream, 64).block;
const valid: Readonly<Record<Kind, Uint8Array>> = {
  process: encodeProcessInfo(process),
  stream: encodeStreamInfo(stream),
  block: encodeBlock(validBlock),
  drops: encodeDropReport({
    reportId: '11111111-2222-4333-8444-555555555555',
    processId: process.processId,
    time: '2025-01-02T03:04:05.000000000Z',
    counts: { spoolFull: 3 },
  }),
};
const BLOCK_ID_AT = Buffer.from(valid.block).indexOf(Buffer.from(validBlock.blockId));
const fields: Readonly<Record<Kind, Record<string, unknown>>> = {
  process: { formatVersion: 1, kind: 'process', ...process },
  stream: { formatVersion: 1, kind: 'stream', ...stream },
  block: { formatVersion: 1, kind: 'block', ...makeBlock(stream, 64).block },
  drops: {
    formatVersion: 1,
    kind: 'drops',
    reportId: '11111111-2222-4333-8444-555555555555',
    counts: { x: 1 },
  },
};

/** Any CBOR value, tags (bignums, shared references, unknown ones) and deep nesting included. */
const anyValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(null, undefined, true, false, 0, -1, 2 ** 53, Number.NaN, 1.5),
    fc.string({ maxLength: 40 }),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 5 }),
    fc.tuple(fc.integer({ min: 0, max: 300 }), tie('value')).map(([tag, v]) => new Tag(v, tag)),
  ),
})).value;

/** A body: random bytes, a corrupted valid record, a valid record with a field replaced or added. */
const body = (kind: Kind): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    fc.uint8Array({ maxLength: 1024 }),
    fc
      .tuple(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        fc.boolean(),
        fc.uuid({ version: 4 }),
      )
      .map(([changes, cut, truncate, id]) => {
        const bytes = Buffer.from(valid[kind]);
        // A fresh block id, so that a corrupted block that passes is stored, not a conflict.
        if (kind === 'block') bytes.write(id, BLOCK_ID_AT, 'latin1');
        for (const [at, value] of changes) bytes[at % bytes.length] = value;
        return truncate ? bytes.subarray(0, cut % bytes.length) : bytes;
      }),
    fc
      .tuple(fc.constantFrom(...Object.keys(fields[kind]), 'extra', 'payload'), anyValue)
      .map(([key, value]) => plain.encode({ ...fields[kind], [key]: value })),
    fc.tuple(fc.nat(40), fc.nat()).map(([head, length]) =>
      // A valid record's first bytes, then a head declaring a huge length or count.
      Buffer.concat([
        valid[kind].subarray(0, head),
        Buffer.from([[0x5b, 0x7b, 0x9b, 0xbb][length % 4] ?? 0x5b]),
        Buffer.alloc(8, 0xff),
      ]),
    ),
  );

/** Every failure must be a typed error answered with a 4xx; returns the status. */
function statusOf(error: unknown): number {
  expect(error).toBeInstanceOf(DorsalError);
  const { status } = answerFor(error);
  expect(status, (error as Error).message).toBeGreaterThanOrEqual(400);
  expect(status, (error as Error).message).toBeLessThan(500);
  return status;
}

describe('fuzzing ingestion with hostile bodies', () => {
  const { dir, cleanup } = tempDir();
  let service: IngestionService;
  let server: IngestionServer;

  beforeAll(async () => {
    service = new IngestionService({ data: dir, directory: { fsync: false } });
    server = await startIngestionServer({ port: 0, lake: { data: dir, directory: { fsync: false } } });
    await service.ingestProcess(process);
    await service.ingestStream(stream);
  });

  afterAll(async () => {
    await server.close();
    await service.close();
    cleanup();
  });

  it('answers 20,000 bodies in process with a result or a 4xx, and the lake stays readable', async () => {
    const started = Date.now();
    let cases = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...KINDS).chain((kind) => fc.tuple(fc.constant(kind), body(kind))),
        async ([kind, bytes]) => {
          cases += 1;
          const insert = {
            process: () => service.insertProcess(bytes),
            stream: () => service.insertStream(bytes),
            block: () => service.insertBlock(bytes),
            drops: () => service.insertDrops(bytes),
          }[kind];
          const status = await insert().then(
            () => 200,
            (error: unknown) => statusOf(error),
          );
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        },
      ),
      { numRuns: 20_000 },
    );
    console.log(
      `fuzz: ${cases} bodies in process in ${Date.now() - started} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    expect(cases).toBeGreaterThanOrEqual(20_000);
    for (const row of await service.lake.blocks()) {
      expect((await service.lake.readBlock(row)).block.blockId).toBe(row.blockId);
    }
  }, 120_000);

  it('answers 1,000 of them over HTTP with JSON, never a 5xx', async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...KINDS).chain((kind) => fc.tuple(fc.constant(kind), body(kind))),
        async ([kind, bytes]) => {
          cases += 1;
          const res = await fetch(`${server.url}/ingestion/insert_${kind}`, {
            method: 'POST',
            headers: { 'content-type': 'application/cbor' },
            body: bytes,
          });
          const answer = (await res.json()) as { error?: { code: string; message: string } };
          expect(res.status).toBeLessThan(500);
          if (res.status !== 200) {
            expect(answer.error?.code).toMatch(/^DORSAL_/);
            expect(answer.error?.message.length).toBeLessThanOrEqual(1024);
          }
        },
      ),
      { numRuns: 1000 },
    );
    console.log(`fuzz: ${cases} bodies over HTTP`);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  }, 120_000);

  it('still stores a valid block after all that', async () => {
    const { block } = makeBlock(stream, 32, 4242);
    expect(await service.insertBlock(encodeBlock(block))).toEqual({ inserted: true });
  });
});
