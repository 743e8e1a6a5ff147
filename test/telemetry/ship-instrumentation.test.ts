import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, createThreadBuffers, type PersistReport } from '../../src/index.js';
import {
  persistedLogs,
  persistedMetrics,
  persistedSpans,
  readPersisted,
  shipInstrumentation,
} from '../../src/persist.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { runCompiledChild } from '../helpers/child.js';
import { tempDir } from './fixtures.js';
import { streamOf } from './persisted.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('a plain process ships its own instrumentation', () => {
  it('its main thread’s and a worker’s logs, metrics and spans reach an embedded lake, as a system’s would', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const { out, code } = await runCompiledChild(
      ['test/fixtures/instrumentation/ship-child.ts', dir],
      60_000,
    );
    expect(code).toBe(0);
    const { processId, report } = JSON.parse(out.trim().split('\n').at(-1)!) as {
      processId: string;
      report: PersistReport;
    };
    expect(report.flushed).toBe(true);
    const lake = Lake.open({ data: dir });
    try {
      const [process] = await lake.processes();
      expect(process!.processId).toBe(processId);
      expect(process!.properties.service).toBe('plain');
      const data = await readPersisted(lake, processId);

      // The main thread: what it logged before the shipping began (still in its buffers) and after.
      const main = streamOf(data, 'log', 'main');
      expect(main.stream.properties.clock_base_ns).toBe(process!.properties['dorsal.clock_base_ns']);
      expect(persistedLogs(main).map((e) => [e.level, e.target, e.message, e.properties])).toEqual([
        ['info', 'plain', 'before shipping', { early: true }],
        ['warn', 'plain', 'working', { step: 2 }],
      ]);
      const [work] = persistedSpans(streamOf(data, 'spans', 'main'));
      expect(persistedMetrics(streamOf(data, 'metrics', 'main'))).toMatchObject([
        { name: 'work.ms', unit: 'ms', value: 2.5, kind: 'float', span: work!.id },
      ]);

      // The worker's buffers, given as `threads`: the emitter's `everything` script.
      const helper = persistedLogs(streamOf(data, 'log', 'helper'));
      expect(helper.map((e) => [e.level, e.message, e.properties])).toEqual([
        ['info', 'started', { n: 1, ok: true, who: 'helper' }],
        ['warn', 'inside outer', {}],
        ['error', 'failed', { code: 500, reason: 'no route from helper' }],
      ]);
      const spans = persistedSpans(streamOf(data, 'spans', 'helper'));
      const [outer, inner] = spans.filter((s) => s.kind === 'begin');
      expect([outer!.name, outer!.depth, inner!.name, inner!.depth, inner!.parent]).toEqual([
        'outer',
        0,
        'inner',
        1,
        outer!.id,
      ]);
      expect(helper[1]!.span).toBe(outer!.id);
      expect(
        persistedMetrics(streamOf(data, 'metrics', 'helper')).map((m) => [m.name, m.value, m.unit, m.span]),
      ).toEqual([
        ['depth', 42.5, 'levels', inner!.id],
        ['count', 7, 'items', inner!.id],
      ]);
      expect(report.sources.filter((s) => s.name === 'helper')).toEqual([
        { kind: 'log', name: 'helper', persisted: 3, lost: 0, dropped: 0 },
        { kind: 'metrics', name: 'helper', persisted: 2, lost: 0, dropped: 0 },
        { kind: 'spans', name: 'helper', persisted: 4, lost: 0, dropped: 0 },
      ]);
    } finally {
      await lake.close();
    }
  });

  it('events recorded after the thread’s last read, before the stop settles: counted lost, in the report and in the lake', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const { out, code } = await runCompiledChild(
      ['test/fixtures/instrumentation/ship-late-child.ts', dir],
      60_000,
    );
    expect(code).toBe(0);
    const { processId, report } = JSON.parse(out.trim().split('\n').at(-1)!) as {
      processId: string;
      report: PersistReport;
    };
    expect(report.sources.find((s) => s.kind === 'log' && s.name === 'main')).toEqual({
      kind: 'log',
      name: 'main',
      persisted: 3,
      lost: 5,
      dropped: 0,
    });
    const lake = Lake.open({ data: dir });
    try {
      const main = streamOf(await readPersisted(lake, processId), 'log', 'main');
      expect(persistedLogs(main).map((e) => e.message)).toEqual(Array(3).fill('before the stop'));
      expect([main.lost, main.covered]).toEqual([5, 8]);
    } finally {
      await lake.close();
    }
    // The persister's account of the stream is in the lake too (the stop's counts, of no actor).
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const { rows } = await analytics.query(
        "SELECT a.from_seq::INTEGER, a.end_seq::INTEGER, a.lost::INTEGER, l.unrecorded::INTEGER FROM persister_accounts a JOIN losses l ON l.stream = 'log:main' AND l.counted_by = 'persister' WHERE a.name = 'main' AND list_contains(a.tags::VARCHAR[], 'log')",
        { process: processId },
      );
      expect(rows).toEqual([[0, 8, 5, 0]]);
      const runs = await analytics.query('SELECT drained, refused::INTEGER FROM run_counts', {
        process: processId,
      });
      expect(runs.rows).toEqual([[true, 0]]);
    } finally {
      await analytics.close();
    }
  }, 60_000);

  it('a thread’s buffers it cannot read: those alone go unread, counted lost, and the report says why; the rest is shipped', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const { out, code } = await runCompiledChild(
      ['test/fixtures/instrumentation/ship-refused-child.ts', dir],
      60_000,
    );
    expect(code).toBe(0);
    const { processId, report } = JSON.parse(out.trim().split('\n').at(-1)!) as {
      processId: string;
      report: PersistReport;
    };
    expect(report.failure).toMatch(/^taken: /);
    // The persister's thread did not die of it: nothing started again.
    expect(report.restarts).toBeUndefined();
    expect(report.sources.find((s) => s.kind === 'log' && s.name === 'main')).toMatchObject({
      persisted: 200,
      lost: 0,
    });
    const lake = Lake.open({ data: dir });
    try {
      const main = streamOf(await readPersisted(lake, processId), 'log', 'main');
      expect(persistedLogs(main).filter((e) => e.message === 'after the refusal')).toHaveLength(200);
    } finally {
      await lake.close();
    }
  }, 60_000);

  it('refuses options it does not know, and threads that are not buffers, naming them', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const bad = [
      [{ data: dir, thread: [] }, /unknown shipInstrumentation option 'thread' \(did you mean 'threads'\?\)/],
      [{ data: dir, threads: [{ name: 'x' }] }, /not instrumentation buffers/],
      [{ data: dir, properties: { n: 1 } }, /'properties.n' must be a string/],
      [{ url: 'ftp://x' }, /http\(s\) URL/],
      [{ threads: [createThreadBuffers()] }, /exactly one of 'data'/],
    ] as const;
    for (const [options, message] of bad) {
      const attempt = shipInstrumentation(options as Parameters<typeof shipInstrumentation>[0]);
      await expect(attempt).rejects.toThrow(ConfigError);
      await expect(attempt).rejects.toThrow(message);
    }
  });
});
