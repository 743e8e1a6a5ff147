import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { encode } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IngestionServer, startIngestionServer } from '../../src/ingestion.js';
import { Lake } from '../../src/lake.js';
import { QueryRefusedError } from '../../src/telemetry/analytics/guard.js';
import { localLakeDirectories } from '../../src/telemetry/lake/open.js';
import {
  type Block,
  compressPart,
  encodeBlock,
  encodeProcessInfo,
  encodeStreamInfo,
} from '../../src/wire.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { get, post, postDeclaring } from './http-helpers.js';

const BODY_LIMIT = 1024 * 1024;

/** A block record with some fields replaced, encoded as CBOR as a client could send it. */
function tampered(
  block: Block,
  changes: Record<string, unknown>,
  payload?: Record<string, unknown>,
): Uint8Array {
  return encode({
    formatVersion: 1,
    kind: 'block',
    ...block,
    ...changes,
    payload: { ...block.payload, ...payload },
  });
}

describe('ingestion over HTTP: bad input', () => {
  const { dir, cleanup } = tempDir();
  let server: IngestionServer;
  let lake: Lake;
  const process = makeProcess();
  const stream = makeStream(process.processId);
  const stored = makeBlock(stream, 200);

  beforeAll(async () => {
    server = await startIngestionServer({
      port: 0,
      lake: { data: dir },
      bodyLimit: BODY_LIMIT,
      maxBlockBytes: 4 << 20,
    });
    lake = Lake.open({ data: dir });
    expect((await post(server.url, 'process', encodeProcessInfo(process))).body).toEqual({ inserted: true });
    expect((await post(server.url, 'stream', encodeStreamInfo(stream))).body).toEqual({ inserted: true });
    expect((await post(server.url, 'block', encodeBlock(stored.block))).body).toEqual({ inserted: true });
  });

  afterAll(async () => {
    await server.close();
    await lake.close();
    cleanup();
  });

  /** What was stored before stays readable, and the server still answers. */
  async function lakeStillReadable(): Promise<void> {
    const read = await lake.readBlock(stored.block.blockId);
    expect(Buffer.from(read.payload.objects)).toEqual(Buffer.from(stored.objects));
    expect(await lake.blocks({ streamId: stream.streamId })).toHaveLength(1);
    expect((await get(server.url, '/ready')).status).toBe(200);
  }

  const { block } = makeBlock(stream, 50, 7);
  const objects = block.payload.objects;
  const huge = Buffer.from(objects);
  huge.writeUInt32LE(0xffff_fff0, 0);
  const bomb = compressPart(new Uint8Array(4 << 20));
  const unknownStream = makeStream(process.processId);
  const orphan = makeStream(makeProcess().processId);

  it.each([
    [
      'malformed CBOR',
      'block',
      Buffer.from([0xa3, 0x61, 0x61]),
      400,
      'DORSAL_WIRE_FORMAT',
      'block: malformed CBOR',
    ],
    ['a CBOR string', 'block', encode('hello'), 400, 'DORSAL_WIRE_FORMAT', 'block must be a CBOR map'],
    [
      'a missing field',
      'block',
      tampered(block, { objectCount: undefined }),
      400,
      'DORSAL_WIRE_FORMAT',
      'block: missing field "objectCount"',
    ],
    [
      'a bad UUID',
      'block',
      tampered(block, { blockId: 'not-a-uuid' }),
      400,
      'DORSAL_WIRE_FORMAT',
      'field "blockId" must be a UUID, got "not-a-uuid"',
    ],
    [
      'a bad time',
      'block',
      tampered(block, { beginTime: 'yesterday' }),
      400,
      'DORSAL_WIRE_FORMAT',
      'field "beginTime" must be an RFC 3339 time',
    ],
    [
      'a payload that is not bytes',
      'block',
      tampered(block, {}, { objects: 'text' }),
      400,
      'DORSAL_WIRE_FORMAT',
      'block.payload: field "objects" must be a byte string',
    ],
    [
      'an unknown version',
      'block',
      tampered(block, { formatVersion: 2 }),
      400,
      'DORSAL_WIRE_VERSION',
      'unsupported telemetry wire format version 2',
    ],
    [
      'a stream record sent as a block',
      'block',
      encodeStreamInfo(stream),
      400,
      'DORSAL_WIRE_FORMAT',
      'expected a block record, got kind "stream"',
    ],
    [
      'truncated lz4',
      'block',
      tampered(block, {}, { objects: objects.subarray(0, objects.length - 7) }),
      400,
      'DORSAL_WIRE_FORMAT',
      'block.payload.objects: corrupt or truncated lz4 data',
    ],
    [
      'a huge declared lz4 size',
      'block',
      tampered(block, {}, { objects: huge }),
      400,
      'DORSAL_WIRE_FORMAT',
      'lz4 part declares 4294967280 decompressed bytes, over the limit of 4194304',
    ],
    [
      'an lz4 bomb',
      'block',
      tampered(block, {}, { objects: bomb }),
      400,
      'DORSAL_WIRE_FORMAT',
      `block.payload.objects: lz4 part of ${bomb.length} bytes declares ${4 << 20} decompressed bytes, more than 64 times its size`,
    ],
    [
      'a block of an unknown stream',
      'block',
      encodeBlock({ ...block, streamId: unknownStream.streamId }),
      422,
      'DORSAL_UNKNOWN_STREAM',
      `unknown stream ${unknownStream.streamId}`,
    ],
    [
      'a stream of an unknown process',
      'stream',
      encodeStreamInfo(orphan),
      422,
      'DORSAL_UNKNOWN_PROCESS',
      `unknown process ${orphan.processId}`,
    ],
    [
      'a body over the limit',
      'block',
      encodeBlock({
        ...block,
        payload: { dependencies: compressPart(new Uint8Array(0)), objects: Buffer.alloc(BODY_LIMIT + 1) },
      }),
      413,
      'DORSAL_PAYLOAD_TOO_LARGE',
      `over the limit of ${BODY_LIMIT} bytes`,
    ],
  ])('answers %s with its status and message', async (_name, kind, body, status, code, message) => {
    const answer = await post(server.url, kind, body);
    expect(answer.status).toBe(status);
    expect(answer.body.error?.code).toBe(code);
    expect(answer.body.error?.message).toContain(message);
    await lakeStillReadable();
  });

  it('refuses a wrong or missing content type with 415', async () => {
    const wrong = await post(server.url, 'block', encodeBlock(block), 'application/json');
    expect(wrong.status).toBe(415);
    expect(wrong.body.error?.message).toBe('expected content-type application/cbor, got "application/json"');
    const missing = await post(server.url, 'block', encodeBlock(block), null);
    expect(missing.body.error?.message).toBe('expected content-type application/cbor, got none');
    expect(missing.status).toBe(415);
    await lakeStillReadable();
  });

  it('refuses a huge declared Content-Length with 413 before reading the body', async () => {
    const answer = await postDeclaring(server.url, 'block', 50 * 1024 * 1024 * 1024);
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).error.message).toBe(
      `body of ${50 * 1024 ** 3} bytes is over the limit of ${BODY_LIMIT} bytes`,
    );
    await lakeStillReadable();
  });

  it('answers unknown routes, wrong methods and garbage requests without crashing', async () => {
    expect((await get(server.url, '/nope')).status).toBe(404);
    const long = await get(server.url, `/${'x'.repeat(5000)}`);
    expect(long.status).toBe(404);
    expect(long.body.error?.message).toBe(`no route GET /${'x'.repeat(99)}`);
    const wrongMethod = await get(server.url, '/ingestion/insert_block');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.body.error?.message).toBe('use POST');
    const garbage = await new Promise<string>((resolve) => {
      const socket = connect(server.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => {
        text += d.toString();
      });
      socket.on('close', () => resolve(text));
    });
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    expect((await get(server.url, '/health')).body).toEqual({ status: 'ok' });
    await lakeStillReadable();
  });

  it('stores the block once its errors are fixed', async () => {
    expect((await post(server.url, 'block', encodeBlock(block))).body).toEqual({ inserted: true });
    expect(await lake.blocks({ streamId: stream.streamId })).toHaveLength(2);
  });
});

