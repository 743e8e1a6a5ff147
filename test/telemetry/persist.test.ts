import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  defineMessage,
  defineSpine,
  type PersistReport,
  System,
  type SystemReport,
} from '../../src/index.js';
import {
  type PersistedSourceData,
  readPersisted,
  readRunCounts,
  type StoredCounts,
} from '../../src/persist.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { LakeLocation } from '../../src/telemetry/lake/open.js';
import type { Recorded, RecordedTiming } from '../fixtures/actors/recorder.js';
import { Fill, Order, spine, Tick } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { tempDir } from './fixtures.js';
import { freePort } from './http-helpers.js';
import { scaleOutLocation, startS3, uniqueSchema } from './services.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A tick → two orders → a fill each, with an observer recording every message and timing record as it runs. */
async function runPipeline(persist: object, ticks: number) {
  const channel = `persist-${Math.random()}`;
  const bc = new BroadcastChannel(channel);
  const observed = new Promise<{ messages: Recorded[]; timings: RecordedTiming[] }>((resolve) => {
    bc.onmessage = (event) =>
      resolve((event as unknown as { data: { messages: Recorded[]; timings: RecordedTiming[] } }).data);
  });
  const system = new System(spine, { persist });
  system.spawn(fixture('feed'), { args: { count: ticks, perLoop: 10 } });
  system.spawn(fixture('strategy'));
  system.spawn(fixture('gateway'));
  system.spawn(fixture('recorder'), { args: { channel } });
  await system.start();
  await until(() => system.spine.queue(2).stats().published === 2 * ticks, 'every fill');
  const report = await system.stop();
  const recorded = await observed;
  bc.close();
  return { report, recorded };
}

/** The test spine with 16-slot queues: a burst laps whoever reads it slowly. */
const small = defineSpine({
  ticks: { message: Tick, capacity: 16 },
  orders: { message: Order, capacity: 16 },
  fills: { message: Fill, capacity: 16 },
});

const source = (data: PersistedSourceData[], tag: string, key: string, value: string) =>
  data.find((d) => d.stream.tags.includes(tag) && d.stream.properties[key] === value)!;

/**
 * What every actor counted, as the lake keeps it, is what the stop report says: per actor ×
 * stream (rows with anything counted), per observer × actor read, and the run's own figures.
 */
function checkCounts(report: SystemReport, counts: StoredCounts | undefined) {
  expect(counts).toBeDefined();
  const rows = report.actors.flatMap((a) =>
    a.streams
      .filter((s) => s.handled + s.skipped + s.lost + s.failed + s.produced > 0)
      .map(({ stream, ...figures }) => ({ actor: a.name, actorId: a.id, stream, ...figures })),
  );
  expect(rows.length).toBeGreaterThan(0);
  expect(counts!.streams).toEqual(rows);
  expect(counts!.timings).toEqual(
    report.actors.flatMap((a) => a.timings.map((t) => ({ observer: a.name, observerId: a.id, ...t }))),
  );
  expect(counts!).toMatchObject({
    refused: report.refused,
    drained: report.drained,
    terminated: report.terminated,
  });
}

