import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { IngestionService } from '../../src/ingestion.js';
import { type BlockRow, Lake } from '../../src/lake.js';
import type { IngestPlan } from '../fixtures/ingest-until-killed.js';
import { compiled, compiledUrl } from '../helpers/compiled.js';
import { eventBytes, makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';

const CHILD = fileURLToPath(compiledUrl('../fixtures/ingest-until-killed.ts', import.meta.url));

describe('the embedded lake after its process is killed mid-ingest', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('reads every stored row whole, and a re-send of every block completes it', async () => {
    const proc = makeProcess();
    const stream = makeStream(proc.processId);
    const plan: IngestPlan = {
      data: join(dir, 'lake'),
      process: proc,
      stream,
      events: 2000,
      blocks: Array.from({ length: 1500 }, (_, i) => ({ blockId: randomUUID(), seed: i + 1 })),
    };
    const planFile = join(dir, 'plan.json');
    writeFileSync(planFile, JSON.stringify(plan));

    // Killed once it has stored 100 blocks, with up to 8 more being written: the kill usually
    // leaves a file or two cut short under their final names, without rows (seen in 2 runs of 3).
    const child = spawn(process.execPath, [compiled(CHILD), planFile], {
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 60_000,
    });
    let acks = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      acks += chunk.toString().split('\n').length - 1;
      if (acks >= 100) child.kill('SIGKILL');
    });
    const [, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    expect(signal).toBe('SIGKILL');

    const seedOf = new Map(plan.blocks.map((b) => [b.blockId, b.seed]));
    /** How many of `rows` read back with exactly the events their block was made of. */
    const wholeBlobs = async (lake: Lake, rows: readonly BlockRow[]): Promise<number> => {
      let whole = 0;
      for (const row of rows) {
        const { payload } = await lake.readBlock(row);
        if (Buffer.from(eventBytes(2000, seedOf.get(row.blockId))).equals(payload.objects)) whole += 1;
      }
      return whole;
    };
    const service = new IngestionService(Lake.open({ data: plan.data }));
    try {
      // Every row the killed process inserted points at a whole blob (at least the acknowledged ones).
      const stored = await service.lake.blocks({ streamId: stream.streamId });
      expect(stored.length).toBeGreaterThanOrEqual(100);
      expect(stored.length).toBeLessThan(plan.blocks.length);
      expect(await wholeBlobs(service.lake, stored)).toBe(stored.length);
      // The sender sends everything again (it never learned what was stored): each block once,
      // whatever the kill left under its name.
      const results = [];
      for (const { blockId, seed } of plan.blocks) {
        results.push(await service.ingestBlock({ ...makeBlock(stream, 2000, seed).block, blockId }));
      }
      expect(results.filter((r) => r.inserted)).toHaveLength(plan.blocks.length - stored.length);
      const all = await service.lake.blocks({ streamId: stream.streamId });
      expect(all).toHaveLength(plan.blocks.length);
      expect(await wholeBlobs(service.lake, all)).toBe(plan.blocks.length);
    } finally {
      await service.close();
    }
  }, 120_000);
});
