import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import {
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindingPoint, counterSample, spanEvents } from '../../src/cli/chrome-trace.js';
import { traceTime } from '../../src/cli/trace-window.js';
import { logger, metric, System, span } from '../../src/index.js';
import { formatRfc3339Ns } from '../../src/wire.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { runDorsal, spawnDorsal, startDorsalServe } from './cli-helpers.js';
import { tempDir } from './fixtures.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);
const TICKS = 40;

/** An event of a trace file, as far as these tests read it. */
interface Event {
  readonly ph: string;
  readonly pid: number;
  readonly tid: number;
  readonly name: string;
  readonly cat?: string;
  readonly ts: number;
  readonly dur?: number;
  readonly id?: number | string;
  readonly bp?: string;
  readonly s?: string;
  readonly args?: Record<string, unknown>;
}

interface TraceJson {
  readonly traceEvents: Event[];
  readonly displayTimeUnit: string;
  readonly metadata: Record<string, unknown>;
}

/** A trace file and its events by kind. */
function load(file: string) {
  const trace = JSON.parse(readFileSync(file, 'utf8')) as TraceJson;
  const events = trace.traceEvents;
  const trackName = new Map(
    events.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => [e.tid, String(e.args!.name)]),
  );
  const handlers = events.filter((e) => e.ph === 'X' && e.cat === 'handler');
  return {
    trace,
    events,
    trackName,
    handlers,
    spans: events.filter((e) => e.ph === 'X' && e.cat === 'span'),
    logs: events.filter((e) => e.ph === 'i'),
    counters: events.filter((e) => e.ph === 'C'),
    flows: events.filter((e) => e.ph === 's' || e.ph === 'f'),
    /** The innermost slice of track `tid` that holds time `ts` (what a viewer binds a flow to). */
    sliceAt(tid: number, ts: number): Event | undefined {
      const holding = events.filter(
        (e) => e.ph === 'X' && e.tid === tid && e.ts <= ts && ts <= e.ts + e.dur! + 1e-6,
      );
      return holding.sort((a, b) => b.ts - a.ts || a.dur! - b.dur!)[0];
    },
  };
}

/** Events that have a time on the timeline (not names, not flow ends). */
const timed = (e: Event) => e.ph !== 'M' && e.ph !== 's' && e.ph !== 'f';

