import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const RUN = fileURLToPath(new URL('../fixtures/live-stats-run.ts', import.meta.url));

/** Runs the fixture pipeline in a child process (the observer prints to stdout) and returns its output. */
async function run(ticks: number): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', RUN, String(ticks)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 60_000,
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code).toBe(0);
  return out;
}

/** Every table row the observer printed: actor · stream, handled, then six durations. */
function rows(out: string): { key: string; handled: number; cells: string[] }[] {
  return out
    .split('\n')
    .filter((line) => / · /.test(line) && !line.startsWith('actor · stream'))
    .map((line) => {
      const [key, handled, ...cells] = line.trim().split(/ {2,}/);
      return { key: key!, handled: Number(handled), cells };
    });
}

describe('the live-stats observer', () => {
  it('prints per actor × stream tables that account for every handler call', async () => {
    const TICKS = 300;
    const out = await run(TICKS);
    expect(out).toMatch(/DONE \{"drained":true\}/);
    expect(out).toMatch(
      /^actor · stream +handled +lat p50 +lat p99 +lat p99\.9 +proc p50 +proc p99 +proc p99\.9$/m,
    );
    const printed = rows(out);
    const total = (key: string) => printed.filter((r) => r.key === key).reduce((n, r) => n + r.handled, 0);
    // Summed over every period (and the last print at exit), each handler call counted once.
    expect(total('strategy · ticks')).toBe(TICKS);
    expect(total('gateway · orders')).toBe(2 * TICKS);
    for (const row of printed) {
      expect(row.cells).toHaveLength(6);
      for (const cell of row.cells) expect(cell).toMatch(/^\d+(\.\d+)? (ns|µs|ms|s)$/);
    }
    // Nothing missed, so no note about lapped timing records.
    expect(out).not.toMatch(/timing records missed/);
  });
});
