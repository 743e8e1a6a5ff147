/**
 * The persister's report against what its lake holds, in the ways a run can go wrong: per
 * source, the records the report says persisted are the records the lake holds, the losses it
 * reports are the losses the lake's coverage carries, and for every stream published =
 * persisted + lost. (A cold review's scenarios: each of the fixes it led to has its case here.)
 */
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { defineSpine, logger, type PersistReport, System, type SystemReport } from '../../src/index.js';
import { persistedLogs, readPersisted } from '../../src/persist.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { startIngestionServer } from '../../src/telemetry/ingestion/server.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { LakeLocation } from '../../src/telemetry/lake/open.js';
import { applyRetention } from '../../src/telemetry/lake/retention.js';
import { decodeBlock, decodeStreamInfo } from '../../src/telemetry/wire/index.js';
import { Fill, Order, spine, Tick } from '../fixtures/actors/spine.js';
import { compiledUrl } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { tempDir } from './fixtures.js';
import { sqliteAge } from './lake-age.js';

const fixture = (name: string) => compiledUrl(`../fixtures/actors/${name}.ts`, import.meta.url);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});
function lakeDir(): string {
  const { dir, cleanup } = tempDir('dorsal-accounting-');
  cleanups.push(cleanup);
  return dir;
}

/** One source as the report and the lake see it. */
interface Agreement {
  readonly source: string;
  readonly published?: number;
  readonly reportPersisted: number;
  readonly reportLost: number;
  readonly lakeRecords: number;
  readonly lakeLost: number;
  readonly lakeCovered: number;
  readonly reportDropped?: number;
  readonly lakeDropped?: number;
}

/** Per source of the report: what it says beside what the lake holds (-1: no such stream in the lake). */
async function reportAndLake(report: SystemReport, location: LakeLocation): Promise<Agreement[]> {
  const persist = report.persist as PersistReport;
  const lake = Lake.open(location);
  try {
    const data = await readPersisted(lake, persist.processId);
    return persist.sources.map((s) => {
      const stored = data.find((d) =>
        s.kind === 'messages'
          ? d.stream.tags.includes('messages') && d.stream.properties.name === s.name
          : s.kind === 'timings'
            ? d.stream.tags.includes('timings') && d.stream.properties.actor === s.name
            : d.stream.tags.includes(s.kind) && d.stream.properties.thread === s.name,
      );
      const published = report.streams.find((x) => s.kind === 'messages' && x.stream === s.name)?.published;
      const lakeDropped =
        stored?.dropped === undefined ? undefined : stored.dropped.strings + stored.dropped.depth;
      return {
        source: `${s.kind}:${s.name}`,
        ...(published === undefined ? {} : { published }),
        reportPersisted: s.persisted,
        reportLost: s.lost,
        lakeRecords: stored?.records.length ?? -1,
        lakeLost: stored?.lost ?? -1,
        lakeCovered: stored?.covered ?? -1,
        ...(s.dropped === undefined || s.dropped === 0 ? {} : { reportDropped: s.dropped, lakeDropped }),
      };
    });
  } finally {
    await lake.close();
  }
}

/**
 * The sources where the report and the lake disagree, or published ≠ persisted + lost.
 * `lossesInLake`: the lake can know every loss (not so once its server is gone). `everyBlockStored`:
 * the blocks' coverage spans what was persisted or lost (a dropped block takes its span away; the
 * losses it carried reach the lake in a block of coverage alone).
 */
function disagreements(
  rows: readonly Agreement[],
  { lossesInLake = true, everyBlockStored = true } = {},
): Agreement[] {
  return rows.filter(
    (r) =>
      Math.max(0, r.lakeRecords) !== r.reportPersisted ||
      (r.published !== undefined && r.published !== r.reportPersisted + r.reportLost) ||
      (lossesInLake && Math.max(0, r.lakeLost) !== r.reportLost) ||
      (everyBlockStored && Math.max(0, r.lakeCovered) !== r.reportPersisted + r.reportLost) ||
      r.reportDropped !== r.lakeDropped,
  );
}

/**
 * A proxy on loopback in front of `upstream`: each request's body is read whole, then `hold`
 * says what to do with it: a number of ms to wait before forwarding it, or an answer of its own
 * (a status, sent after `afterMs`). Returns its URL and a way to close it.
 */