/** Every check a persisted run must pass, whatever carried it to the lake. */
function checkRun(
  report: SystemReport,
  data: PersistedSourceData[],
  recorded: { messages: Recorded[] },
  ticks: number,
  counts: StoredCounts | undefined,
) {
  checkCounts(report, counts);
  const persist = report.persist as PersistReport;
  expect(persist.flushed).toBe(true);
  expect(persist.blocksDropped).toBe(0);
  for (const name of ['ticks', 'orders', 'fills']) {
    const published = report.streams.find((s) => s.stream === name)!.published;
    const stored = source(data, 'messages', 'name', name);
    // Every message published is in the lake or counted as lost there, and the report agrees.
    expect(stored.records.length + stored.lost).toBe(published);
    expect(stored.covered).toBe(published);
    expect(persist.sources.find((s) => s.kind === 'messages' && s.name === name)).toMatchObject({
      persisted: stored.records.length,
      lost: stored.lost,
    });
    // Each message's envelope and fields come back exactly as the observer saw them live.
    const live = new Map(recorded.messages.filter((m) => m.stream === name).map((m) => [m.seq, m]));
    for (const record of stored.records) {
      const seen = live.get(record.seq);
      if (seen === undefined) continue;
      const tracking = record.parts.Tracking!;
      expect([
        tracking.origin_t,
        tracking.publish_t,
        tracking.parent_stream,
        tracking.parent_seq,
        tracking.actor,
      ]).toEqual([seen.origin, seen.publish, seen.parentStream, seen.parentSeq, seen.actor]);
      const message = Object.values(record.parts).find((p) => p !== tracking)!;
      expect(message).toEqual(seen.fields);
    }
  }
  // One timing record per handler call, every one in the lake.
  for (const [actor, stream, calls] of [
    ['strategy', 'ticks', ticks],
    ['gateway', 'orders', 2 * ticks],
  ] as const) {
    const handled = report.actors
      .find((a) => a.name === actor)!
      .streams.find((s) => s.stream === stream)!.handled;
    expect(handled).toBe(calls);
    const timings = source(data, 'timings', 'actor', actor);
    expect(timings.records.length + timings.lost).toBe(calls);
    for (const record of timings.records) {
      const t = record.parts.TimingRecord!;
      expect(t.origin_t as number).toBeLessThanOrEqual(t.publish_t as number);
      expect(t.publish_t as number).toBeLessThanOrEqual(t.start_t as number);
      expect(t.start_t as number).toBeLessThanOrEqual(t.end_t as number);
    }
  }
}

