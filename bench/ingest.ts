/**
 * Ingest throughput: blocks of 1k, 16k and 64k events (32 bytes each) stored into the embedded
 * lake (SQLite + blob directory, blobs fsynced), in process and over HTTP on loopback (a
 * `dorsal serve` child process, so client and server each have a core).
 *
 * Baselines measured in the same run: writing the same blobs alone (the disk's floor) for the
 * embedded rows; the embedded rows for the HTTP rows.
 *
 * Run alone: `npm run build && node dist/bench/ingest.js [--quick]`; in the suite: `npm run bench`.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { IngestionService } from '../src/telemetry/ingestion/service.js';
import { DirectoryBlobStore } from '../src/telemetry/lake/directory-blobs.js';
import { blobPath } from '../src/telemetry/lake/types.js';
import { HttpTransport } from '../src/telemetry/sink/transport.js';
import { encodePayloadBlob, encodeProcessInfo, encodeStreamInfo } from '../src/telemetry/wire/index.js';
import { benchProcess, blockTemplate, EVENT_BYTES, encodedTemplate, stampId } from './ingest/data.js';
import { spawnServer } from './ingest/server-child.js';
import type { BenchRow, BenchSection } from './types.js';

const GROUP = 'ingest';
const SIZES = [1024, 16_384, 65_536] as const;
const IN_FLIGHT = 4;

/** Runs `op` from `concurrency` loops for `seconds`; returns operations per second. */
async function loops(seconds: number, concurrency: number, op: () => Promise<void>): Promise<number> {
  let done = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await op();
        done += 1;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

/**
 * Operations per second over `seconds`, after a quarter as long unrecorded: V8 compiles the
 * paths (in the server too) on the same two cores while they first run.
 */
async function rate(seconds: number, concurrency: number, op: () => Promise<void>): Promise<number> {
  await loops(seconds / 4, concurrency, op);
  return loops(seconds, concurrency, op);
}

function rows(label: string, events: number, blocksPerSecond: number, extra: Partial<BenchRow>): BenchRow[] {
  const eventsPerSecond = blocksPerSecond * events;
  const name = `${label}, ${events / 1024}k events/block`;
  return [
    { group: GROUP, name, value: Math.round(eventsPerSecond), unit: 'events/s', ...extra },
    { group: GROUP, name: `${name} (raw bytes)`, value: (eventsPerSecond * EVENT_BYTES) / 1e6, unit: 'MB/s' },
  ];
}

function withRatio(row: BenchRow, baseline: BenchRow, target: string, goal: number): BenchRow {
  return {
    ...row,
    baseline: baseline.name,
    ratio: row.value / baseline.value,
    target,
    met: row.value >= goal,
  };
}

/**
 * µs to create an empty file in a new directory of the bench's disk. Every block is a new file,
 * so this bounds every ingest row. On ext4 without a journal (this VM's), the kernel skips inodes
 * freed in the last minutes when it allocates one, and scans past them again for every file it
 * creates: after many deletions (an earlier run's cleanup, an `npm ci`) the cost is hundreds of µs
 * instead of tens, and it climbs as a run creates files.
 */
function fileCreationUs(dir: string, name: string): number {
  const at = join(dir, name);
  mkdirSync(at);
  const n = 500;
  const start = performance.now();
  for (let i = 0; i < n; i++) closeSync(openSync(join(at, String(i)), 'wx'));
  return ((performance.now() - start) * 1000) / n;
}

function fileCreation(us: number): BenchRow {
  return {
    group: GROUP,
    name: 'creating an empty file on the bench disk (the state of the disk: every block is a new file)',
    value: us,
    unit: 'µs',
    note: "ext4 without a journal creates files slowly for minutes after many deletions; each size's embedded row notes the cost measured just before it",
  };
}

/** The lake's blob store alone, then the embedded ingestion service, for blocks of `events`. */
async function embedded(seconds: number, dir: string, events: number, diskUs: number): Promise<BenchRow[]> {
  const service = new IngestionService({ data: join(dir, `embedded-${events}`) });
  const { process, stream } = benchProcess();
  await service.ingestProcess(process);
  await service.ingestStream(stream);
  const template = blockTemplate(stream, events);
  const blob = encodePayloadBlob(template.payload);
  const blobs = new DirectoryBlobStore(join(dir, `blobs-only-${events}`));
  try {
    const floor = await rate(seconds, IN_FLIGHT, async () => {
      await blobs.putIfAbsent(blobPath(process.processId, stream.streamId, randomUUID()), blob);
    });
    const ingest = await rate(seconds, IN_FLIGHT, async () => {
      await service.ingestBlock({ ...template, blockId: randomUUID() });
    });
    const [base] = rows('blob writes alone (fsync)', events, floor, {});
    const [row, mb] = rows('embedded ingest', events, ingest, {
      note: `${IN_FLIGHT} in flight; block of ${template.payload.objects.length} bytes compressed; creating a file took ${diskUs.toFixed(0)} µs just before`,
    });
    return [
      base as BenchRow,
      withRatio(row as BenchRow, base as BenchRow, '≥ 2 M events/s', 2e6),
      mb as BenchRow,
    ];
  } finally {
    await blobs.close();
    await service.close();
  }
}

/** The same blocks through `dorsal serve` on loopback; the baseline is the embedded row just before. */
async function overHttp(
  seconds: number,
  transport: HttpTransport,
  events: number,
  embeddedRow: BenchRow | undefined,
  diskUs: number,
): Promise<BenchRow[]> {
  const { process, stream } = benchProcess();
  await transport.send('process', encodeProcessInfo(process));
  await transport.send('stream', encodeStreamInfo(stream));
  const { bytes, idAt } = encodedTemplate(blockTemplate(stream, events));
  const copies = Array.from({ length: IN_FLIGHT }, () => Uint8Array.from(bytes));
  let next = 0;
  const ingest = await rate(seconds, IN_FLIGHT, async () => {
    const body = copies[next++ % IN_FLIGHT] as Uint8Array;
    stampId(body, idAt);
    await transport.send('block', body);
  });
  const [row, mb] = rows('HTTP ingest (loopback)', events, ingest, {
    note: `${IN_FLIGHT} requests in flight; server in a child process; creating a file took ${diskUs.toFixed(0)} µs just before`,
  });
  return [
    embeddedRow === undefined
      ? (row as BenchRow)
      : withRatio(row as BenchRow, embeddedRow, '≥ 1 M events/s', 1e6),
    mb as BenchRow,
  ];
}

/** The ingest section of the bench suite. */
export const ingestBench: BenchSection = {
  group: GROUP,
  async run({ quick }) {
    const seconds = quick ? 1 : 3;
    const dir = mkdtempSync(join(tmpdir(), 'dorsal-bench-ingest-'));
    const server = await spawnServer(join(dir, 'http'));
    const transport = new HttpTransport(server.url, { maxSockets: IN_FLIGHT });
    try {
      const out = [fileCreation(fileCreationUs(dir, 'create-probe'))];
      // Each size's rows run one after the other, so that the HTTP row and the embedded row it is
      // compared with meet the same state of the disk (which degrades as a run creates files).
      for (const events of SIZES) {
        const local = await embedded(seconds, dir, events, fileCreationUs(dir, `create-probe-${events}`));
        const diskUs = fileCreationUs(dir, `create-probe-http-${events}`);
        out.push(...local, ...(await overHttp(seconds, transport, events, local[1], diskUs)));
      }
      return out;
    } finally {
      await transport.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  console.log(`dorsal bench: ingest throughput${quick ? ' (quick)' : ''}`);
  const results = await ingestBench.run({ quick });
  console.log('| name | value | unit | target | met | ratio vs baseline |');
  console.log('|---|---:|---|---|---|---|');
  for (const r of results) {
    const value = r.unit === 'MB/s' ? r.value.toFixed(1) : r.value.toLocaleString('en-US');
    const ratio = r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}× ${r.baseline}`;
    console.log(`| ${r.name} | ${value} | ${r.unit} | ${r.target ?? ''} | ${r.met ?? ''} | ${ratio} |`);
  }
  for (const r of results) if (r.note !== undefined) console.log(`- ${r.name}: ${r.note}`);
}
