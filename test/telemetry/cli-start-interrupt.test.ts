import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { spawnDorsal } from './cli-helpers.js';
import { tempDir } from './fixtures.js';

describe('the dorsal command interrupted while its system starts', () => {
  it('Ctrl-C while an onInit never returns ends the run in one line, exit 1 (it waited for the start)', async () => {
    const { dir, cleanup } = tempDir('dorsal-cli-hung-start-');
    try {
      const marker = join(dir, 'starting');
      const child = spawnDorsal(
        [
          'run',
          'test/fixtures/systems/hung-start.system.ts',
          '--seconds',
          '600',
          '--data',
          join(dir, 'lake'),
        ],
        { DORSAL_TEST_INIT_MARKER: marker },
      );
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      await until(() => existsSync(marker), 'the start under way', 60_000);
      child.kill('SIGINT');
      const [code, signal] = await exit;
      expect(signal).toBeNull();
      expect(code, stderr).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toMatch(/^dorsal: thread 'hung' was terminated by the stop before it started/);
    } finally {
      cleanup();
    }
  }, 40_000);
});
