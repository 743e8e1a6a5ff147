import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createApiKey, Lake } from '../../src/lake.js';
import { encodeBlock } from '../../src/wire.js';
import type { LoadPlan, LoadResult } from '../fixtures/sink-under-load.js';
import { compiled, compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { startDorsalServe } from './cli-helpers.js';
import { makeBlock, makeProcess, makeStream, tempDir } from './fixtures.js';
import { freePort } from './http-helpers.js';

const LOADER = fileURLToPath(compiledUrl('../fixtures/sink-under-load.ts', import.meta.url));

/**
 * How long ingestion stays down. The scenario is 30 s; the test scales it down (set
 * DORSAL_TEST_OUTAGE_MS=30000 to run it as written). The mechanism is the same: the server is
 * killed with SIGKILL and started again on the same port and lake.
 */
const OUTAGE_MS = Number(process.env.DORSAL_TEST_OUTAGE_MS ?? 4000);

describe('ingestion down while sinks send at load (real processes)', () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it('loses nothing that has room in the spool, and counts every drop in the lake once it is back', async () => {
    const data = join(dir, 'lake');
    const bootstrap = Lake.open({ data });
    const key = await createApiKey(bootstrap.metadata, 'sinks');
    await bootstrap.close();
    const port = await freePort();
    const serveArgs = ['--port', String(port), '--data', data];
    let server = await startDorsalServe(serveArgs);

    const [roomy, squeezed] = [makeProcess(), makeProcess()];
    const plan: LoadPlan = {
      url: server.url,
      key,
      blockBytes: encodeBlock(makeBlock(makeStream(roomy.processId), 64).block).length,
      sinks: [
        {
          name: 'spooled',
          process: roomy,
          stream: makeStream(roomy.processId),
          spoolDir: join(dir, 'spool-a'),
        },
        {
          name: 'squeezed',
          process: squeezed,
          stream: makeStream(squeezed.processId),
          spoolDir: join(dir, 'spool-b'),
          memoryBlocks: 10,
          spoolBlocks: 40,
        },
      ],
    };
    const loader = spawn(process.execPath, [compiled(LOADER), JSON.stringify(plan)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    let count = 0;
    loader.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      for (const match of chunk.toString().matchAll(/pushed (\d+)/g)) count = Number(match[1]);
    });
    const pushed = (): number => count;
    try {
      const lake = Lake.open({ data });
      try {
        await until(() => pushed() >= 100, 'the sinks under way');
        // Both sinks have blocks in the lake before the outage.
        for (const p of [roomy, squeezed]) {
          const deadline = Date.now() + 30_000;
          while ((await lake.blocks({ processId: p.processId, limit: 1 })).length === 0) {
            if (Date.now() > deadline) throw new Error('no block stored before the outage');
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
      } finally {
        await lake.close();
      }

      server.child.kill('SIGKILL');
      await once(server.child, 'exit');
      const before = pushed();
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      // The sinks kept pushing all along.
      expect(pushed()).toBeGreaterThan(before);
      server = await startDorsalServe(serveArgs);
      const after = pushed();
      await until(() => pushed() >= after + 100, 'more load after the restart');
      const exited = once(loader, 'exit');
      loader.stdin.write('stop\n');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
    } finally {
      loader.kill('SIGKILL');
      await server.stop();
    }

    const results = JSON.parse(out.slice(out.indexOf('result ') + 7)) as LoadResult[];
    const [spooled, tight] = results as [LoadResult, LoadResult];
    const lake = Lake.open({ data });
    try {
      const stored = async (processId: string): Promise<string[]> =>
        (await lake.blocks({ processId })).map((b) => b.blockId).sort();
      const inLake = async (processId: string): Promise<number> =>
        (await lake.drops(processId)).reduce((sum, r) => sum + r.total, 0);

      // Room in the spool: every block pushed is stored, none dropped.
      expect(spooled.stats).toMatchObject({ droppedTotal: 0, spoolBlocks: 0, buffered: 0 });
      expect(spooled.stats.spooled).toBeGreaterThan(0);
      expect(await stored(roomy.processId)).toEqual([...spooled.pushed].sort());
      expect(await inLake(roomy.processId)).toBe(0);

      // Little room: blocks were dropped, each counted, and the count reached the lake.
      expect(tight.stats.droppedTotal).toBeGreaterThan(0);
      expect(tight.dropped).toHaveLength(tight.stats.droppedTotal);
      expect(tight.stats.reportedDrops).toBe(tight.stats.droppedTotal);
      expect(await inLake(squeezed.processId)).toBe(tight.stats.droppedTotal);
      const dropped = new Set(tight.dropped);
      expect(await stored(squeezed.processId)).toEqual(tight.pushed.filter((id) => !dropped.has(id)).sort());
      console.log(
        `outage of ${OUTAGE_MS} ms: ${spooled.pushed.length} + ${tight.pushed.length} blocks pushed; ` +
          `${spooled.stats.spooled} spooled and all stored; ${tight.stats.droppedTotal} dropped and reported`,
      );
    } finally {
      await lake.close();
    }
  }, 180_000);
});
