import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DorsalError } from '../../src/errors.js';
import {
  decodeBlock,
  decodeProcessInfo,
  decodeStreamInfo,
  decompressPart,
  encodeBlock,
} from '../../src/wire.js';
import { makeBlock, makeProcess, makeStream } from './fixtures.js';

/**
 * Records written by wire format version 1, byte for byte. Readers must keep decoding them:
 * this test is never deleted, only joined by one per later version.
 */
const V1 = {
  process:
    'b9000a6d666f726d617456657273696f6e01646b696e646770726f636573736970726f636573734964782436663163326134652d316237642d346331652d396135312d3064326633653461356236636365786566676f6c64656e64686f7374616868757365726e616d65617569737461727454696d65781e323032352d30312d30325430333a30343a30352e3132333435363738395a6a73746172745469636b73182a65636c6f636bb90002646e616d6573646f7273616c2d6d6f6e6f746f6e69632d6e736e7469636b735065725365636f6e641a3b9aca006a70726f70657274696573b90001616b6176',
  stream:
    'b900086d666f726d617456657273696f6e01646b696e646673747265616d6873747265616d4964782430613962386337642d366535662d346133622d386332642d3165306639613862376336646970726f636573734964782436663163326134652d316237642d346331652d396135312d306432663365346135623663647461677381686d6573736167657373646570656e64656e636965734c61796f757473806e6f626a656374734c61796f75747381b90003646e616d6561506473697a6508666669656c647381b90003646e616d656178647479706563663634666f6666736574006a70726f70657274696573b90000',
  block:
    'b9000b6d666f726d617456657273696f6e01646b696e6465626c6f636b67626c6f636b4964782435643463336232612d316630652d346439632d386237612d3666356534643363326231616873747265616d4964782430613962386337642d366535662d346133622d386332642d3165306639613862376336646970726f636573734964782436663163326134652d316237642d346331652d396135312d30643266336534613562366369626567696e54696d65781e323032352d30312d30325430333a30343a30362e3030303030303030315a6a626567696e5469636b73186467656e6454696d65781e323032352d30312d30325430333a30343a30362e3030303030303939395a68656e645469636b7319044a6b6f626a656374436f756e7402677061796c6f6164b900026c646570656e64656e63696573450000000000676f626a65637473531000000011000100a0f83f00000000000002c0',
};

const bytes = (hex: string): Uint8Array => Buffer.from(hex, 'hex');

describe('wire format compatibility', () => {
  it('decodes version 1 records', () => {
    expect(decodeProcessInfo(bytes(V1.process))).toEqual({
      processId: '6f1c2a4e-1b7d-4c1e-9a51-0d2f3e4a5b6c',
      exe: 'golden',
      host: 'h',
      username: 'u',
      startTime: '2025-01-02T03:04:05.123456789Z',
      startTicks: 42,
      clock: { name: 'dorsal-monotonic-ns', ticksPerSecond: 1e9 },
      properties: { k: 'v' },
    });
    expect(decodeStreamInfo(bytes(V1.stream))).toMatchObject({
      streamId: '0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d',
      tags: ['messages'],
      objectsLayouts: [{ name: 'P', size: 8, fields: [{ name: 'x', type: 'f64', offset: 0 }] }],
    });
    const block = decodeBlock(bytes(V1.block));
    expect(block).toMatchObject({
      blockId: '5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a',
      objectCount: 2,
      endTicks: 1098,
    });
    const objects = decompressPart(block.payload.objects, 'objects');
    const view = new DataView(objects.buffer, objects.byteOffset, objects.byteLength);
    expect([view.getFloat64(0, true), view.getFloat64(8, true)]).toEqual([1.5, -2.25]);
    expect(decompressPart(block.payload.dependencies, 'dependencies').length).toBe(0);
  });

  it('answers any corruption of a block with a typed error, never anything else', () => {
    const valid = encodeBlock(makeBlock(makeStream(makeProcess().processId), 64).block);
    const mutation = fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
      minLength: 1,
      maxLength: 8,
    });
    fc.assert(
      fc.property(mutation, fc.nat(valid.length), (changes, cut) => {
        const corrupt = Uint8Array.from(valid.subarray(0, Math.max(cut, valid.length - 64)));
        for (const [at, value] of changes) if (at < corrupt.length) corrupt[at] = value;
        try {
          const block = decodeBlock(corrupt);
          decompressPart(block.payload.objects, 'objects', 1 << 20);
          decompressPart(block.payload.dependencies, 'dependencies', 1 << 20);
        } catch (error) {
          if (!(error instanceof DorsalError)) throw error;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('answers arbitrary bytes with a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (input) => {
        for (const decode of [decodeBlock, decodeProcessInfo, decodeStreamInfo]) {
          try {
            decode(input);
          } catch (error) {
            if (!(error instanceof DorsalError)) throw error;
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
