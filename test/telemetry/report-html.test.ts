import { describe, expect, it } from 'vitest';
import type { MessageTree, TreeNode } from '../../src/telemetry/analytics/questions.js';
import type { ReportData } from '../../src/telemetry/views/report-data.js';
import { niceBucket } from '../../src/telemetry/views/report-data.js';
import { renderReport } from '../../src/telemetry/views/report-html.js';

const HOSTILE = '<img src=x onerror=alert(1)>';

/** A report of a process that recorded nothing, with names chosen to break out of the markup. */
function emptyReport(overrides: Partial<ReportData> = {}): ReportData {
  return {
    process: {
      processId: `p${HOSTILE}`,
      exe: HOSTILE,
      startTime: '2026-01-01 00:00:00+00',
      properties: { 'dorsal.system': HOSTILE },
      replayOf: `"${HOSTILE}`,
      originalInLake: true,
    },
    unreadable: { blocks: 0, records: 0, errors: [] },
    untimed: 0,
    countsErrors: [],
    time: { beginNs: 0, endNs: 1, bucketNs: 1_000_000, buckets: 1, spanned: false },
    offAxis: 0,
    topology: { actors: [], streams: [], produced: [], consumed: [], persister: [] },
    latency: [],
    throughput: [],
    gaps: [],
    slowest: [],
    instrumentation: { levels: [], topLogs: [], metrics: [], spans: [] },
    ...overrides,
  };
}