describe('dorsal trace', () => {
  const { dir, cleanup } = tempDir('dorsal-cli-trace-');
  const file = (name: string) => join(dir, name);
  let full: ReturnType<typeof load>;
  let sql: (query: string) => Promise<unknown[][]>;

  beforeAll(async () => {
    // A pipeline (ticks → two orders each → a fill each) beside an instrumented actor that logs,
    // measures and opens spans for every tick, and a main thread that does each once.
    const system = new System(spine, { persist: { data: dir, blockBytes: 2048 } });
    logger('main-app').info('system made', { ticks: TICKS });
    system.spawn(fixture('feed'), { args: { count: TICKS, perLoop: 10 } });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('gateway'));
    system.spawn(fixture('instrumented'), { args: { name: 'alpha' } });
    await system.start();
    span('main-wait', () => metric('main.ticks', TICKS, 'ticks'));
    await until(() => system.spine.queue(2).stats().published === 2 * TICKS, 'every fill');
    await system.stop();
    sql = async (query) => {
      const run = await runDorsal(['query', query, '--data', dir, '--json']);
      expect(run.code, run.stderr).toBe(0);
      return (JSON.parse(run.stdout) as { rows: unknown[][] }).rows;
    };
    const run = await runDorsal(['trace', '--data', dir, '-o', file('full.json')]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^wrote .*full\.json: [\d,]+ handler calls, [\d,]+ flow arrows, /);
    full = load(file('full.json'));
  }, 120_000);
  afterAll(cleanup);

  it('writes the JSON object form: the process and each track named, times in µs since the start', async () => {
    const { trace, events, trackName } = full;
    expect(trace.displayTimeUnit).toBe('ns');
    const [processId] = (await sql('SELECT process_id FROM processes'))[0]!;
    expect(trace.metadata['dorsal-process']).toBe(processId);
    expect(trace.metadata['dorsal-losses']).toEqual([]);
    const processName = events.filter((e) => e.ph === 'M' && e.name === 'process_name');
    expect(processName.map((e) => e.args!.name)).toEqual([expect.stringContaining(String(processId))]);
    expect([...trackName.values()].sort()).toEqual(['alpha', 'gateway', 'main', 'strategy']);
    expect(events.every((e) => e.pid === 1)).toBe(true);
    expect(events.filter(timed).every((e) => Number.isFinite(e.ts) && e.ts > 0)).toBe(true);
  });

  it('has a slice per handler call on its actor’s track, named by its stream, with seq, handler time and queue wait', async () => {
    const { handlers, trackName } = full;
    const counts = await sql(
      'SELECT actor, stream, count(*)::INTEGER FROM timings GROUP BY ALL ORDER BY ALL',
    );
    const seen = new Map<string, number>();
    for (const slice of handlers) {
      const key = `${trackName.get(slice.tid)}/${slice.name}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    expect([...seen.entries()].sort()).toEqual(counts.map(([a, s, n]) => [`${a}/${s}`, n]));
    expect(counts.map(([a, s]) => `${a}/${s}`)).toEqual(['alpha/ticks', 'gateway/orders', 'strategy/ticks']);
    for (const slice of handlers) {
      expect(slice.args).toMatchObject({ stream: slice.name, seq: expect.any(Number) });
      expect(Math.abs(slice.dur! * 1000 - Number(slice.args!.processing_ns))).toBeLessThan(1.5);
      expect(Number(slice.args!.queue_wait_ns)).toBeGreaterThanOrEqual(0);
    }
    const [[start, end]] = (await sql(
      "SELECT start_t, end_t FROM timings WHERE actor = 'gateway' AND stream = 'orders' AND seq = 7",
    )) as [[number, number]];
    const order7 = handlers.find((s) => trackName.get(s.tid) === 'gateway' && s.args!.seq === 7)!;
    expect(order7.ts).toBeCloseTo(start / 1000, 3);
    expect(order7.ts + order7.dur!).toBeCloseTo(end / 1000, 3);
  });

  it('draws a flow arrow from the call that produced each message to each call that handled it', async () => {
    const { flows, trackName, sliceAt } = full;
    const byId = new Map<number | string, Event[]>();
    for (const flow of flows) byId.set(flow.id!, [...(byId.get(flow.id!) ?? []), flow]);
    // Every handled order came from a strategy's handling of a tick: one arrow each.
    const handledOrders = (
      await sql("SELECT count(*)::INTEGER FROM timings WHERE stream = 'orders'")
    )[0]?.[0];
    expect(byId.size).toBe(handledOrders);
    for (const [id, ends] of byId) {
      expect(ends.map((e) => e.ph).sort(), `flow ${id}`).toEqual(['f', 's']);
      const from = ends.find((e) => e.ph === 's')!;
      const to = ends.find((e) => e.ph === 'f')!;
      expect([to.bp, to.cat, to.name]).toEqual(['e', from.cat, from.name]);
      const parent = sliceAt(from.tid, from.ts);
      const child = sliceAt(to.tid, to.ts);
      expect(parent?.cat, `flow ${id} leaves a handler slice`).toBe('handler');
      expect(child?.cat, `flow ${id} ends in a handler slice`).toBe('handler');
      expect(child!.args!.parent).toBe(`${parent!.name} #${parent!.args!.seq}`);
    }
    // One known pair, from the tree of a fill: the tick's call in the strategy → the order's call in the gateway.
    const tree = await runDorsal(['tree', '--data', dir, '--message', 'fills:5', '--json']);
    const [{ root }] = JSON.parse(tree.stdout) as [
      { root: { stream: string; seq: number; children: { stream: string; seq: number }[] } },
    ];
    expect(root.stream).toBe('ticks');
    const order = root.children.find((c) => c.stream === 'orders')!;
    const into = flows.find(
      (f) =>
        f.ph === 'f' && trackName.get(f.tid) === 'gateway' && sliceAt(f.tid, f.ts)?.args?.seq === order.seq,
    )!;
    const out = flows.find((f) => f.ph === 's' && f.id === into.id)!;
    expect(trackName.get(out.tid)).toBe('strategy');
    expect(sliceAt(out.tid, out.ts)?.args).toMatchObject({ stream: 'ticks', seq: root.seq });
  });

  it('puts spans as slices on their thread’s track, log entries as instants and measures as counters', () => {
    const { spans, logs, counters, trackName, handlers } = full;
    const on = (events: Event[], track: string, name: string) =>
      events.filter((e) => trackName.get(e.tid) === track && e.name === name);
    const handles = on(spans, 'alpha', 'handle');
    expect(handles).toHaveLength(TICKS);
    expect(on(spans, 'alpha', 'inner')).toHaveLength(TICKS);
    expect(on(spans, 'main', 'main-wait')).toHaveLength(1);
    // A span opened in a handler lies within the handler's slice.
    const alphaCalls = handlers.filter((h) => trackName.get(h.tid) === 'alpha');
    for (const handle of handles) {
      expect(
        alphaCalls.some((h) => h.ts <= handle.ts && handle.ts + handle.dur! <= h.ts + h.dur! + 1e-6),
      ).toBe(true);
    }
    const handled = on(logs, 'alpha', 'tick handled');
    expect(handled).toHaveLength(TICKS);
    expect(handled.every((e) => e.s === 't' && e.args!.level === 'info' && e.args!.target === 'alpha')).toBe(
      true,
    );
    expect(handled.map((e) => (e.args!.properties as { n: number }).n).sort((a, b) => a - b)).toEqual(
      Array.from({ length: TICKS }, (_, i) => i),
    );
    expect(on(logs, 'main', 'system made')).toHaveLength(1);
    const prices = on(counters, 'alpha', 'price');
    expect(prices).toHaveLength(TICKS);
    expect(prices.every((e) => typeof e.args!.usd === 'number')).toBe(true);
    expect(on(counters, 'main', 'main.ticks').map((e) => e.args)).toEqual([{ ticks: TICKS }]);
    // A counter belongs to the process whatever its tid: its id says whose it is.
    expect(counters.every((e) => e.id === trackName.get(e.tid))).toBe(true);
  });

  it('--begin/--end keep the events of a window, as offsets or RFC 3339 times alike', async () => {
    const times = full.handlers.map((h) => h.ts).sort((a, b) => a - b);
    const begin = times[Math.floor(times.length * 0.25)]!;
    const end = times[Math.floor(times.length * 0.6)]!;
    const offsets = await runDorsal([
      'trace',
      '--json',
      '--data',
      dir,
      '--begin',
      `+${begin}us`,
      '--end',
      `+${end}us`,
      '-o',
      file('window.json'),
    ]);
    expect(offsets.code, offsets.stderr).toBe(0);
    expect(JSON.parse(offsets.stdout)).toMatchObject({
      window: { beginNs: Math.round(begin * 1000), endNs: Math.round(end * 1000) },
      leftOut: 0,
    });
    const window = load(file('window.json'));
    const inWindow = window.events.filter(timed);
    expect(inWindow.length).toBeGreaterThan(0);
    expect(inWindow.length).toBeLessThan(full.events.filter(timed).length);
    for (const e of inWindow) {
      expect(e.ts).toBeGreaterThanOrEqual(begin);
      expect(e.ts).toBeLessThanOrEqual(end);
    }
    // Just the events of the full trace within the window.
    expect(window.handlers.length).toBe(full.handlers.filter((h) => h.ts >= begin && h.ts < end).length);
    expect(window.flows.every((f) => window.sliceAt(f.tid, f.ts)?.cat === 'handler')).toBe(true);
    const startNs = (await sql('SELECT start_ns::VARCHAR FROM processes'))[0]?.[0];
    const at = (us: number) => formatRfc3339Ns(BigInt(String(startNs)) + BigInt(Math.round(us * 1000)));
    const calendar = await runDorsal([
      'trace',
      '--data',
      dir,
      '--begin',
      at(begin),
      '--end',
      at(end),
      '-o',
      file('calendar.json'),
    ]);
    expect(calendar.code, calendar.stderr).toBe(0);
    expect(load(file('calendar.json')).events).toEqual(window.events);
    // A window of times before the process: said as such (not as `+-2.00 s`), and nothing in it.
    const before = await runDorsal([
      'trace',
      '--data',
      dir,
      '--begin',
      at(-3e6),
      '--end',
      at(-2e6),
      '-o',
      file('before.json'),
    ]);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toMatch(/, 3\.00 s before its start to 2\.00 s before its start;/);
    expect(before.stdout).toContain(
      'the window holds none of its events: see `dorsal processes` for when it ran',
    );
    expect(calendar.stdout).not.toContain('the window holds none');
    expect(load(file('before.json')).events.filter(timed)).toEqual([]);
  });

  it('--limit keeps the earliest events and says how many it left out', async () => {
    const run = await runDorsal(['trace', '--data', dir, '--limit', '50', '-o', file('limited.json')]);
    expect(run.code, run.stderr).toBe(0);
    const leftOut = /^dorsal: left out ([\d,]+) events from \+\S+ [nµm]?s on, to keep to --limit 50/.exec(
      run.stderr,
    );
    expect(leftOut, run.stderr).not.toBeNull();
    const limited = load(file('limited.json'));
    const kept = limited.events.filter(timed).length;
    expect(kept).toBeLessThanOrEqual(50);
    expect(kept + Number(leftOut![1]!.replaceAll(',', ''))).toBe(full.events.filter(timed).length);
    expect(limited.trace.metadata['dorsal-left-out']).toBe(Number(leftOut![1]!.replaceAll(',', '')));
    // The earliest: nothing left out comes before what was kept.
    const last = Math.max(...limited.events.filter(timed).map((e) => e.ts));
    const keptTimes = new Set(limited.events.filter(timed).map((e) => `${e.ph}${e.tid}@${e.ts}`));
    const dropped = full.events.filter(timed).filter((e) => !keptTimes.has(`${e.ph}${e.tid}@${e.ts}`));
    expect(dropped.every((e) => e.ts >= last)).toBe(true);
  });

  it('reads the same trace through a server that answers few rows at a time', async () => {
    const serve = await startDorsalServe(['--port', '0', '--data', dir, '--query-rows', '7']);
    try {
      const run = await runDorsal(['trace', '--url', serve.url, '-o', file('remote.json')]);
      expect(run.code, run.stderr).toBe(0);
      expect(load(file('remote.json')).events).toEqual(full.events);
    } finally {
      await serve.stop();
    }
  }, 120_000);

  it('-o - streams the trace to stdout and says what it wrote on stderr', async () => {
    const run = await runDorsal(['trace', '--data', dir, '-o', '-']);
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as TraceJson).traceEvents).toEqual(full.events);
    expect(run.stderr).toMatch(/^wrote the trace to stdout: [\d,]+ handler calls, /);
    const json = await runDorsal(['trace', '--data', dir, '-o', '-', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as TraceJson).traceEvents).toEqual(full.events);
    expect((JSON.parse(json.stderr) as { written: { handler_calls: number } }).written.handler_calls).toBe(
      full.handlers.length,
    );
  }, 120_000);

  it('-o through a symbolic link writes the file it names; -o a FIFO writes into it, never a file in its place', async () => {
    const target = file('linked.json');
    const link = file('link.json');
    symlinkSync(target, link);
    const linked = await runDorsal(['trace', '--data', dir, '-o', link]);
    expect(linked.code, linked.stderr).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect((JSON.parse(readFileSync(target, 'utf8')) as TraceJson).traceEvents).toEqual(full.events);
    expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
    // A FIFO (as /dev/null is a device): what reads it gets the trace, and it stays a FIFO.
    const fifo = file('trace.fifo');
    execFileSync('mkfifo', [fifo]);
    const reading = new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      createReadStream(fifo)
        .on('data', (chunk) => chunks.push(chunk as Buffer))
        .on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
        .on('error', reject);
    });
    const piped = await runDorsal(['trace', '--data', dir, '-o', fifo]);
    expect(piped.code, piped.stderr).toBe(0);
    expect((JSON.parse(await reading) as TraceJson).traceEvents).toEqual(full.events);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    // /dev/stdout, a socket here (a pipe in a shell): written as -o - is (it was ENOENT).
    const stdout = await runDorsal(['trace', '--data', dir, '-o', '/dev/stdout']);
    expect(stdout.code, stdout.stderr).toBe(0);
    expect((JSON.parse(stdout.stdout) as TraceJson).traceEvents).toEqual(full.events);
    expect(stdout.stderr).toMatch(/^wrote the trace to stdout: /);
    // A chain of links to nothing yet: the file at its end is made, every link kept.
    const first = file('first-link.json');
    const second = file('second-link.json');
    symlinkSync(second, first);
    symlinkSync(file('chained.json'), second);
    const chained = await runDorsal(['trace', '--data', dir, '-o', first]);
    expect(chained.code, chained.stderr).toBe(0);
    expect([lstatSync(first).isSymbolicLink(), lstatSync(second).isSymbolicLink()]).toEqual([true, true]);
    expect((JSON.parse(readFileSync(file('chained.json'), 'utf8')) as TraceJson).traceEvents).toEqual(
      full.events,
    );
  }, 120_000);

  it('interrupted (SIGINT, SIGTERM) while writing, leaves no half file and ends by the signal', async () => {
    // A server that answers one row at a time, stopped once the trace has begun: the export is
    // caught half way, its partial file open.
    const serve = await startDorsalServe(['--port', '0', '--data', dir, '--query-rows', '1']);
    try {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        const output = file(`interrupted-${signal}.json`);
        const trace = spawnDorsal(['trace', '--url', serve.url, '-o', output]);
        const exited = once(trace, 'exit');
        const partial = () => readdirSync(dir).filter((f) => f.startsWith(`${basename(output)}.partial-`));
        await until(() => partial().length === 1, 'the partial trace file');
        serve.child.kill('SIGSTOP');
        try {
          trace.kill(signal);
          const [code, endedBy] = (await exited) as [number | null, NodeJS.Signals | null];
          expect({ code, endedBy }).toEqual({ code: null, endedBy: signal });
        } finally {
          serve.child.kill('SIGCONT');
        }
        expect(partial()).toEqual([]);
        expect(existsSync(output)).toBe(false);
      }
    } finally {
      await serve.stop();
    }
  }, 120_000);

  it('says what went wrong in one line, exits 1 and leaves no file', async () => {
    const outDir = `${dir}-out`;
    const failures: [string[], RegExp][] = [
      [['trace', '--data', dir], /required option '-o, --output <file>' not specified/],
      [['trace', '--data', dir, '--begin', 'soon', '-o', file('bad.json')], /RFC 3339 time .* or an offset/],
      [['trace', '--data', dir, '--end', '+2h', '-o', file('bad.json')], /RFC 3339 time .* or an offset/],
      [
        ['trace', '--data', dir, '--process', 'ffffffff', '-o', file('bad.json')],
        /^dorsal: no process ffffffff in .*: `dorsal processes` lists them/,
      ],
      [
        ['trace', '--data', dir, '--begin', '+2s', '--end', '+1s', '-o', file('bad.json')],
        /^dorsal: --end \+1s is not after --begin \+2s/,
      ],
      [['trace', '--data', join(dir, 'nope'), '-o', file('bad.json')], /^dorsal: no lake in .*nope/],
      [
        ['trace', '--data', dir, '-o', join(dir, 'no-dir', 'x.json')],
        /^dorsal: cannot write .*x\.json \(ENOENT\)/,
      ],
      // Written, then not moved into place: the half file is removed.
      [['trace', '--data', dir, '-o', outDir], /^dorsal: cannot write .* \(EISDIR\)/],
      // Inside the lake: refused before anything is written (it could be the lake's own file).
      [
        ['trace', '--data', dir, '-o', join(dir, 'lake.sqlite')],
        /^dorsal: -o .*lake\.sqlite is the lake's own lake\.sqlite in .*: write it elsewhere/,
      ],
    ];
    mkdirSync(outDir);
    for (const [args, message] of failures) {
      const { code, stderr } = await runDorsal(args);
      expect(code, args.join(' ')).toBe(1);
      expect(stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(stderr, args.join(' ')).toMatch(message);
    }
    expect(existsSync(file('bad.json'))).toBe(false);
    expect(
      readdirSync(dirname(dir)).filter((f) => f.startsWith(basename(dir)) && f.includes('.partial-')),
    ).toEqual([]);
    rmSync(outDir, { recursive: true });
    const help = await runDorsal(['trace', '--help']);
    expect(help.stdout).toMatch(/Example/);
  });
});