async function proxy(
  upstream: string,
  hold: (url: string, body: Buffer) => number | { status: number; afterMs: number },
): Promise<{ url: string; close: () => void }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const decided = hold(req.url ?? '/', body);
      if (typeof decided !== 'number') {
        setTimeout(() => res.writeHead(decided.status).end(), decided.afterMs);
        return;
      }
      setTimeout(() => {
        const up = request(`${upstream}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.on('error', () => res.writeHead(502).end());
        up.end(body);
      }, decided);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

/**
 * The sources whose persister's losses in the analytics (lost, dropped, unrecorded) are not the
 * report's (lost, dropped, none unrecorded: every block the report counts persisted is stored).
 */
async function analyticsDisagreements(report: SystemReport, dir: string): Promise<string[]> {
  const persist = report.persist as PersistReport;
  const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
  const losses = await analytics
    .query(
      "SELECT stream, lost::DOUBLE, dropped::DOUBLE, unrecorded::DOUBLE FROM losses WHERE counted_by = 'persister'",
      { process: persist.processId },
    )
    .finally(() => analytics.close());
  const said = new Map(losses.rows.map((r) => [String(r[0]), r.slice(1).map(Number)]));
  // The report names a thread's sources by the thread, the lake an actor's by the actor.
  const actorName = (name: string) =>
    name.replace(/^actor-(\d+)$/, (_, id: string) => report.actors.find((a) => a.id === Number(id))!.name);
  const label = (s: PersistReport['sources'][number]) =>
    s.kind === 'messages' ? s.name : `${s.kind}:${actorName(s.name)}`;
  const labels = persist.sources.map(label);
  return persist.sources.flatMap((s, i) => {
    const stream = labels[i]!;
    // Two threads named alike are two rows of one name: not told apart here.
    if (labels.indexOf(stream) !== labels.lastIndexOf(stream)) return [];
    const want = [s.lost, s.dropped ?? 0, 0];
    // A stream that never published is not in the lake: no row, nothing lost.
    const got = said.get(stream) ?? [0, 0, 0];
    return JSON.stringify(got) === JSON.stringify(want)
      ? []
      : [`${stream}: ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`];
  });
}

describe('the persister’s report against its lake', () => {
  const small = defineSpine({
    ticks: { message: Tick, capacity: 16 },
    orders: { message: Order, capacity: 16 },
    fills: { message: Fill, capacity: 16 },
  });

  for (const [label, blocks] of [
    ['blocks of the default size', {}],
    // A block cut every 10 µs: blocks of drops alone, which the lake lists before the block of
    // records they follow (readPersisted once took the last by first sequence: 1000 drops short).
    ['a block cut every 10 µs', { blockMs: 0.01 }],
  ] as const) {
    it(`rings of 16 slots lapped, a thread logging flat out past its string table, ${label}: they agree, and so do the analytics' losses`, async () => {
      const dir = lakeDir();
      const done = new SharedArrayBuffer(4);
      const system = new System(small, { spine: { timingCapacity: 16 }, persist: { data: dir, ...blocks } });
      system.spawn(fixture('feed'), { args: { count: 20_000, perLoop: 200 } });
      system.spawn(fixture('strategy'));
      system.spawn(fixture('gateway'));
      system.spawn(fixture('chatty'), { args: { perLoop: 500, distinct: 6000, total: 30_000, done } });
      await system.start();
      await until(
        () =>
          system.spine.queue(0).stats().published === 20_000 && Atomics.load(new Int32Array(done), 0) === 1,
        'every tick and every event',
      );
      const report = await system.stop();
      const persist = report.persist as PersistReport;
      const rows = await reportAndLake(report, { data: dir });
      expect(disagreements(rows)).toEqual([]);
      // Every block settled (stored or dropped) is forgotten: a long run must not keep one entry
      // per block. Read through the private fields on purpose: nothing public shows this map.
      const persister = Reflect.get(system, 'attachments').get('persist') as object | undefined;
      const shipped = Reflect.get(Reflect.get(persister ?? {}, 'pipeline') ?? {}, 'shipped') as
        | Map<string, unknown>
        | undefined;
      expect(persist.blocks).toBeGreaterThan(10);
      expect(shipped?.size).toBe(0);
      // Something was lapped and something dropped at the source: the case is the one meant.
      expect(rows.some((r) => r.reportLost > 0)).toBe(true);
      expect(rows.some((r) => (r.reportDropped ?? 0) > 0)).toBe(true);
      // The analytics' losses say the same, per stream.
      expect(await analyticsDisagreements(report, dir)).toEqual([]);
    }, 60_000);
  }

  it('the compression backlog full: the blocks that find it busy dropped, each loss in the lake at once, with what the rings lost', async () => {
    const dir = lakeDir();
    const done = new SharedArrayBuffer(4);
    // No block of records fits a backlog of 100 bytes: one goes on while nothing waits, those cut
    // meanwhile go on as their coverage alone.
    const system = new System(small, {
      spine: { timingCapacity: 16 },
      persist: { data: dir, blockBytes: 4096, backlogBytes: 100 },
    });
    system.spawn(fixture('feed'), { args: { count: 5000, perLoop: 200 } });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('chatty'), { args: { perLoop: 500, distinct: 6000, total: 10_000, done } });
    await system.start();
    await until(
      () => system.spine.queue(0).stats().published === 5000 && Atomics.load(new Int32Array(done), 0) === 1,
      'every tick and every event',
    );
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    expect(persist.flushed).toBe(true);
    const rows = await reportAndLake(report, { data: dir });
    expect(disagreements(rows)).toEqual([]);
    const ticks = rows.find((r) => r.source === 'messages:ticks')!;
    expect(ticks).toMatchObject({ lakeCovered: 5000, lakeRecords: ticks.reportPersisted });
    expect(ticks.reportPersisted + ticks.reportLost).toBe(5000);
    // Some blocks found the backlog empty and went on whole (a backlog smaller than a block once
    // dropped every one), others found it busy and were dropped.
    expect(rows.reduce((n, r) => n + r.reportPersisted, 0)).toBeGreaterThan(0);
    expect(rows.reduce((n, r) => n + r.reportLost, 0)).toBeGreaterThan(0);
  }, 60_000);

  it('blocks cut while the actors load (their streams not yet in the lake) are held within backlogBytes too: the rest dropped and counted', async () => {
    const dir = lakeDir();
    const [backlogBytes, blockBytes, count] = [1 << 20, 64 * 1024, 1_000_000];
    const system = new System(spine, { persist: { data: dir, blockBytes, backlogBytes } });
    system.spawn(fixture('init-logger'), { args: { count } });
    // The blocks waiting for their stream, through private fields on purpose: nothing public shows them.
    let peak = 0;
    const sample = setInterval(() => {
      const persister = Reflect.get(system, 'attachments').get('persist') as object | undefined;
      const pipeline = Reflect.get(persister ?? {}, 'pipeline') as object | undefined;
      const sources = Reflect.get(pipeline ?? {}, 'sources') as Map<string, { waiting: { bytes: number }[] }>;
      let held = 0;
      for (const source of sources?.values() ?? []) for (const block of source.waiting) held += block.bytes;
      peak = Math.max(peak, held);
    }, 2);
    try {
      await system.start();
    } finally {
      clearInterval(sample);
    }
    const report = await system.stop();
    expect((report.persist as PersistReport).flushed).toBe(true);
    // The case is the one meant: blocks waited for the start's end, and more came than the backlog holds.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(backlogBytes + blockBytes);
    const rows = await reportAndLake(report, { data: dir });
    expect(disagreements(rows)).toEqual([]);
    // The loader's thread: the log source with the most records (the others log a line or none).
    const [row] = rows
      .filter((r) => r.source.startsWith('log:'))
      .sort((a, b) => b.reportPersisted + b.reportLost - (a.reportPersisted + a.reportLost));
    expect(row!.reportPersisted + row!.reportLost).toBe(count);
    expect(row!.reportLost).toBeGreaterThan(0);
  }, 60_000);

  /** The persister's pipeline, through private fields on purpose: nothing public kills its thread. */
  const pipelineOf = (system: object) =>
    Reflect.get(Reflect.get(system, 'attachments').get('persist') as object, 'pipeline') as object;
  const threadOf = (system: object) => Reflect.get(pipelineOf(system), 'worker') as Worker;
  /** Kills the persister's thread; resolves once another attached to every source, if one is started. */
  const killPersister = async (system: object, restarted: boolean) => {
    const killed = threadOf(system);
    await killed.terminate();
    if (!restarted) return;
    const sources = Reflect.get(pipelineOf(system), 'sources') as Map<string, { entry?: number }>;
    await until(
      () => threadOf(system) !== killed && [...sources.values()].every((s) => s.entry !== undefined),
      'a new persister thread attached',
    );
  };

  it('the persister’s thread dies mid-run: another reads on from its last block, and nothing the rings still hold is lost', async () => {
    const dir = lakeDir();
    const system = new System(spine, { persist: { data: dir, blockMs: 5 } });
    system.spawn(fixture('feed'), { args: { count: 4000, perLoop: 10 } });
    system.spawn(fixture('strategy'));
    await system.start();
    await until(() => system.spine.queue(0).stats().published >= 500, 'ticks');
    // Killed once it cut a block of ticks: the next thread must begin after that block, not again.
    const sources = Reflect.get(pipelineOf(system), 'sources') as Map<string, { read?: object }>;
    await until(() => sources.get('stream:ticks')?.read !== undefined, 'a block of ticks');
    await killPersister(system, true);
    await until(() => system.spine.queue(1).stats().published === 8000, 'every order');
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    expect(persist.failure).toBeUndefined();
    expect(persist.restarts).toEqual([expect.stringMatching(/persister's thread exited with code 1/)]);
    expect(persist.flushed).toBe(true);
    expect(report.drained).toBe(true);
    const rows = await reportAndLake(report, { data: dir });
    expect(disagreements(rows)).toEqual([]);
    // The rings (4096 ticks, 8192 orders) held every message: read again, none lost.
    for (const [source, published] of [
      ['messages:ticks', 4000],
      ['messages:orders', 8000],
    ] as const) {
      expect(
        rows.find((r) => r.source === source),
        source,
      ).toMatchObject({
        reportPersisted: published,
        reportLost: 0,
        lakeRecords: published,
      });
    }
    // The death in the main thread's log, carried to the lake by the thread started after it.
    const lake = Lake.open({ data: dir });
    try {
      const main = (await readPersisted(lake, persist.processId)).find(
        (d) => d.stream.tags.includes('log') && d.stream.properties.thread === 'main',
      )!;
      const deaths = persistedLogs(main).filter((e) => e.message === "the persister's thread died");
      expect(deaths.map((e) => [e.level, e.target, e.properties.restarted, e.properties.restarts])).toEqual([
        ['warn', 'dorsal.persister', true, 1],
      ]);
      expect(deaths[0]!.properties.error).toMatch(/persister's thread exited with code 1/);
    } finally {
      await lake.close();
    }
  }, 60_000);

  it('the persister’s thread dies after its rings of 16 slots were lapped: the next one counts on from its losses', async () => {
    const dir = lakeDir();
    const system = new System(small, { spine: { timingCapacity: 16 }, persist: { data: dir, blockMs: 5 } });
    system.spawn(fixture('feed'), { args: { count: 0, perLoop: 200 } });
    system.spawn(fixture('strategy'));
    await system.start();
    const sources = Reflect.get(pipelineOf(system), 'sources') as Map<
      string,
      { read?: { readonly lostTotal: number } }
    >;
    await until(() => (sources.get('stream:ticks')?.read?.lostTotal ?? 0) > 0, 'ticks lost');
    await killPersister(system, true);
    // The next thread's blocks, lapped too, carry the losses of both.
    const before = sources.get('stream:ticks')!.read!.lostTotal;
    await until(() => sources.get('stream:ticks')!.read!.lostTotal > before, 'ticks lost again');
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    expect(persist.restarts).toHaveLength(1);
    const rows = await reportAndLake(report, { data: dir });
    expect(disagreements(rows)).toEqual([]);
    expect(rows.find((r) => r.source === 'messages:ticks')!.reportLost).toBeGreaterThan(before);
  }, 60_000);

  it('the persister’s thread killed three times amid lapped rings and a thread dropping events at the source, then once during the stop: they agree, drops and the persister’s own logs too', async () => {
    const dir = lakeDir();
    const done = new SharedArrayBuffer(4);
    const system = new System(small, { spine: { timingCapacity: 16 }, persist: { data: dir, blockMs: 5 } });
    system.spawn(fixture('feed'), { args: { count: 0, perLoop: 200 } });
    system.spawn(fixture('strategy'));
    system.spawn(fixture('chatty'), { args: { perLoop: 500, distinct: 6000, total: 1e12, done } });
    await system.start();
    const sources = Reflect.get(pipelineOf(system), 'sources') as Map<string, { received: number }>;
    const received = () => [...sources.values()].reduce((n, s) => n + s.received, 0);
    for (let i = 0; i < 3; i++) {
      const before = received();
      await until(() => received() > before + 100, 'more records');
      await killPersister(system, true);
    }
    // The fourth thread dies as the stop reaches it: what it never cut is lost. Killed before the
    // stop is posted to it (posted after, a quick drain sometimes ended it whole first).
    const last = threadOf(system);
    const post = last.postMessage.bind(last);
    last.postMessage = (message: { type: string }) => {
      if (message.type === 'stop') void last.terminate().then(() => post(message));
      else post(message);
    };
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    expect(persist.restarts).toHaveLength(3);
    expect(persist.failure).toMatch(/persister's thread exited/);
    const rows = await reportAndLake(report, { data: dir });
    expect(disagreements(rows)).toEqual([]);
    expect(await analyticsDisagreements(report, dir)).toEqual([]);
    expect(rows.some((r) => r.reportLost > 0)).toBe(true);
    expect(rows.some((r) => (r.reportDropped ?? 0) > 0)).toBe(true);
    // The persister's own 'lapped' warnings, logged by four threads: each in the lake, read back
    // with its strings, or counted lost (a thread killed before it cut the block that held it).
    const warnings = rows.find((r) => r.source === 'log:persister')!;
    expect(warnings.reportPersisted + warnings.reportLost).toBeGreaterThan(0);
    const lake = Lake.open({ data: dir });
    try {
      const logs = (await readPersisted(lake, persist.processId)).find(
        (d) => d.stream.tags.includes('log') && d.stream.properties.thread === 'persister',
      )!;
      expect(logs.records.length).toBe(warnings.reportPersisted);
      for (const r of logs.records) {
        const event = r.parts['dorsal.LogEvent']!;
        expect(r.strings?.get(event.template as number)).toBe('lapped: records lost');
      }
    } finally {
      await lake.close();
    }
  }, 60_000);

  it('the persister’s thread dies a fourth time: not started again; what it never shipped is lost, in the report and in the lake, and the report says why', async () => {
    const dir = lakeDir();
    const system = new System(spine, { persist: { data: dir } });
    system.spawn(fixture('feed'), { args: { count: 4000, perLoop: 10 } });
    system.spawn(fixture('strategy'));
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => {
      if ((warning as Error & { code?: string }).code === 'DORSAL_PERSISTER_DEAD') warnings.push(warning);
    };
    process.on('warning', onWarning);
    await system.start();
    await until(() => system.spine.queue(0).stats().published >= 500, 'ticks');
    for (let i = 0; i < 3; i++) await killPersister(system, true);
    expect(warnings).toEqual([]);
    await killPersister(system, false);
    // Said when persisting ends, not only in the stop's report.
    await until(() => warnings.length === 1, "the process warning of the persister's end");
    process.off('warning', onWarning);
    expect(warnings[0]!.message).toMatch(
      /the persister's thread died \(.*exited with code 1\): nothing more of this run reaches the lake/,
    );
    await until(() => system.spine.queue(1).stats().published === 8000, 'every order');
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    expect(persist.flushed).toBe(false);
    expect(persist.restarts).toHaveLength(3);
    expect(persist.failure).toMatch(/persister's thread exited/);
    // Its consumers were given back: the stop did not wait for a dead thread to catch up.
    expect(report.drained).toBe(true);
    const rows = await reportAndLake(report, { data: dir });
    expect(disagreements(rows)).toEqual([]);
    expect(await analyticsDisagreements(report, dir)).toEqual([]);
    for (const r of rows) expect(r.reportPersisted, r.source).toBeGreaterThanOrEqual(0);
    const orders = rows.find((r) => r.source === 'messages:orders')!;
    expect(orders.reportLost).toBeGreaterThan(0);
    expect(orders.reportPersisted + orders.reportLost).toBe(8000);
  }, 60_000);

  it('actors crashing and restarted: they agree', async () => {
    const dir = lakeDir();
    const system = new System(spine, { persist: { data: dir } });
    system.spawn(fixture('feed'), { args: { count: 50 } });
    system.spawn(fixture('instrumented'), { args: { name: 'phoenix', crashAt: 5 }, restarts: 3 });
    system.spawn(fixture('instrumented'), { args: { name: 'again', crashAt: 7 }, restarts: 1 });
    await system.start();
    await until(() => system.spine.queue(0).stats().published === 50, 'every tick');
    const report = await system.stop();
    // phoenix crashed 4 times (3 restarts), again twice (1).
    expect(report.crashes.length).toBeGreaterThanOrEqual(2);
    expect((report.persist as PersistReport).flushed).toBe(true);
    expect(disagreements(await reportAndLake(report, { data: dir }))).toEqual([]);
  }, 60_000);

  it('a thread terminated at the stop while it logs flat out: they agree', async () => {
    const dir = lakeDir();
    const done = new SharedArrayBuffer(4);
    const system = new System(spine, { persist: { data: dir }, drainTimeoutMs: 50, exitTimeoutMs: 50 });
    system.spawn(fixture('feed'), { args: { count: 50 } });
    system.spawn(fixture('grinder'), { args: { workMs: 3000 } });
    system.spawn(fixture('chatty'), { args: { perLoop: 1_000_000, distinct: 100, total: 1e12, done } });
    await system.start();
    await until(() => system.spine.queue(0).stats().published === 50, 'every tick');
    const report = await system.stop();
    expect(report.terminated.length).toBeGreaterThan(0);
    expect((report.persist as PersistReport).flushed).toBe(true);
    expect(disagreements(await reportAndLake(report, { data: dir }))).toEqual([]);
  }, 60_000);

  it('one record per block and a 1 ms flush deadline: the blocks in flight at the deadline, stored by the lake, are not reported lost', async () => {
    const dir = lakeDir();
    const system = new System(spine, { persist: { data: dir, blockBytes: 1, flushTimeoutMs: 1 } });
    system.spawn(fixture('feed'), { args: { count: 3000, perLoop: 100 } });
    system.spawn(fixture('strategy'));
    await system.start();
    await until(() => system.spine.queue(1).stats().published === 6000, 'every order');
    const report = await system.stop();
    const rows = await reportAndLake(report, { data: dir });
    // Past the deadline blocks are dropped (not all reach the lake), but never one the lake holds.
    for (const r of rows) expect(Math.max(0, r.lakeRecords), r.source).toBe(r.reportPersisted);
  }, 60_000);

  it('blocks a server refuses during the stop’s flush: lost in the lake as in the report', async () => {
    const dir = lakeDir();
    // Blocks of records are refused (too large); blocks of coverage alone pass.
    const server = await startIngestionServer({ port: 0, lake: { data: dir }, maxBlockBytes: 600 });
    try {
      const system = new System(spine, { persist: { url: server.url, flushTimeoutMs: 3000 } });
      system.spawn(fixture('feed'), { args: { count: 100, perLoop: 10 } });
      system.spawn(fixture('strategy'));
      await system.start();
      await until(() => system.spine.queue(1).stats().published === 200, 'every order');
      const report = await system.stop();
      // Why, in the report: the server's own words.
      expect((report.persist as PersistReport).deliveryError).toMatch(/ingestion answered 4\d\d/);
      const rows = await reportAndLake(report, { data: dir });
      expect(rows.find((r) => r.source === 'messages:ticks')).toMatchObject({
        reportPersisted: 0,
        reportLost: 100,
        lakeRecords: 0,
        lakeLost: 100,
      });
      expect(disagreements(rows, { everyBlockStored: false })).toEqual([]);
    } finally {
      await server.close();
    }
  }, 60_000);

  it("an actor named as the main thread: each thread's drops at the source in the lake's losses, not one of them", async () => {
    const dir = lakeDir();
    const done = new SharedArrayBuffer(4);
    const system = new System(spine, { persist: { data: dir } });
    system.spawn(fixture('chatty'), {
      args: { name: 'main', perLoop: 50, distinct: 6000, total: 6000, done },
    });
    await system.start();
    // The main thread drops 3 of its own: templates that are no strings.
    const log = logger('main-thread');
    for (let i = 0; i < 3; i++) log.info(i as unknown as string);
    await until(() => Atomics.load(new Int32Array(done), 0) === 1, 'every event of the actor');
    const report = await system.stop();
    // The report names a thread's sources by the thread; the lake names an actor's by the actor.
    const dropped = (report.persist as PersistReport).sources
      .filter((s) => s.kind === 'log' && (s.name === 'main' || s.name === 'actor-0'))
      .map((s) => s.dropped)
      .sort((a, b) => a! - b!);
    expect(dropped).toHaveLength(2);
    expect(dropped[0]).toBe(3);
    expect(dropped[1]).toBeGreaterThan(3);
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    try {
      const { rows } = await analytics.query(
        "SELECT dropped::INTEGER FROM losses WHERE stream = 'log:main' AND counted_by = 'persister' ORDER BY 1",
        { process: (report.persist as PersistReport).processId },
      );
      expect(rows.map((r) => r[0])).toEqual(dropped);
    } finally {
      await analytics.close();
    }
  }, 60_000);

  it('a server too slow for the flush deadline: what was not sent is lost in the lake as in the report', async () => {
    const dir = lakeDir();
    const server = await startIngestionServer({ port: 0, lake: { data: dir } });
    // In front of it, a proxy that, once slow, holds every request 200 ms.
    let delayMs = 0;
    const front = await proxy(server.url, () => delayMs);
    try {
      const url = front.url;
      const system = new System(spine, { persist: { url, blockMs: 20, flushTimeoutMs: 4000 } });
      system.spawn(fixture('feed'), { args: { count: 0, perLoop: 20 } });
      system.spawn(fixture('strategy'));
      await system.start();
      await until(() => system.spine.queue(0).stats().published > 5000, 'ticks');
      delayMs = 200;
      // Blocks pile up behind the slow server: more than the deadline lets through.
      await until(() => system.spine.queue(0).stats().published > 60_000, 'a backlog of ticks');
      const report = await system.stop();
      expect((report.persist as PersistReport).flushed).toBe(false);
      const rows = await reportAndLake(report, { data: dir });
      // The blocks not sent took their records away; the lake was told of each record lost.
      expect(rows.find((r) => r.source === 'messages:ticks')!.reportLost).toBeGreaterThan(0);
      expect(disagreements(rows, { everyBlockStored: false })).toEqual([]);
    } finally {
      front.close();
      await server.close();
    }
  }, 60_000);

  it('every block but the run’s counts failing slowly through the stop: the lake still knows every loss, those dropped after the account as unrecorded', async () => {
    const dir = lakeDir();
    const server = await startIngestionServer({ port: 0, lake: { data: dir } });
    // In front of it, a proxy that, once failing, answers every block but the run's counts with
    // a 503 after 2.5 s (records pass). The stop's last coverage never reaches the lake, and the
    // blocks in flight at its flush deadline (2 s of 4) come back after the persister's account
    // was made: the sink drops them at its close, losses that no block the lake holds says.
    let failing = false;
    let failed = 0;
    const countsStreams = new Set<string>();
    const front = await proxy(server.url, (url, body) => {
      if (failing && url === '/ingestion/insert_block' && !countsStreams.has(decodeBlock(body).streamId)) {
        failed++;
        return { status: 503, afterMs: 2500 };
      }
      if (url === '/ingestion/insert_stream' && decodeStreamInfo(body).tags.includes('counts')) {
        countsStreams.add(decodeStreamInfo(body).streamId);
      }
      return 0;
    });
    try {
      const url = front.url;
      const system = new System(spine, { persist: { url, blockMs: 20, flushTimeoutMs: 4000 } });
      system.spawn(fixture('feed'), { args: { count: 0, perLoop: 20 } });
      system.spawn(fixture('strategy'));
      await system.start();
      await until(() => system.spine.queue(0).stats().published > 20_000, 'ticks');
      failing = true;
      const report = await system.stop();
      const persist = report.persist as PersistReport;
      expect(persist.flushed).toBe(false);
      expect(failed).toBeGreaterThan(0);
      const rows = await reportAndLake(report, { data: dir });
      // What the lake holds is what the report says persisted; its coverage misses losses.
      for (const r of rows) expect(Math.max(0, r.lakeRecords), r.source).toBe(r.reportPersisted);
      const ticks = rows.find((r) => r.source === 'messages:ticks')!;
      expect(ticks.lakeLost).toBeLessThan(ticks.reportLost);
      // The analytics' losses are the report's, the blocks dropped last as `unrecorded`.
      const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
      const { rows: losses } = await analytics
        .query("SELECT stream, lost::DOUBLE, unrecorded::DOUBLE FROM losses WHERE counted_by = 'persister'", {
          process: persist.processId,
        })
        .finally(() => analytics.close());
      const said = new Map(losses.map((r) => [String(r[0]), [Number(r[1]), Number(r[2])]]));
      const messages = persist.sources.filter((x) => x.kind === 'messages');
      // Counted lost, and what the lake holds of neither: together, what the report lost.
      for (const s of messages) expect(said.get(s.name)![0]! + said.get(s.name)![1]!, s.name).toBe(s.lost);
      expect(messages.reduce((n, s) => n + said.get(s.name)![1]!, 0)).toBeGreaterThan(0);
    } finally {
      front.close();
      await server.close();
    }
  }, 60_000);

  it('a run that publishes nothing, on a stream that held messages before its start: nothing lost, nothing unrecorded', async () => {
    const dir = lakeDir();
    const system = new System(spine, { persist: { data: dir } });
    const producer = system.spine.queue(0).producer();
    for (let i = 0; i < 5; i++) producer.publish({ n: i, price: 1 });
    producer.close();
    system.spawn(fixture('idle'), { args: { name: 'idle' } });
    await system.start();
    const report = await system.stop();
    expect(await analyticsDisagreements(report, dir)).toEqual([]);
  }, 60_000);

  it('retention deleting a run’s oldest blocks, of one stream every block: unrecorded, not lost, and exactly those', async () => {
    const dir = lakeDir();
    const system = new System(spine, { persist: { data: dir, blockMs: 5 } });
    system.spawn(fixture('feed'), { args: { count: 3000, perLoop: 10 } });
    system.spawn(fixture('strategy'));
    await system.start();
    await until(() => system.spine.queue(1).stats().published === 6000, 'every order');
    const report = await system.stop();
    const persist = report.persist as PersistReport;
    // The oldest half of each message stream's blocks, and every block of orders, as retention
    // finds them once they are old (the counts, kept at the stop, stay).
    const lake = Lake.open({ data: dir });
    const deleted = new Map<string, number>();
    try {
      const old: string[] = [];
      for (const stream of await lake.streams({ processId: persist.processId })) {
        if (!stream.tags.includes('messages')) continue;
        const blocks = (await lake.blocks({ streamId: stream.streamId })).sort(
          (x, y) => x.beginTicks - y.beginTicks,
        );
        const all = stream.properties.name === 'orders';
        // Half of them, and at least the first that holds records (a loaded host cuts few blocks).
        const half = Math.max(Math.floor(blocks.length / 2), blocks.findIndex((b) => b.objectCount > 0) + 1);
        const aged = blocks.slice(0, all ? blocks.length : half);
        old.push(...aged.map((b) => b.blockId));
        deleted.set(
          String(stream.properties.name),
          aged.reduce((n, b) => n + b.objectCount, 0),
        );
      }
      await sqliteAge(dir)('blocks', old);
      expect((await applyRetention(lake, { days: 1, pauseMs: 0 })).blocks).toBe(old.length);
    } finally {
      await lake.close();
    }
    expect(deleted.get('ticks')).toBeGreaterThan(0);
    expect(deleted.get('orders')).toBe(6000);
    const analytics = await Analytics.open({ lake: { data: dir }, cacheDir: join(dir, 'analytics') });
    const { rows } = await analytics
      .query(
        "SELECT stream, lost::DOUBLE, unrecorded::DOUBLE FROM losses WHERE counted_by = 'persister' AND stream IN ('ticks', 'orders') ORDER BY stream",
        { process: persist.processId },
      )
      .finally(() => analytics.close());
    // Not lost (the run lost nothing): not in the lake, as many as retention deleted.
    const expected = [...deleted].map(([name, n]) => [name, 0, n]);
    expect(rows).toEqual(expected.sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
  }, 60_000);

  it('the server gone mid-run: what the report says persisted is what the lake holds', async () => {
    const dir = lakeDir();
    const server = await startIngestionServer({ port: 0, lake: { data: dir } });
    const system = new System(spine, { persist: { url: server.url, blockMs: 20, flushTimeoutMs: 1500 } });
    system.spawn(fixture('feed'), { args: { count: 0, perLoop: 20 } });
    system.spawn(fixture('strategy'));
    await system.start();
    await until(() => system.spine.queue(0).stats().published > 5000, 'ticks');
    await server.close();
    const report = await system.stop();
    expect((report.persist as PersistReport).flushed).toBe(false);
    // The losses after the server went cannot reach its lake; the records it holds are counted.
    expect(
      disagreements(await reportAndLake(report, { data: dir }), {
        lossesInLake: false,
        everyBlockStored: false,
      }),
    ).toEqual([]);
  }, 60_000);
});