describe('limits given as options', () => {
  it('are refused with a clear error unless positive numbers (NaN turned a limit off)', async () => {
    const { dir, cleanup } = tempDir('dorsal-limits-');
    try {
      for (const [name, value] of [
        ['recordBodyLimit', Number.NaN],
        ['bodyLimit', 0],
        ['largeBodyBudgetBytes', -1],
        ['maxBlockBytes', Number.NaN],
        ['maxCompressionRatio', Number.POSITIVE_INFINITY],
        ['cacheSize', 1.5],
      ] as const) {
        await expect(startIngestionServer({ port: 0, lake: { data: dir }, [name]: value })).rejects.toThrow(
          new RegExp(`^option '${name}' must be a positive (whole )?number, got ${String(value)}$`),
        );
      }
      // A ratio need not be whole.
      const server = await startIngestionServer({ port: 0, lake: { data: dir }, maxCompressionRatio: 2.5 });
      await server.close();
    } finally {
      cleanup();
    }
  });
});

describe('an error answered to a client', () => {
  it("shows no lake's configuration (its file, its database's host) to a client: a 500, said to the server", async () => {
    const { dir, cleanup } = tempDir('dorsal-foreign-');
    // Another program's SQLite file where the lake's should be.
    const db = new Database(join(dir, 'lake.sqlite'));
    db.exec('CREATE TABLE customers (id INTEGER)');
    db.close();
    const internal: unknown[] = [];
    const server = await startIngestionServer({
      port: 0,
      lake: { data: dir },
      onInternalError: (error) => internal.push(error),
    });
    try {
      for (const answer of [
        await get(server.url, '/ready'),
        await post(server.url, 'process', encodeProcessInfo(makeProcess())),
      ]) {
        expect(answer.status).toBe(500);
        expect(answer.body.error).toEqual({
          code: 'DORSAL_INTERNAL',
          message: 'internal error while handling the request',
        });
      }
      expect(String(internal[0])).toMatch(/lake\.sqlite is not a dorsal lake/);
    } finally {
      await server.close();
      cleanup();
    }
  });

  it("names the lake's directories as error messages do (a file: URL's trailing slash left out)", () => {
    expect(localLakeDirectories({ data: '/srv/lake', blobs: 'file:///srv/blobs/' })).toEqual([
      '/srv/lake',
      '/srv/blobs',
    ]);
    expect(localLakeDirectories({ data: 'rel', db: '/var/db/lake.sqlite', blobs: 'rel-blobs/' })).toEqual([
      resolve('rel'),
      '/var/db',
      resolve('rel-blobs'),
    ]);
  });

  it("hides the lake's directories by default: a blob store's error names them", async () => {
    const { dir, cleanup } = tempDir('dorsal-blob-error-');
    const process = makeProcess();
    const stream = makeStream(process.processId);
    // A file where the process's blob directory goes: every block of it fails to be written.
    mkdirSync(join(dir, 'blobs'));
    writeFileSync(join(dir, 'blobs', process.processId), 'not a directory');
    const server = await startIngestionServer({ port: 0, lake: { data: dir } });
    try {
      await post(server.url, 'process', encodeProcessInfo(process));
      await post(server.url, 'stream', encodeStreamInfo(stream));
      const answer = await post(server.url, 'block', encodeBlock(makeBlock(stream, 8).block));
      expect(answer.status).toBe(503);
      expect(answer.body.error?.message).toMatch(/ENOTDIR/);
      expect(answer.body.error?.message).not.toContain(dir);
    } finally {
      await server.close();
      cleanup();
    }
  });

  it("says … for the server's own directories (DuckDB's messages quote the files they read)", async () => {
    const { dir, cleanup } = tempDir('dorsal-hidden-');
    const cache = join(dir, 'analytics');
    const server = await startIngestionServer({
      port: 0,
      lake: { data: dir },
      // `/` too, as `--data /` would: too short to hide (every path would lose its slashes).
      hiddenPaths: [cache, dir, '/'],
      routes: [
        {
          method: 'GET',
          path: '/fails',
          mediaType: 'application/json',
          bodyLimit: 0,
          handle: () =>
            Promise.reject(
              new QueryRefusedError(
                `Conversion Error: in file ${cache}/lake-1/views/x.parquet, or ${dir}/lake.sqlite, not ${dir}2/y`,
              ),
            ),
        },
      ],
    });
    try {
      const answer = await get(server.url, '/fails');
      expect(answer.status).toBe(400);
      // A whole path only: another that begins alike is another directory.
      expect(answer.body.error?.message).toBe(
        `Conversion Error: in file …/lake-1/views/x.parquet, or …/lake.sqlite, not ${dir}2/y`,
      );
    } finally {
      await server.close();
      cleanup();
    }
  });
});
