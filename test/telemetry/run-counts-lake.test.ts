import { readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import { Analytics } from '../../src/analytics.js';
import { IngestionService } from '../../src/ingestion.js';
import { createViews } from '../../src/telemetry/analytics/views.js';
import { documentBlock } from '../../src/telemetry/persist/documents.js';
import {
  countsStreamInfo,
  MAX_COUNTS_ROWS,
  parseStoredCounts,
  type StoredCounts,
  storedCountsOf,
} from '../../src/telemetry/persist/run-counts.js';
import { TelemetrySink } from '../../src/telemetry/sink/sink.js';
import { compressPart, formatRfc3339Ns, type ProcessInfo } from '../../src/telemetry/wire/index.js';
import { runDorsal } from './cli-helpers.js';
import { makeProcess, tempDir } from './fixtures.js';

/** A run's counts kept in a real embedded lake (as the persister writes them at a stop), read back by the analytics. */

const COUNTS: StoredCounts = {
  streams: [
    {
      actor: 'feed',
      actorId: 0,
      stream: 'ticks',
      handled: 0,
      skipped: 0,
      lost: 0,
      poisoned: 0,
      failed: 0,
      produced: 500,
    },
    {
      actor: "o'brien",
      actorId: 1,
      stream: 'ticks',
      handled: 400,
      skipped: 3,
      lost: 97,
      poisoned: 2,
      failed: 1,
      produced: 0,
      unread: 5,
    },
  ],
  timings: [
    { observer: 'watcher', observerId: 2, actor: "o'brien", actorId: 1, handled: 390, lost: 10, unread: 6 },
    // As runs counted before `unread` was: read as 0.
    { observer: 'watcher', observerId: 2, actor: 'feed', actorId: 0, handled: 7, lost: 0 },
  ],
  refused: 4,
  drained: false,
  terminated: ['actor-2'],
  // The persister's account of two streams: neither has a block in this lake (its records and
  // coverage never came), so what it does not count lost is unrecorded.
  persisted: [
    {
      streamId: '7f1c7a52-3a8e-4f4e-9d0c-2b1f6f0d9e11',
      tags: ['messages'],
      name: 'ticks',
      from: 0,
      end: 500,
      lost: 20,
      poisoned: 1,
      dropped: 0,
    },
    {
      streamId: '0d5c2f6e-8a41-4b7e-a1f3-6c9e2d4b7a80',
      tags: ['log'],
      name: "o'brien",
      from: 10,
      end: 10,
      lost: 0,
      poisoned: 0,
      dropped: 3,
    },
  ],
};

/** Every file under `dir`, depth first. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

async function keep(service: IngestionService, process: ProcessInfo, objects: Uint8Array | StoredCounts) {
  const sink = new TelemetrySink({ target: service, process });
  const stream = countsStreamInfo(process.processId);
  sink.addStream(stream);
  const document = objects instanceof Uint8Array ? COUNTS : objects;
  const block = documentBlock(process, stream, document, 3, BigInt(Date.now()) * 1_000_000n);
  sink.push(
    objects instanceof Uint8Array
      ? { ...block, payload: { ...block.payload, objects: compressPart(objects) } }
      : block,
  );
  expect((await sink.close({ timeoutMs: 10_000 })).sent).toBe(1);
}

/** A run started now, its counts (COUNTS) kept in a new embedded lake at `data`. */
async function keptRun(data: string): Promise<ProcessInfo> {
  const run = makeProcess({ startTime: formatRfc3339Ns(BigInt(Date.now()) * 1_000_000n), startTicks: 0 });
  const service = new IngestionService({ data });
  try {
    await keep(service, run, COUNTS);
  } finally {
    await service.close();
  }
  return run;
}

describe("a run's counts in the lake", () => {
  const { dir, cleanup } = tempDir('dorsal-run-counts-');
  afterAll(cleanup);

  it('are read back as run_counts, actor_counts, timing_reads and rows of losses; a block that does not read says so', async () => {
    const now = { startTime: formatRfc3339Ns(BigInt(Date.now()) * 1_000_000n), startTicks: 0 };
    const run = makeProcess(now);
    const broken = makeProcess(now);
    const service = new IngestionService({ data: dir });
    try {
      await keep(service, run, COUNTS);
      // Counts that are not counts: a negative figure.
      const bad = { ...COUNTS, streams: [{ ...COUNTS.streams[1]!, lost: -1 }] };
      await keep(service, broken, new TextEncoder().encode(JSON.stringify(bad)));
    } finally {
      await service.close();
    }
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const rows = async (sql: string, process: string) => (await analytics.query(sql, { process })).rows;
      expect(
        await rows(
          'SELECT refused::INTEGER, drained, terminated::VARCHAR, error FROM run_counts',
          run.processId,
        ),
      ).toEqual([[4, false, '["actor-2"]', null]]);
      expect(
        await rows(
          'SELECT actor, actor_id, stream, handled::INTEGER, skipped::INTEGER, lost::INTEGER, poisoned::INTEGER, failed::INTEGER, produced::INTEGER, unread::INTEGER FROM actor_counts ORDER BY actor',
          run.processId,
        ),
        // The feed's row as runs counted before `unread` was: read as 0.
      ).toEqual([
        ['feed', 0, 'ticks', 0, 0, 0, 0, 0, 500, 0],
        ["o'brien", 1, 'ticks', 400, 3, 97, 2, 1, 0, 5],
      ]);
      expect(
        await rows(
          'SELECT observer, observer_id, actor, actor_id, handled::INTEGER, lost::INTEGER, unread::INTEGER FROM timing_reads ORDER BY actor_id',
          run.processId,
        ),
      ).toEqual([
        ['watcher', 2, 'feed', 0, 7, 0, 0],
        ['watcher', 2, "o'brien", 1, 390, 10, 6],
      ]);
      // A consumer's losses, beside the persister's (from its account alone: no block of
      // records, so 480 of its records are unrecorded): the producer-only row is no consumer's.
      expect(
        await rows(
          'SELECT stream, consumer, counted_by, lost::INTEGER, poisoned::INTEGER, dropped::INTEGER, unrecorded::INTEGER FROM losses ORDER BY ALL',
          run.processId,
        ),
      ).toEqual([
        ["log:o'brien", 'persister', 'persister', 0, 0, 3, 0],
        ['ticks', "o'brien", 'actor', 97, 2, 0, 0],
        ['ticks', 'persister', 'persister', 20, 1, 0, 480],
        ['timings:feed', 'watcher', 'observer', 0, 0, 0, 0],
        ["timings:o'brien", 'watcher', 'observer', 10, 0, 0, 0],
      ]);
      expect(
        await rows(
          'SELECT name, from_seq::INTEGER, end_seq::INTEGER, lost::INTEGER FROM persister_accounts ORDER BY name',
          run.processId,
        ),
      ).toEqual([
        ["o'brien", 10, 10, 0],
        ['ticks', 0, 500, 20],
      ]);
      // Within a time window, the losses are its blocks' coverage: the run's account is not a window's.
      const { rows: windowed } = await analytics.query(
        "SELECT count(*)::INTEGER FROM losses WHERE counted_by = 'persister'",
        { process: run.processId, begin: '2000-01-01T00:00:00Z' },
      );
      expect(windowed).toEqual([[0]]);
      // `dorsal stats` says which of the persister's losses the lake lacks the account of.
      const stats = await runDorsal(['stats', '--data', dir, '--process', run.processId]);
      expect(stats.stderr).toBe('');
      expect(stats.stdout).toContain(
        'ticks: 20 lost (1 poisoned), 480 neither in the lake nor counted lost (lost on their way with their count, or deleted by retention) by the persister (missing from the lake)',
      );
      // `dorsal trace` counts them missing from the recording.
      const trace = await runDorsal([
        'trace',
        '--data',
        dir,
        '--process',
        run.processId,
        '-o',
        join(dir, 'trace.json'),
      ]);
      expect(trace.stderr).toBe('');
      expect(trace.stdout).toContain("the recording lost 503 messages or events (log:o'brien, ticks)");
      const [unreadable] = await rows('SELECT refused, error FROM run_counts', broken.processId);
      expect(unreadable![0]).toBeNull();
      expect(String(unreadable![1])).toMatch(/^block [0-9a-f-]+: a counts block holds no run counts$/);
      expect(await rows('SELECT count(*)::INTEGER FROM actor_counts', broken.processId)).toEqual([[0]]);
    } finally {
      await analytics.close();
    }
  });

  it('are forgotten by the analytics once retention deleted their block', async () => {
    const { dir: lake, cleanup: clean } = tempDir('dorsal-run-counts-forgotten-');
    try {
      await keptRun(lake);
      const analytics = await Analytics.open({
        lake: { data: lake },
        cacheDir: join(lake, 'analytics'),
        freshnessMs: 0,
      });
      try {
        const refused = async () => (await analytics.query('SELECT refused::INTEGER FROM run_counts')).rows;
        expect(await refused()).toEqual([[4]]);
        expect(analytics.held().documents).toBe(1);
        const future = formatRfc3339Ns((BigInt(Date.now()) + 3_600_000n) * 1_000_000n);
        expect(await analytics.lake.metadata.deleteBlocksBefore(future, 100)).toHaveLength(1);
        expect(await refused()).toEqual([]);
        expect(analytics.held().documents).toBe(0);
      } finally {
        await analytics.close();
      }
    } finally {
      clean();
    }
  });

  it('refuses a document that is not counts, with a clear error', () => {
    const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
    expect(parseStoredCounts(bytes(COUNTS))).toEqual(COUNTS);
    for (const bad of [
      null,
      [1, 2],
      { ...COUNTS, refused: '4' },
      { ...COUNTS, drained: 'no' },
      { ...COUNTS, terminated: 'actor-2' },
      { ...COUNTS, streams: [{ ...COUNTS.streams[0]!, produced: 1.5 }] },
      { ...COUNTS, streams: [{ ...COUNTS.streams[0]!, actor: 7 }] },
      { ...COUNTS, streams: [{ ...COUNTS.streams[0]!, unread: -3 }] },
      { ...COUNTS, streams: [{ ...COUNTS.streams[0]!, unread: null }] },
      { ...COUNTS, timings: [{ ...COUNTS.timings[0]!, lost: Number.MAX_SAFE_INTEGER + 2 }] },
      { ...COUNTS, timings: [null] },
      // Ids no actor has (they are u16), names of threads that are not strings.
      { ...COUNTS, streams: [{ ...COUNTS.streams[0]!, actorId: 2 ** 31 }] },
      { ...COUNTS, timings: [{ ...COUNTS.timings[0]!, observerId: 65_536 }] },
      { ...COUNTS, terminated: [{ x: 1 }, 5, null] },
      // A persister's account that is none: not a list, a stream ending before it began, tags
      // that are not strings, a negative loss.
      { ...COUNTS, persisted: {} },
      { ...COUNTS, persisted: [{ ...COUNTS.persisted![0]!, end: 0, from: 5 }] },
      { ...COUNTS, persisted: [{ ...COUNTS.persisted![0]!, tags: [1] }] },
      { ...COUNTS, persisted: [{ ...COUNTS.persisted![0]!, lost: -1 }] },
      { ...COUNTS, persisted: [{ ...COUNTS.persisted![0]!, name: undefined }] },
    ]) {
      expect(() => parseStoredCounts(bytes(bad))).toThrow(/^a counts block holds no run counts$/);
    }
    // The persister's accounts take no room from the actors' rows.
    const full = {
      ...COUNTS,
      streams: Array(MAX_COUNTS_ROWS - COUNTS.timings.length).fill(COUNTS.streams[0]),
    };
    expect(parseStoredCounts(bytes(full)).streams).toHaveLength(full.streams.length);
    const many = { ...COUNTS, streams: Array(MAX_COUNTS_ROWS).fill(COUNTS.streams[0]) };
    expect(() => parseStoredCounts(bytes(many))).toThrow(/^a counts block holds more than 10000 rows$/);
    expect(() => parseStoredCounts(new TextEncoder().encode('{not json'))).toThrow(SyntaxError);
  });

  it('names with any character come back as they were, and a damaged run breaks no query of the others', async () => {
    const { dir: lake, cleanup: clean } = tempDir('dorsal-run-counts-names-');
    try {
      const now = { startTime: formatRfc3339Ns(BigInt(Date.now()) * 1_000_000n), startTicks: 0 };
      const odd = makeProcess(now);
      const damaged = makeProcess(now);
      const strange = "a\u0000b'); DROP TABLE blocks; --\\ \ud800 é";
      const service = new IngestionService({ data: lake });
      try {
        await keep(service, odd, {
          ...COUNTS,
          streams: [{ ...COUNTS.streams[1]!, actor: strange, stream: 'nul\u0000' }],
          timings: [],
        });
        await keep(service, damaged, new TextEncoder().encode('{"streams": 5}'));
      } finally {
        await service.close();
      }
      const analytics = await Analytics.open({ lake: { data: lake }, cacheDir: join(lake, 'analytics') });
      try {
        // Over the whole lake, no process named: the damaged run is an error row, nothing more.
        const { rows } = await analytics.query(
          'SELECT c.actor, c.stream, c.lost::INTEGER, r.error FROM actor_counts c JOIN run_counts r USING (process_id)',
        );
        expect(rows).toEqual([[strange.replace('\ud800', '\ufffd'), 'nul\u0000', 97, null]]);
        const errors = await analytics.query(
          'SELECT process_id, error FROM run_counts WHERE error IS NOT NULL',
        );
        expect(errors.rows).toEqual([[damaged.processId, expect.stringMatching(/holds no run counts$/)]]);
        expect((await analytics.query('SELECT count(*)::INTEGER FROM blocks')).rows).toEqual([[2]]);
      } finally {
        await analytics.close();
      }
    } finally {
      clean();
    }
  });

  it('a block that did not read at one look is read again at the next, and its rows then show', async () => {
    const { dir: lake, cleanup: clean } = tempDir('dorsal-run-counts-again-');
    try {
      const run = await keptRun(lake);
      const [blob] = filesUnder(join(lake, 'blobs'));
      expect(blob).toBeDefined();
      renameSync(blob!, `${blob!}.away`);
      const analytics = await Analytics.open({
        lake: { data: lake },
        cacheDir: join(lake, 'analytics'),
        freshnessMs: 0,
      });
      try {
        const ask = async () =>
          (
            await analytics.query('SELECT refused::INTEGER, error FROM run_counts', {
              process: run.processId,
            })
          ).rows;
        const [first] = await ask();
        expect(first![0]).toBeNull();
        expect(String(first![1])).toMatch(/^block [0-9a-f-]+: no blob at /);
        renameSync(`${blob!}.away`, blob!);
        expect(await ask()).toEqual([[4, null]]);
      } finally {
        await analytics.close();
      }
      // Damaged rather than gone (read by analytics of their own): the lake's error names the block, once.
      const whole = readFileSync(blob!);
      writeFileSync(blob!, whole.subarray(0, whole.length >> 1));
      const fresh = await Analytics.open({ lake: { data: lake }, cacheDir: join(lake, 'analytics-2') });
      try {
        const [damaged] = (
          await fresh.query('SELECT refused::INTEGER, error FROM run_counts', { process: run.processId })
        ).rows;
        const error = String(damaged![1]);
        const id = /^block ([0-9a-f-]+) \(blob /.exec(error)?.[1];
        expect(id, error).toBeDefined();
        expect(error.split(id!).length, error).toBe(3); // the block, and its blob's name
      } finally {
        await fresh.close();
      }
    } finally {
      clean();
    }
  });

  it('are what the system counted: rows with anything counted, every observer read, the stop as it went', () => {
    const stream = (name: string, figures: Partial<StoredCounts['streams'][number]> = {}) => ({
      stream: name,
      handled: 0,
      skipped: 0,
      lost: 0,
      poisoned: 0,
      failed: 0,
      produced: 0,
      unread: 0,
      ...figures,
    });
    const counts = storedCountsOf({
      actors: [
        { id: 0, name: 'feed', streams: [stream('ticks', { produced: 9 }), stream('orders')], timings: [] },
        {
          id: 3,
          name: 'watcher',
          streams: [stream('ticks', { skipped: 1 }), stream('orders', { failed: 2 })],
          timings: [{ actor: 'feed', actorId: 0, handled: 5, lost: 4, unread: 2 }],
        },
        // Nothing read before the stop: what it left unread is counted all the same.
        { id: 4, name: 'late', streams: [stream('ticks', { unread: 6 }), stream('orders')], timings: [] },
      ],
      refused: 7,
      drained: false,
      terminated: ['actor-3'],
    });
    expect(counts).toEqual({
      streams: [
        { actor: 'feed', actorId: 0, ...stream('ticks', { produced: 9 }) },
        { actor: 'watcher', actorId: 3, ...stream('ticks', { skipped: 1 }) },
        { actor: 'watcher', actorId: 3, ...stream('orders', { failed: 2 }) },
        { actor: 'late', actorId: 4, ...stream('ticks', { unread: 6 }) },
      ],
      timings: [
        { observer: 'watcher', observerId: 3, actor: 'feed', actorId: 0, handled: 5, lost: 4, unread: 2 },
      ],
      refused: 7,
      drained: false,
      terminated: ['actor-3'],
    });
  });

  it("counts that do not make tables are their run's error, and leave the other runs' rows whole", async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      // Past the parser (which refuses such an id): the tables' own types refuse it.
      const bad = { ...COUNTS, streams: [{ ...COUNTS.streams[1]!, actorId: 2 ** 40 }] };
      await createViews(connection, {
        processes: [],
        streams: [],
        blocks: [],
        materialized: [],
        counts: [
          { processId: 'good', document: COUNTS },
          { processId: 'bad', document: bad },
          { processId: 'unread', error: 'block 1: gone' },
          // A bad value in the second table: nothing of its run's first table stays.
          {
            processId: 'bad-read',
            document: { ...COUNTS, timings: [{ ...COUNTS.timings[0]!, observerId: 2 ** 40 }] },
          },
          // Two blocks of one process, one good and one bad: the good one's rows stay.
          { processId: 'good', document: bad },
          // Enough runs for several batches.
          ...Array.from({ length: 300 }, (_, i) => ({ processId: `many-${i}`, document: COUNTS })),
        ],
      });
      const rows = async (sql: string) => (await connection.runAndReadAll(sql)).getRows();
      const few = "process_id NOT LIKE 'many-%'";
      expect(
        await rows(`SELECT process_id, actor, lost::INTEGER FROM actor_counts WHERE ${few} ORDER BY ALL`),
      ).toEqual([
        ['good', 'feed', 0],
        ['good', "o'brien", 97],
      ]);
      expect(
        await rows(`SELECT process_id, observer, actor FROM timing_reads WHERE ${few} ORDER BY ALL`),
      ).toEqual([
        ['good', 'watcher', 'feed'],
        ['good', 'watcher', "o'brien"],
      ]);
      const runs = await rows(
        `SELECT process_id, refused::INTEGER, error FROM run_counts WHERE ${few} ORDER BY ALL`,
      );
      expect(runs.map((r) => [r[0], r[1], r[2] === null ? null : String(r[2]).slice(0, 29)])).toEqual([
        ['bad', null, 'its counts do not make tables'],
        ['bad-read', null, 'its counts do not make tables'],
        ['good', 4, null],
        ['good', null, 'its counts do not make tables'],
        ['unread', null, 'block 1: gone'],
      ]);
      expect(
        await rows(
          "SELECT count(*)::INTEGER, count(DISTINCT process_id)::INTEGER FROM actor_counts WHERE process_id LIKE 'many-%'",
        ),
      ).toEqual([[600, 300]]);
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });
});
