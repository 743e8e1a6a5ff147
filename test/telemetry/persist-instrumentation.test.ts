import { afterEach, describe, expect, it } from 'vitest';
import {
  currentThreadBuffers,
  type LayoutDescription,
  logger,
  MAX_SPAN_DEPTH,
  metric,
  type PersistReport,
  System,
  span,
} from '../../src/index.js';
import {
  type PersistedSpanEvent,
  persistedLogs,
  persistedMetrics,
  persistedSpans,
  readPersisted,
} from '../../src/persist.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { StreamRow } from '../../src/telemetry/lake/types.js';
import { spine } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { tempDir } from './fixtures.js';
import { streamOf } from './persisted.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Reads what a stopped system's persister wrote. */
async function readRun(dir: string, report: { persist?: PersistReport }) {
  const lake = Lake.open({ data: dir });
  try {
    const processId = report.persist!.processId;
    const [process] = await lake.processes();
    const data = await readPersisted(lake, processId);
    const blocks = new Map<string, number>();
    for (const d of data)
      blocks.set(d.stream.streamId, (await lake.blocks({ streamId: d.stream.streamId })).length);
    return { process: process!, data, blocks };
  } finally {
    await lake.close();
  }
}

/**
 * Decodes a log block with nothing but what its stream declares, as a reader without dorsal's
 * code would (see docs/persisting.md): each record's sequence, target and message.
 */
function logBlockByHand(stream: StreamRow, dependencies: Uint8Array, objects: Uint8Array) {
  const layout = (i: number) => stream.dependenciesLayouts[i]!;
  const field = (l: LayoutDescription, name: string) => l.fields.find((f) => f.name === name)!.offset;
  const [coverageAt, dropsAt, stringsAt] = stream.properties.dependencies_offsets!.split(',').map(Number);
  const deps = new DataView(dependencies.buffer, dependencies.byteOffset, dependencies.byteLength);
  const coverage = ['first_seq', 'end_seq', 'lost_total'].map((f) =>
    deps.getFloat64(coverageAt! + field(layout(0), f), true),
  );
  const dropped = deps.getFloat64(dropsAt! + field(layout(1), 'strings_total'), true);
  const entry = layout(2);
  const strings = new Map<number, string>();
  for (let at = stringsAt!; at + entry.size <= dependencies.length; at += entry.size) {
    const text = at + field(entry, 'text');
    const bytes = dependencies.subarray(text + 2, text + 2 + deps.getUint16(text, true));
    strings.set(deps.getUint32(at + field(entry, 'id'), true), new TextDecoder().decode(bytes));
  }
  const recordBytes = Number(stream.properties.record_bytes);
  const [, eventAt] = stream.properties.layout_offsets!.split(',').map(Number);
  const event = stream.objectsLayouts[1]!;
  const view = new DataView(objects.buffer, objects.byteOffset, objects.byteLength);
  const records = [];
  for (let base = 0; base + recordBytes <= objects.length; base += recordBytes) {
    const id = (name: string) => view.getUint32(base + eventAt! + field(event, name), true);
    records.push([view.getFloat64(base, true), strings.get(id('target')), strings.get(id('template'))]);
  }
  return { coverage, dropped, records };
}

/** Span begins by id, with their ends: each begin's end must follow, at the same depth and parent. */
function spansById(events: readonly PersistedSpanEvent[]) {
  const begins = new Map<number, PersistedSpanEvent>();
  for (const e of events) {
    if (e.kind === 'begin') {
      expect(begins.has(e.id), `span id ${e.id} given once`).toBe(false);
      begins.set(e.id, e);
    } else {
      const begin = begins.get(e.id)!;
      expect([e.kind, e.name, e.parent, e.depth]).toEqual(['end', begin.name, begin.parent, begin.depth]);
    }
  }
  return begins;
}

