import { describe, expect, it } from 'vitest';
import { sayingUnreadable } from '../../src/cli/source.js';
import { MAX_UNREADABLE_LISTED, type QueryResult } from '../../src/telemetry/analytics/query.js';

const answer = (blocks: number): QueryResult => ({
  columns: [],
  rows: [],
  truncated: false,
  decodedBlocks: 0,
  unreadable: { blocks, records: 10 * blocks },
  unreadableBlocks: Array.from({ length: Math.min(blocks, MAX_UNREADABLE_LISTED) }, (_, i) => ({
    processId: 'p',
    streamId: 's',
    blockId: `b${i}`,
    objectCount: 10,
    error: `block b${i}: no blob at x`,
  })),
});

describe("a command's word on unreadable blocks", () => {
  it('says how many blocks and records, once per block', async () => {
    const said: string[] = [];
    const query = sayingUnreadable(
      async () => answer(3),
      false,
      (text) => said.push(text),
    );
    await query('SELECT 1');
    await query('SELECT 1');
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^dorsal: 3 blocks of the lake did not read, and 30 records are left out/);
  });

  it("says the answer's totals, not only the blocks it lists (100 at most), and again when more are left out", async () => {
    const said: string[] = [];
    let blocks = 250;
    const query = sayingUnreadable(
      async () => answer(blocks),
      false,
      (text) => said.push(text),
    );
    await query('SELECT 1');
    expect(said[0]).toMatch(/^dorsal: 250 blocks of the lake did not read, and 2500 records are left out/);
    expect(said[0]).toContain('… and 245 more (SELECT * FROM unreadable_blocks lists them)');
    expect(MAX_UNREADABLE_LISTED).toBe(100);
    await query('SELECT 1');
    expect(said).toHaveLength(1);
    blocks = 300;
    await query('SELECT 1');
    expect(said).toHaveLength(2);
    expect(said[1]).toMatch(/^dorsal: 300 blocks of the lake did not read/);
  });

  it('with --strict, an answer that leaves blocks out is a one-line error, after the blocks are said', async () => {
    const said: string[] = [];
    const query = sayingUnreadable(
      async () => answer(2),
      true,
      (text) => said.push(text),
    );
    await expect(query('SELECT 1')).rejects.toThrow(
      '--strict: 2 blocks of the lake did not read; nothing is answered without them',
    );
    expect(said[0]).toMatch(/^dorsal: 2 blocks of the lake did not read/);
    // A whole answer is an answer.
    await expect(
      sayingUnreadable(
        async () => answer(0),
        true,
        () => {},
      )('SELECT 1'),
    ).resolves.toMatchObject({
      rows: [],
    });
  });
});