describe('the times --begin and --end take', () => {
  it('are offsets from the process start, to the nanosecond, or RFC 3339 times', () => {
    expect(traceTime('+2s')).toMatchObject({ kind: 'offset', ns: 2e9 });
    expect(traceTime('+500ms')).toMatchObject({ kind: 'offset', ns: 5e8 });
    expect(traceTime('+1.5m')).toMatchObject({ kind: 'offset', ns: 90e9 });
    expect(traceTime('+250µs')).toMatchObject({ kind: 'offset', ns: 250_000 });
    expect(traceTime('+250μs')).toMatchObject({ kind: 'offset', ns: 250_000 });
    expect(traceTime('+149760m')).toMatchObject({ kind: 'offset', ns: 149_760 * 60e9 });
    for (const huge of ['+1000000000000000000000m', `+${'9'.repeat(400)}s`]) {
      expect(() => traceTime(huge), huge).toThrow(/the offset .* is too large/);
    }
    expect(traceTime('+0.0004us')).toMatchObject({ kind: 'offset', ns: 0 });
    expect(traceTime('2026-01-02T10:00:01.5+01:00')).toMatchObject({
      kind: 'time',
      epochNs: 1_767_344_401_500_000_000n,
    });
    for (const bad of ['2s', '+2h', '+-1s', '+s', '', 'yesterday', '2026-13-01T00:00:00Z']) {
      expect(() => traceTime(bad), bad).toThrow(/RFC 3339 time .* or an offset/);
    }
  });
});