describe('the persister records every thread’s instrumentation', () => {
  it('logs, metrics and spans of two actors and the main thread come back with values, levels, targets, properties and nesting; a filtered-out level records nothing', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const ticks = 40;
    // Small blocks: every stream is cut into several, and each must carry the strings it names.
    const system = new System(spine, { persist: { data: dir, blockBytes: 2048 } });
    const main = logger('main-app');
    main.info('system made', { ticks, ok: true, label: 'first' });
    main.debug('hidden', { ticks });
    system.spawn(fixture('feed'), { args: { count: ticks, perLoop: 10 } });
    system.spawn(fixture('instrumented'), { args: { name: 'alpha' } });
    system.spawn(fixture('instrumented'), { args: { name: 'beta' }, thread: 'beta-thread' });
    await system.start();
    span('main-wait', () => metric('main.ticks', ticks, 'ticks'));
    await until(() => system.spine.queue(0).stats().published === ticks, 'every tick');
    const report = await system.stop();
    const base = system.spine.control.clockBaseNs;
    const { process, data, blocks } = await readRun(dir, report);
    expect(process.properties['dorsal.clock_base_ns']).toBe(String(base));
    // Any block decodes on its own, from what its stream declares, without dorsal's code.
    const alpha = streamOf(data, 'log', 'actor-1');
    const lake = Lake.open({ data: dir });
    try {
      const rows = await lake.blocks({ streamId: alpha.stream.streamId });
      const { payload } = await lake.readBlock(rows[1]!);
      const byHand = logBlockByHand(alpha.stream, payload.dependencies, payload.objects);
      const [first, end, lost] = byHand.coverage;
      const covered = persistedLogs(alpha).filter((e) => e.seq >= first! && e.seq < end!);
      expect(covered.length).toBeGreaterThan(0);
      expect(byHand.records).toEqual(covered.map((e) => [e.seq, e.target, e.message]));
      expect([lost, byHand.dropped]).toEqual([0, 0]);
    } finally {
      await lake.close();
    }

    for (const [name, thread] of [
      ['alpha', 'actor-1'],
      ['beta', 'beta-thread'],
    ] as const) {
      const logs = streamOf(data, 'log', thread);
      const props = logs.stream.properties;
      expect([props.actor, props.clock_base_ns]).toEqual([name, String(base)]);
      expect(Number(props.thread_id)).toBeGreaterThan(0);
      expect(blocks.get(logs.stream.streamId)).toBeGreaterThan(1);
      const entries = persistedLogs(logs);
      // Loaded before its first loop: 'started', from the worker that the stream names.
      expect(entries[0]).toMatchObject({
        level: 'info',
        target: name,
        message: 'started',
        span: 0,
        properties: { thread: Number(props.thread_id) },
      });
      // One info per tick; the debug beside it, below the default level, is nowhere.
      const handled = entries.slice(1);
      expect(handled.map((e) => [e.level, e.target, e.message, e.properties])).toEqual(
        Array.from({ length: ticks }, (_, n) => [
          'info',
          name,
          'tick handled',
          { n, odd: n % 2 === 1, who: name },
        ]),
      );
      const spans = persistedSpans(streamOf(data, 'spans', thread));
      const begins = spansById(spans);
      expect(spans).toHaveLength(4 * ticks);
      const metrics = persistedMetrics(streamOf(data, 'metrics', thread));
      expect(metrics).toHaveLength(2 * ticks);
      handled.forEach((entry, n) => {
        // The entry was written inside 'inner', itself inside 'handle', a top-level span.
        const inner = begins.get(entry.span)!;
        expect([inner.name, inner.depth]).toEqual(['inner', 1]);
        const outer = begins.get(inner.parent)!;
        expect([outer.name, outer.depth, outer.parent]).toEqual(['handle', 0, 0]);
        const [price, tick] = [metrics[2 * n]!, metrics[2 * n + 1]!];
        expect([price.name, price.unit, price.value, price.kind, price.span]).toEqual([
          'price',
          'usd',
          100 + (n % 7),
          'float',
          outer.id,
        ]);
        expect([tick.name, tick.unit, tick.value, tick.kind]).toEqual(['tick', 'count', n, 'integer']);
      });
      expect(report.persist!.sources.filter((s) => s.name === thread)).toEqual([
        { kind: 'log', name: thread, persisted: ticks + 1, lost: 0, dropped: 0 },
        { kind: 'metrics', name: thread, persisted: 2 * ticks, lost: 0, dropped: 0 },
        { kind: 'spans', name: thread, persisted: 4 * ticks, lost: 0, dropped: 0 },
      ]);
    }

    // The main thread had no buffers: the system gave it some on the spine's clock.
    const mainLogs = streamOf(data, 'log', 'main');
    expect(mainLogs.stream.properties.clock_base_ns).toBe(String(base));
    expect(mainLogs.stream.properties.thread_id).toBe('0');
    expect(mainLogs.stream.properties.actor).toBeUndefined();
    expect(persistedLogs(mainLogs).map((e) => [e.level, e.target, e.message, e.properties])).toEqual([
      ['info', 'main-app', 'system made', { ticks, ok: true, label: 'first' }],
    ]);
    const [wait] = persistedSpans(streamOf(data, 'spans', 'main'));
    expect([wait!.name, wait!.depth, wait!.parent]).toEqual(['main-wait', 0, 0]);
    expect(persistedMetrics(streamOf(data, 'metrics', 'main'))).toMatchObject([
      { name: 'main.ticks', unit: 'ticks', value: ticks, span: wait!.id },
    ]);
    // Every event of the lake, counted once per thread and queue.
    expect(data.filter((d) => ['log', 'metrics', 'spans'].includes(d.stream.tags[0]!)).length).toBe(9);
  });

  it('a thread that already records keeps its buffers under a new system: its streams name their clock base, and its times rebase exactly', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    // The main thread records before any system of this test: its buffers are on a clock of their own.
    logger('main-app').info('before any system');
    const mainBase = currentThreadBuffers().clockBaseNs;
    const system = new System(spine, { persist: { data: dir } });
    expect(system.spine.control.clockBaseNs).not.toBe(mainBase);
    system.spawn(fixture('feed'), { args: { count: 1 } });
    await system.start();
    logger('main-app').info('during the run');
    const report = await system.stop();
    const end = system.spine.clock.now();
    const { data } = await readRun(dir, report);
    const mainLogs = streamOf(data, 'log', 'main');
    expect(mainLogs.stream.properties.clock_base_ns).toBe(String(mainBase));
    // Recorded after the system was made: only what belongs to the run.
    const [entry] = persistedLogs(mainLogs);
    expect(persistedLogs(mainLogs)).toHaveLength(1);
    expect(entry!.message).toBe('during the run');
    // On the spine's clock: within the run, and within its block's begin and end.
    const rebased = entry!.t + mainBase - system.spine.control.clockBaseNs;
    expect(rebased).toBeGreaterThan(0);
    expect(rebased).toBeLessThan(end);
    const lake = Lake.open({ data: dir });
    try {
      const [block] = await lake.blocks({ streamId: mainLogs.stream.streamId });
      expect(block!.beginTicks).toBe(Math.round(rebased));
    } finally {
      await lake.close();
    }
  });

  it('what a thread drops at the source, and what the persister is lapped by, reach the lake and the report', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const templates = 5000;
    const extraDepth = 2;
    const done = new Int32Array(new SharedArrayBuffer(4));
    const system = new System(spine, { persist: { data: dir } });
    // 5000 entries in the main thread between the system's making and its persister's start: a
    // queue of 4096 is lapped before the persister reads it.
    const main = logger('burst');
    for (let i = 0; i < 5000; i++) main.info('burst', { i });
    system.spawn(fixture('flood'), { args: { templates, extraDepth, done: done.buffer } });
    await system.start();
    // SC load: seeing the flood's SC store of 1, every event it recorded before is in its buffers.
    await until(() => Atomics.load(done, 0) === 1, 'the flood');
    const report = await system.stop();
    const { data } = await readRun(dir, report);
    const sources = report.persist!.sources;

    // The flood's table holds 4096 strings: '', 'deep', 'flood', then templates until full.
    const recorded = 4096 - 3;
    const floodLogs = streamOf(data, 'log', 'actor-0');
    expect(persistedLogs(floodLogs).map((e) => e.message)).toEqual(
      Array.from({ length: recorded }, (_, i) => `template ${i}`),
    );
    expect(floodLogs.dropped).toEqual({ strings: templates - recorded, depth: 0 });
    expect(sources.find((s) => s.kind === 'log' && s.name === 'actor-0')).toEqual({
      kind: 'log',
      name: 'actor-0',
      persisted: recorded,
      lost: 0,
      dropped: templates - recorded,
    });
    const floodSpans = streamOf(data, 'spans', 'actor-0');
    expect(floodSpans.dropped).toEqual({ strings: 0, depth: extraDepth });
    expect(sources.find((s) => s.kind === 'spans' && s.name === 'actor-0')!.dropped).toBe(extraDepth);
    // 128 spans were open: all ended by the outermost, the inner ones flagged.
    const spans = persistedSpans(floodSpans);
    expect(spans.filter((s) => s.kind === 'begin').map((s) => s.depth)).toEqual(
      Array.from({ length: MAX_SPAN_DEPTH }, (_, d) => d),
    );
    expect(spans.filter((s) => s.closedByParent)).toHaveLength(MAX_SPAN_DEPTH - 1);

    // The main thread's burst: every entry is in the lake or counted lost there, and in the report.
    const mainLogs = streamOf(data, 'log', 'main');
    expect(mainLogs.lost).toBeGreaterThanOrEqual(5000 - 4096);
    expect(mainLogs.records.length + mainLogs.lost).toBe(5000);
    expect(mainLogs.covered).toBe(5000);
    expect(sources.find((s) => s.kind === 'log' && s.name === 'main')).toMatchObject({
      persisted: mainLogs.records.length,
      lost: mainLogs.lost,
      dropped: 0,
    });
    // What it kept is the newest, in order.
    expect(persistedLogs(mainLogs).map((e) => e.properties.i)).toEqual(
      mainLogs.records.map((_, k) => 5000 - mainLogs.records.length + k),
    );
    // The persister says so in its own thread's log, for people.
    const warnings = persistedLogs(streamOf(data, 'log', 'persister'));
    expect(warnings.map((w) => [w.level, w.target, w.message, w.properties.lost])).toContainEqual([
      'warn',
      'dorsal.persister',
      'lapped: records lost',
      mainLogs.lost,
    ]);
  });

  it("a restarted actor's replacement records on in the same buffers; an actor spawned mid-run is recorded too", async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const ticks = 20;
    const system = new System(spine, { persist: { data: dir } });
    system.spawn(fixture('feed'), { args: { count: ticks } });
    system.spawn(fixture('instrumented'), { args: { name: 'phoenix', crashAt: 5 }, restarts: 1 });
    await system.start();
    await until(() => system.spine.queue(0).stats().published === ticks, 'every tick');
    await system.spawn(fixture('instrumented'), { args: { name: 'late' } }).ready;
    const report = await system.stop();
    expect(report.crashes.map((c) => c.actor)).toEqual(['phoenix']);
    const { data } = await readRun(dir, report);

    // One stream per queue for both incarnations: the second resumed where the first stopped.
    const logs = persistedLogs(streamOf(data, 'log', 'actor-1'));
    const started = logs.filter((e) => e.message === 'started');
    expect(started).toHaveLength(2);
    expect(started[0]!.properties.thread).not.toBe(started[1]!.properties.thread);
    const handled = logs.filter((e) => e.message === 'tick handled').map((e) => e.properties.n);
    expect(handled).toEqual(Array.from({ length: ticks }, (_, n) => n).filter((n) => n !== 5));
    expect(logs.map((e) => e.seq)).toEqual(logs.map((_, i) => i));
    // Span ids go on past the first incarnation's: each is given once.
    spansById(persistedSpans(streamOf(data, 'spans', 'actor-1')));

    const late = streamOf(data, 'log', 'actor-2');
    expect(late.stream.properties.actor).toBe('late');
    expect(persistedLogs(late).map((e) => e.message)).toEqual(['started']);
  });
});