describe('the report page', () => {
  it('says what a process without messages, timings or events lacks, and draws no chart of it', () => {
    const html = renderReport(emptyReport());
    expect(html).toContain('No message recorded.');
    expect(html).toContain('No timing record.');
    expect(html).toContain('No message tree in this process.');
    expect(html).toContain('No log entry.');
    expect(html).not.toContain('<svg');
    expect(html).not.toContain('data-unreadable-blocks');
  });

  it('says how many blocks of the run did not read, and why for the first few, escaped', () => {
    const html = renderReport(
      emptyReport({ unreadable: { blocks: 7, records: 7168, errors: [`block 1: no blob at ${HOSTILE}`] } }),
    );
    expect(html).toContain('data-unreadable-blocks="7"');
    expect(html).toContain('7 blocks of this run did not read');
    expect(html).toContain('7,168 records are in none of the figures below');
    expect(html).toContain('<code>block 1: no blob at &lt;img');
    expect(html).toContain('lists them all');
    expect(html).not.toContain('<img');
  });

  it('escapes every name it shows: an actor, a stream, a log line or a link cannot add markup', () => {
    const base = emptyReport();
    const html = renderReport(
      emptyReport({
        process: {
          ...base.process,
          diff: {
            diverged: 1,
            limit: 5,
            streams: [{ stream: HOSTILE, matched: 0, differing: 1, onlyRecorded: 0, onlyReplayed: 0 }],
            divergences: [
              {
                kind: HOSTILE,
                stream: HOSTILE,
                place: HOSTILE,
                recordedSeq: 1,
                replayedSeq: 1,
                fields: [{ field: HOSTILE, recorded: HOSTILE, replayed: { [HOSTILE]: HOSTILE } }],
              },
            ],
          },
        },
        topology: {
          actors: [HOSTILE],
          streams: [HOSTILE],
          produced: [{ actor: HOSTILE, stream: HOSTILE, count: 3 }],
          consumed: [{ actor: HOSTILE, stream: HOSTILE, count: 3, gaps: 1, firstSeq: 0, lapped: 4 }],
          persister: [{ stream: HOSTILE, lost: 2, dropped: 0, unrecorded: 0 }],
        },
        instrumentation: {
          levels: [{ level: HOSTILE, count: 1 }],
          topLogs: [{ level: 'info', target: HOSTILE, message: HOSTILE, count: 1 }],
          metrics: [],
          spans: [{ name: HOSTILE, count: 1, totalNs: 5, maxNs: 5, p99Ns: 5 }],
        },
      }),
      { processHref: (id) => `/?process=${encodeURIComponent(id)}` },
    );
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toMatch(/<a data-replay-of="&quot;&lt;img[^"]*" href="\/\?process=%22%3Cimg/);
  });

  it('says when a replay was made without --diff, when its diff found nothing, and how many it kept of more', () => {
    const base = emptyReport();
    const streams = [{ stream: 'orders', matched: 4, differing: 0, onlyRecorded: 0, onlyReplayed: 0 }];
    expect(renderReport(base)).toContain('data-divergences="absent"');
    const none = renderReport(
      emptyReport({
        process: { ...base.process, diff: { diverged: 0, limit: 5, streams, divergences: [] } },
      }),
    );
    expect(none).toContain('data-divergences="0"');
    expect(none).toContain('No divergence');
    expect(none).toContain('data-stream="orders" data-matched="4"');
    const some = renderReport(
      emptyReport({
        process: {
          ...base.process,
          diff: {
            diverged: 7,
            limit: 1,
            streams,
            divergences: [
              {
                kind: 'only-replayed',
                stream: 'orders',
                place: 'ticks:3/books:0/orders:2',
                recordedSeq: null,
                replayedSeq: 9,
                fields: [],
              },
            ],
          },
        },
      }),
    );
    expect(some).toContain('data-divergences="7"');
    expect(some).toContain('the first 1 below');
    expect(some).toContain('replayed only · recorded —, replayed #9');
    // Not a replay: no section.
    const { replayOf: _, ...plain } = base.process;
    expect(renderReport(emptyReport({ process: plain }))).not.toContain('id="divergences"');
  });

  it('draws a tree’s rows depth first, 200 at most, and says what it left out: rows, and messages below the levels kept', () => {
    /** A chain `depth` messages deep, each handled once; the deepest says `cut` more are below it. */
    const chain = (depth: number, cut: number): MessageTree => {
      let node: TreeNode | undefined;
      for (let i = depth - 1; i >= 0; i--) {
        node = {
          stream: i === 0 ? 'ticks' : 'echo',
          seq: i,
          actor: 'a',
          fields: {},
          publishNs: i * 10,
          hopNs: i === 0 ? 0 : 10,
          publishTime: '2026-01-01 00:00:00+00',
          handled: [
            { actor: 'b', startNs: i * 10 + 1, endNs: i * 10 + 5, latencyNs: i * 10 + 5, processingNs: 4 },
          ],
          children: node === undefined ? [] : [node],
          ...(i === depth - 1 && cut > 0 ? { cut } : {}),
        };
      }
      return {
        process: 'p',
        originT: 0,
        root: node!,
        nodes: depth + cut,
        latencyNs: depth * 10,
        missingParent: false,
      };
    };
    const rowsOf = (html: string) => Number(/data-rows="(\d+)"/.exec(html)?.[1]);
    const small = renderReport(emptyReport({ slowest: [chain(3, 0)] }));
    expect(rowsOf(small)).toBe(3);
    expect(small).not.toContain('not drawn');
    const deep = renderReport(emptyReport({ slowest: [chain(256, 1000)] }));
    expect(rowsOf(deep)).toBe(200);
    expect(deep).toContain('56 more rows and 1000 messages below the 256 levels a tree keeps not drawn.');
    // Depth first: the first rows are the root's, then its child's, in order.
    expect(deep.indexOf('ticks #0')).toBeLessThan(deep.indexOf('echo #1'));
    expect(deep.indexOf('echo #1')).toBeLessThan(deep.indexOf('echo #2'));
  });

  it("sums the persister's losses of two lake streams that share a spine stream's name (two threads' own)", () => {
    const html = renderReport(
      emptyReport({
        topology: {
          actors: ['main', 'feed'],
          streams: ['log'],
          produced: [
            { actor: 'main', stream: 'log', count: 10 },
            { actor: 'feed', stream: 'log', count: 10 },
          ],
          consumed: [],
          persister: [
            { stream: 'log', lost: 3, dropped: 1, unrecorded: 0 },
            { stream: 'log', lost: 5, dropped: 0, unrecorded: 2 },
          ],
        },
      }),
    );
    // Neither in the lake nor counted lost: missing all the same, and said apart.
    expect(html).toContain('persister lost 11');
    expect(html).toContain('log: 5 lost, 2 neither in the lake nor counted lost');
  });

  it('tells no rate of a run of one time (one message over 1 ns was 1 G/s), and one over a second as it is', () => {
    const topology = {
      actors: ['feed'],
      streams: ['ticks'],
      produced: [{ actor: 'feed', stream: 'ticks', count: 1 }],
      consumed: [],
      persister: [],
    };
    const once = renderReport(emptyReport({ topology }));
    expect(once).toContain('1 messages at one time');
    expect(once).toMatch(
      /<td[^>]*>feed<\/td><td[^>]*>publishes<\/td><td[^>]*>ticks<\/td><td[^>]*>1<\/td><td[^>]*>—<\/td>/,
    );
    expect(once).not.toContain('1.00G');
    const spanned = renderReport(
      emptyReport({
        topology: { ...topology, produced: [{ actor: 'feed', stream: 'ticks', count: 2000 }] },
        time: { beginNs: 0, endNs: 2e9, bucketNs: 1e9, buckets: 2, spanned: true },
      }),
    );
    expect(spanned).toContain('2,000 messages over');
    expect(spanned).toMatch(/<td[^>]*>ticks<\/td><td[^>]*>2,000<\/td><td[^>]*>1000<\/td>/);
  });

  it('cuts time into buckets of 1, 2 or 5 × 10^k ns, at least a millisecond', () => {
    expect(niceBucket(1)).toBe(1_000_000);
    expect(niceBucket(1_000_001)).toBe(2_000_000);
    expect(niceBucket(3_000_000)).toBe(5_000_000);
    expect(niceBucket(16_000_000)).toBe(20_000_000);
    expect(niceBucket(60e9)).toBe(100e9);
  });
});