describe('the events a span and a flow become', () => {
  const track = { pid: 1, tid: 3 };
  const span = { name: 'quote', spanId: 9, depth: 0, beginNs: 1000, async: false, closedByParent: false };

  it('a span: a slice; one never ended: a begin without end; an async one: a begin and end paired by id', () => {
    expect(spanEvents({ ...span, endNs: 3500 }, track, 1)).toEqual([
      { ph: 'X', ...track, name: 'quote', cat: 'span', ts: 1, dur: 2.5, args: { span_id: 9, depth: 0 } },
    ]);
    expect(spanEvents({ ...span, endNs: null }, track, 1).map((e) => e.ph)).toEqual(['B']);
    const pair = spanEvents({ ...span, endNs: 3500, async: true }, track, 7);
    expect(pair.map((e) => [e.ph, 'id' in e ? e.id : undefined, 'ts' in e ? e.ts : undefined])).toEqual([
      ['b', 7, 1],
      ['e', 7, 3.5],
    ]);
  });

  it('two actors’ measures of one name: two counters, told apart by id', () => {
    const measure = { timeNs: 1000, name: 'price', unit: 'usd', value: 1.5 };
    const [alpha, beta] = [
      counterSample(measure, { pid: 1, tid: 2 }, 'alpha'),
      counterSample(measure, { pid: 1, tid: 3 }, 'beta'),
    ];
    expect(alpha).toMatchObject({ ph: 'C', name: 'price', id: 'alpha', ts: 1, args: { usd: 1.5 } });
    expect(`${alpha.name}[${alpha.id}]`).not.toBe(`${beta.name}[${beta.id}]`);
  });

  it('a flow binds half a nanosecond into a slice: after its start, before what it nests', () => {
    expect(bindingPoint({ track, startT: 1000.4, endT: 2000 })).toBe(1.0005);
    expect(bindingPoint({ track, startT: 1000, endT: 1001 })).toBe(1.0005);
    expect(bindingPoint({ track, startT: 1000, endT: 1000.2 })).toBe(1);
  });
});