describe('the persister', () => {
  it('records every message and timing record of a run in the embedded lake, exactly, or counts it lost', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const ticks = 3000;
    const { report, recorded } = await runPipeline({ data: dir }, ticks);
    const lake = Lake.open({ data: dir });
    try {
      const [process] = await lake.processes();
      expect(process!.processId).toBe((report.persist as PersistReport).processId);
      expect(JSON.parse(process!.properties['dorsal.actors']!).map((a: { name: string }) => a.name)).toEqual([
        'feed',
        'strategy',
        'gateway',
        'recorder',
      ]);
      const data = await readPersisted(lake, process!.processId);
      checkRun(report, data, recorded, ticks, await readRunCounts(lake, process!.processId));
      // Nothing lost on a run this size: every message is there.
      expect(source(data, 'messages', 'name', 'orders').records.map((r) => r.seq)).toEqual(
        Array.from({ length: 2 * ticks }, (_, i) => i),
      );
    } finally {
      await lake.close();
    }
  });

  it('a quiet stream reaches the lake within about its block time, while the system runs; an actor spawned late is recorded too', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const trigger = new Int32Array(new SharedArrayBuffer(4));
    const system = new System(spine, { persist: { data: dir, blockMs: 200 } });
    system.spawn(fixture('trigger-feed'), { args: { trigger: trigger.buffer } });
    system.spawn(fixture('strategy'));
    await system.start();
    Atomics.store(trigger, 0, 1);
    const lake = Lake.open({ data: dir });
    const orders = async () => {
      const [process] = await lake.processes();
      if (process === undefined) return 0;
      const stored = source(await readPersisted(lake, process.processId), 'messages', 'name', 'orders');
      return stored?.records.length ?? 0;
    };
    try {
      // Two orders, far from filling a block: cut by time, and stored before any stop.
      await until(async () => (await orders()) === 2, 'the orders in the lake while the system runs');
      // An actor spawned now: its timing queue gets a lake stream of its own.
      await system.spawn(fixture('gateway')).ready;
      // Its consumer of orders starts at the head when its first loop creates it (beside the persister's).
      await until(() => system.spine.queue(1).stats().consumers.length === 2, "the gateway's consumer");
      Atomics.store(trigger, 0, 2);
      await until(() => system.spine.queue(2).stats().published === 2, 'the fills of the second tick');
      const [process] = await lake.processes();
      const report = await system.stop();
      const gateway = source(await readPersisted(lake, process!.processId), 'timings', 'actor', 'gateway');
      expect(gateway.records.map((r) => r.parts.TimingRecord!.seq)).toEqual([2, 3]);
      expect(report.persist!.sources.find((s) => s.kind === 'timings' && s.name === 'gateway')).toMatchObject(
        {
          persisted: 2,
          lost: 0,
        },
      );
    } finally {
      await lake.close();
    }
  });

  it('lapped on small queues under load, it records its losses in the lake: never hidden', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const system = new System(small, { persist: { data: dir } });
    // A burst of 20,000 ticks in a few rounds: the persister, asleep between its passes, is lapped.
    system.spawn(fixture('feed'), { args: { count: 20_000, perLoop: 5000 } });
    await system.start();
    await until(() => system.spine.queue(0).stats().published === 20_000, 'the burst');
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    const lake = Lake.open({ data: dir });
    try {
      const ticks = source(await readPersisted(lake, persist.processId), 'messages', 'name', 'ticks');
      expect(ticks.lost).toBeGreaterThan(0);
      expect(ticks.records.length + ticks.lost).toBe(20_000);
      expect(persist.sources.find((s) => s.name === 'ticks')).toEqual({
        kind: 'messages',
        name: 'ticks',
        persisted: ticks.records.length,
        lost: ticks.lost,
      });
      // What it kept is whole and in order.
      const seqs = ticks.records.map((r) => r.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      for (const record of ticks.records) expect(record.parts.Tick!.n).toBe(record.seq);
    } finally {
      await lake.close();
    }
  });

  it('an actor lapped on its stream: what it lost is in the lake, beside what the persister lost', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const system = new System(small, { persist: { data: dir } });
    // 2,000 ticks in bursts of 500, to an actor that takes a millisecond per tick: it is lapped.
    system.spawn(fixture('feed'), { args: { count: 2000, perLoop: 500 } });
    system.spawn(fixture('laggard'), { args: { handlerMs: 1 } });
    await system.start();
    await until(() => system.spine.queue(0).stats().published === 2000, 'the burst');
    const report = await system.stop();
    expect(report.drained).toBe(true);
    const laggard = report.actors
      .find((a) => a.name === 'laggard')!
      .streams.find((s) => s.stream === 'ticks')!;
    expect(laggard.lost).toBeGreaterThan(0);
    // Drained: every tick was handled or lost.
    expect(laggard.handled + laggard.lost).toBe(2000);
    const lake = Lake.open({ data: dir });
    let counts: StoredCounts | undefined;
    try {
      const persist = report.persist as PersistReport;
      counts = await readRunCounts(lake, persist.processId);
      // Every block the report counts is in the lake, the counts' own included.
      expect(persist.blocks).toBe((await lake.blocks({ processId: persist.processId })).length);
    } finally {
      await lake.close();
    }
    checkCounts(report, counts);
    // The analytics say so too: the actor's losses beside the persister's, and its counts.
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const losses = await analytics.query(
        "SELECT stream, consumer, lost::DOUBLE, poisoned::DOUBLE FROM losses WHERE counted_by <> 'persister' ORDER BY ALL",
      );
      expect(losses.rows).toEqual([['ticks', 'laggard', laggard.lost, 0]]);
      const persister = await analytics.query(
        "SELECT lost::DOUBLE FROM losses WHERE counted_by = 'persister' AND stream = 'ticks'",
      );
      const persisted = (report.persist as PersistReport).sources.find((s) => s.name === 'ticks')!;
      expect(persister.rows).toEqual([[persisted.lost]]);
      const rows = await analytics.query(
        'SELECT actor, stream, handled::DOUBLE, lost::DOUBLE, produced::DOUBLE FROM actor_counts ORDER BY ALL',
      );
      expect(rows.rows).toEqual([
        ['feed', 'ticks', 0, 0, 2000],
        ['laggard', 'ticks', laggard.handled, laggard.lost, 0],
      ]);
      const run = await analytics.query('SELECT refused::DOUBLE, drained, error FROM run_counts');
      expect(run.rows).toEqual([[report.refused, true, null]]);
    } finally {
      await analytics.close();
    }
  });

  it('a stop with messages in flight: everything published before it is in the lake or counted lost', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const system = new System(spine, { persist: { data: dir } });
    // A feed that runs until the stop.
    system.spawn(fixture('feed'), { args: { count: 0, perLoop: 20 } });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('gateway'));
    await system.start();
    await until(() => system.spine.queue(2).stats().published > 1000, 'fills flowing');
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    expect(persist.flushed).toBe(true);
    const lake = Lake.open({ data: dir });
    try {
      const data = await readPersisted(lake, persist.processId);
      for (const name of ['ticks', 'orders', 'fills']) {
        const published = report.streams.find((s) => s.stream === name)!.published;
        const stored = source(data, 'messages', 'name', name);
        expect(stored.records.length + stored.lost).toBe(published);
      }
    } finally {
      await lake.close();
    }
  });

  it('with the server unreachable to the end, the report claims nothing persisted and counts every record lost', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const system = new System(spine, { persist: { url, flushTimeoutMs: 300 } });
    system.spawn(fixture('feed'), { args: { count: 100 } });
    system.spawn(fixture('strategy'));
    await system.start();
    await until(() => system.spine.queue(1).stats().published === 200, 'the orders');
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    expect(persist.flushed).toBe(false);
    expect(persist.blocksDropped).toBeGreaterThan(0);
    for (const name of ['ticks', 'orders']) {
      const published = report.streams.find((s) => s.stream === name)!.published;
      expect(persist.sources.find((s) => s.kind === 'messages' && s.name === name)).toMatchObject({
        persisted: 0,
        lost: published,
      });
    }
  });

  /** A run persisted through an ingestion server on loopback, read back from the server's lake. */
  async function throughServer(location: LakeLocation) {
    const server = await startIngestionServer({ port: 0, lake: location });
    const ticks = 2000;
    try {
      const { report, recorded } = await runPipeline({ url: server.url }, ticks);
      const lake = Lake.open(location);
      try {
        const processId = (report.persist as PersistReport).processId;
        const data = await readPersisted(lake, processId);
        checkRun(report, data, recorded, ticks, await readRunCounts(lake, processId));
      } finally {
        await lake.close();
      }
    } finally {
      await server.close();
    }
  }

  it('the same through an ingestion server over HTTP', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    await throughServer({ data: dir });
  });

  it('the same into PostgreSQL + S3, through a server', async () => {
    const schema = uniqueSchema();
    const s3 = await startS3();
    try {
      await throughServer(scaleOutLocation(schema.url, s3.endpoint, 'persist'));
    } finally {
      await schema.drop();
      await s3.stop();
    }
  });

  it("takes the user's process properties beside its own, which the user's do not replace", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const system = new System(spine, {
        persist: { data: dir, properties: { 'dorsal.spine': 'mine', 'dorsal.system': 'mine too' } },
      });
      system.spawn(fixture('feed'), { args: { count: 3 } });
      await system.start();
      await system.stop();
      const lake = Lake.open({ data: dir });
      try {
        const [process] = await lake.processes();
        const streams = JSON.parse(process!.properties['dorsal.spine']!) as { name: string }[];
        expect(streams.map((s) => s.name)).toEqual(['ticks', 'orders', 'fills']);
        expect(process!.properties['dorsal.system']).toBe('mine too');
      } finally {
        await lake.close();
      }
    } finally {
      cleanup();
    }
  });

  it('records a spine too wide to describe whole in a process property without its layouts (its streams hold them); refuses a property of the user’s that no lake would take', async () => {
    const { dir, cleanup } = tempDir();
    const fields = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`field_${i}`, 'f64' as const]));
    const wide = defineSpine({
      fills: { message: Fill, capacity: 16 },
      ...Object.fromEntries(
        Array.from({ length: 120 }, (_, i) => [
          `stream_${i}`,
          { message: defineMessage(`Wide${i}`, fields), capacity: 16 },
        ]),
      ),
    });
    // Described whole, its 7,200 fields took 392 KB: the lake refused the process, then every block.
    const system = new System(wide, { persist: { data: dir } });
    system.spawn(fixture('idle'), { args: { name: 'idle' } });
    await system.start();
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    expect(persist.flushed).toBe(true);
    const lake = Lake.open({ data: dir });
    try {
      const process = await lake.process(persist.processId);
      const described = JSON.parse(process!.properties['dorsal.spine']!) as {
        name: string;
        layout?: unknown;
      }[];
      expect(described.map((s) => s.name)).toEqual(wide.names);
      expect(described.every((s) => s.layout === undefined)).toBe(true);
      const streams = await lake.streams({ processId: persist.processId, tag: 'messages' });
      const last = streams.find((s) => s.properties.name === 'stream_119')!;
      expect(last.objectsLayouts.at(-1)!.fields).toHaveLength(60);
    } finally {
      await lake.close();
    }
    // The user's own properties are held to the lake's limit, when the run starts.
    const big = new System(spine, { persist: { data: dir, properties: { notes: 'x'.repeat(300_000) } } });
    big.spawn(fixture('idle'), { args: { name: 'idle' } });
    const started = await big.start().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(started).toBeInstanceOf(ConfigError);
    expect(String(started)).toMatch(
      /the process property 'notes' takes 300000 bytes, over the 262144 a lake takes/,
    );
    await big.stop();
    // Each of them under that, all together over what an ingestion server takes in a record:
    // refused for a server, taken by the embedded lake, which has no such limit.
    const many = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`notes_${i}`, 'x'.repeat(250_000)]));
    const heavy = new System(spine, { persist: { url: 'http://127.0.0.1:1', properties: many } });
    heavy.spawn(fixture('idle'), { args: { name: 'idle' } });
    await expect(heavy.start()).rejects.toThrow(
      /the process record takes \d+ bytes, over the 1048576 an ingestion server takes by default/,
    );
    await heavy.stop();
    const embedded = new System(spine, { persist: { data: dir, properties: many } });
    embedded.spawn(fixture('idle'), { args: { name: 'idle' } });
    await embedded.start();
    expect(((await embedded.stop()).persist as PersistReport).flushed).toBe(true);
    cleanup();
  }, 60_000);

  it('refuses at start to persist a message wider than a lake takes in a layout (4,096 fields): its stream persisted nothing', async () => {
    const { dir, cleanup } = tempDir();
    const fields = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`f${i}`, 'u8' as const]));
    const wide = defineSpine({
      fills: { message: Fill, capacity: 16 },
      huge: { message: defineMessage('Huge', fields), capacity: 16 },
    });
    const system = new System(wide, { persist: { data: dir } });
    system.spawn(fixture('idle'), { args: { name: 'idle' } });
    await expect(system.start()).rejects.toThrow(
      /stream 'huge' has a message of 5000 fields, over the 4096 a lake takes in a layout/,
    );
    await system.stop();
    cleanup();
  }, 60_000);

  it('refuses a persist option of the wrong shape when the system is made, naming it', () => {
    const bad = [
      [{ dat: './x' }, /unknown System option 'persist.dat' \(did you mean 'persist.data'\?\)/],
      [{}, /exactly one of 'data'/],
      [{ data: './x', url: 'http://127.0.0.1:1' }, /exactly one of 'data'/],
      [{ url: 'ftp://x' }, /http\(s\) URL/],
      // URLs the sink could not parse: they failed once the run had started, leaving it running.
      [{ url: 'http://[zz' }, /http\(s\) URL, got http:\/\/\[zz/],
      [{ url: 'http://localhost:99999' }, /http\(s\) URL/],
      [{ url: 'http://' }, /http\(s\) URL/],
      [{ data: './x', blockBytes: 1e300 }, /'blockBytes' must be at most 33554432/],
      [{ data: './x', blockBytes: 64 * 1024 * 1024 }, /'blockBytes' must be at most 33554432/],
      [{ data: './x', blockBytes: -1 }, /'blockBytes' must be a positive number/],
      [{ data: './x', backlogBytes: Number.NaN }, /'backlogBytes' must be a positive number/],
      [{ url: 'http://127.0.0.1:1', requestTimeoutMs: 0 }, /'requestTimeoutMs' must be an integer from 1/],
      [{ url: 'http://127.0.0.1:1', requestTimeoutMs: 2 ** 31 }, /'requestTimeoutMs' must be an integer/],
      ['./dorsal-data', /must be an object/],
    ] as const;
    for (const [persist, message] of bad) {
      expect(() => new System(spine, { persist: persist as object })).toThrow(ConfigError);
      expect(() => new System(spine, { persist: persist as object })).toThrow(message);
    }
  });
});
