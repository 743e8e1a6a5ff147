import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCompiledChild } from '../helpers/child.js';
import { compiledUrl } from '../helpers/compiled.js';

const RUN = fileURLToPath(compiledUrl('../fixtures/live-stats-run.ts', import.meta.url));

/** Runs the fixture pipeline in a child process (the observer prints to stdout) and returns its output. */
async function run(ticks: number, timingCapacity?: number): Promise<string> {
  const args = [RUN, String(ticks), ...(timingCapacity === undefined ? [] : [String(timingCapacity)])];
  const { out, code } = await runCompiledChild(args, 60_000);
  expect(code).toBe(0);
  return out;
}

/** Every table row the observer printed: actor · stream, handled, then six durations. */
function rows(out: string): { key: string; handled: number; cells: string[] }[] {
  return out
    .split('\n')
    .filter((line) => / · /.test(line) && !line.startsWith('actor · stream') && !line.startsWith('DONE '))
    .map((line) => {
      const [key, handled, ...cells] = line.trim().split(/ {2,}/);
      return { key: key!, handled: Number(handled), cells };
    });
}

interface Done {
  drained: boolean;
  /** What each actor handled per stream, from the stop report ('actor · stream'). */
  handled: Record<string, number>;
  /** What the observer read and lost of each actor's timing queue. */
  observed: { actor: string; handled: number; lost: number }[];
}

function done(out: string): Done {
  const line = out.split('\n').find((l) => l.startsWith('DONE '));
  expect(line).toBeDefined();
  return JSON.parse(line!.slice('DONE '.length)) as Done;
}

/** What the observer said it missed of `actor`'s timing records, summed over its notes. */
function missed(out: string, actor: string): number {
  return [...out.matchAll(/\(timing records missed, lapped: ([^)]*)\)/g)]
    .flatMap((m) => m[1]!.split(', '))
    .map((entry) => entry.split(': '))
    .filter(([name]) => name === actor)
    .reduce((n, [, count]) => n + Number(count), 0);
}

describe('the live-stats observer', () => {
  it('prints per actor × stream tables that account for every handler call', async () => {
    const TICKS = 300;
    const out = await run(TICKS);
    const result = done(out);
    expect(result.drained).toBe(true);
    expect(out).toMatch(
      /^actor · stream +handled +lat p50 +lat p99 +lat p99\.9 +proc p50 +proc p99 +proc p99\.9$/m,
    );
    const printed = rows(out);
    const total = (key: string) => printed.filter((r) => r.key === key).reduce((n, r) => n + r.handled, 0);
    // Summed over every period (and the last print at exit), each handler call counted once.
    expect(total('strategy · ticks')).toBe(TICKS);
    expect(total('gateway · orders')).toBe(2 * TICKS);
    expect(result.handled).toMatchObject({ 'strategy · ticks': TICKS, 'gateway · orders': 2 * TICKS });
    for (const row of printed) {
      expect(row.cells).toHaveLength(6);
      for (const cell of row.cells) expect(cell).toMatch(/^\d+(\.\d+)? (ns|µs|ms|s)$/);
    }
    // Nothing missed, so no note about lapped timing records.
    expect(out).not.toMatch(/timing records missed/);
  });

  it('says how many timing records it missed when lapped, so that nothing goes uncounted', async () => {
    // Timing queues of 16 slots: an observer that is not scheduled for a moment is lapped. What
    // it printed plus what it said it missed is exactly what each actor handled.
    const TICKS = 5000;
    const out = await run(TICKS, 16);
    const result = done(out);
    expect(result.drained).toBe(true);
    const printed = rows(out);
    for (const [actor, stream] of [
      ['strategy', 'ticks'],
      ['gateway', 'orders'],
    ] as const) {
      const key = `${actor} · ${stream}`;
      const shown = printed.filter((r) => r.key === key).reduce((n, r) => n + r.handled, 0);
      expect(shown + missed(out, actor)).toBe(result.handled[key]);
      const seen = result.observed.find((o) => o.actor === actor)!;
      expect(seen.lost).toBe(missed(out, actor));
    }
  });
});
