import { describe, expect, it } from 'vitest';
import { sayingUnreadable } from '../../src/cli/source.js';
import { MAX_UNREADABLE_LISTED, type QueryResult } from '../../src/telemetry/analytics/query.js';

const answer = (blocks: number): QueryResult => ({
  columns: [],
  rows: [],
  truncated: false,
  decodedBlocks: 0,
  unreadableBlocks: Array.from({ length: blocks }, (_, i) => ({
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
      (text) => said.push(text),
    );
    await query('SELECT 1');
    await query('SELECT 1');
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^dorsal: 3 blocks of the lake did not read, and 30 records are left out/);
  });

  it('says "at least" when the answer lists as many as it lists at most: more may be left out', async () => {
    const said: string[] = [];
    const query = sayingUnreadable(
      async () => answer(MAX_UNREADABLE_LISTED),
      (text) => said.push(text),
    );
    await query('SELECT 1');
    expect(said[0]).toMatch(
      new RegExp(
        `^dorsal: at least ${MAX_UNREADABLE_LISTED} blocks of the lake did not read, and at least ${10 * MAX_UNREADABLE_LISTED} records`,
      ),
    );
    expect(said[0]).toContain('unreadable_blocks lists them all');
  });
});
