import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { compiled } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';
import { firstBlockIn, runDorsal, spawnDorsal, startDorsalServe } from './cli-helpers.js';
import { tempDir } from './fixtures.js';

const SYSTEM = 'examples/market/system.ts';
const SUMMARY =
  /^([\d,]+) messages, ([\d,]+) timing records, ([\d,]+) events recorded in (.+); ([\d,]+) lost/m;
const number = (text: string) => Number(text.replaceAll(',', ''));

interface TreeJson {
  readonly nodes: number;
  readonly root: { stream: string; seq: number; children: { stream: string; children: unknown[] }[] };
}

describe('the dorsal command on a recorded run', () => {
  const { dir, cleanup } = tempDir('dorsal-cli-');
  let run: Awaited<ReturnType<typeof runDorsal>>;

  beforeAll(async () => {
    run = await runDorsal(['run', SYSTEM, '--seconds', '1', '--data', dir]);
  }, 120_000);
  afterAll(cleanup);

  it('run: records the system, then prints what each actor did, the percentiles, the slowest tree and the totals', () => {
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /what each actor did\nactor +stream +handled +produced +lost +failed +unread\n/,
    );
    expect(run.stdout).toMatch(/^book-builder +ticks +[\d,]+ +0 +0 +0 +0$/m);
    expect(run.stdout).toMatch(/latency since the origin, and handler time/);
    expect(run.stdout).toMatch(/the slowest message tree\ntree of ticks #\d+: \d+ messages, latency/);
    const [, messages, timings, , where] = SUMMARY.exec(run.stdout)!;
    expect(number(messages!)).toBeGreaterThan(0);
    expect(number(timings!)).toBeGreaterThan(0);
    expect(where).toBe(dir);
  });

  it('processes: the recorded process, with its counts', async () => {
    const { code, stdout } = await runDorsal(['processes', '--data', dir, '--json']);
    expect(code).toBe(0);
    const listing = JSON.parse(stdout) as {
      processId: string;
      messages: number;
      timings: number;
      replayOf: null;
    }[];
    expect(listing).toHaveLength(1);
    expect(listing[0]!.messages).toBe(number(SUMMARY.exec(run.stdout)![1]!));
    expect(listing[0]!.timings).toBe(number(SUMMARY.exec(run.stdout)![2]!));
    expect(listing[0]!.replayOf).toBeNull();
    // The process says which system module it ran (what a replay runs again).
    const system = await runDorsal([
      'query',
      "SELECT properties->>'dorsal.system' FROM processes",
      '--data',
      dir,
      '--json',
    ]);
    expect((JSON.parse(system.stdout) as { rows: string[][] }).rows[0]![0]).toBe(
      pathToFileURL(compiled('examples/market/system.ts')).href,
    );
    // --data on the command line beats DORSAL_URL (the server's lake was listed); both variables
    // set, the command asks which.
    const beaten = await runDorsal(['processes', '--data', dir, '--json'], {
      DORSAL_URL: 'http://127.0.0.1:9',
    });
    expect(beaten.code, beaten.stderr).toBe(0);
    expect(JSON.parse(beaten.stdout)).toEqual(listing);
    const both = await runDorsal(['processes', '--json'], {
      DORSAL_DATA: dir,
      DORSAL_URL: 'http://127.0.0.1:9',
    });
    expect(both.code).toBe(1);
    expect(both.stderr).toBe(
      'error: DORSAL_DATA and DORSAL_URL are both set: give --data or --url to say which\n',
    );
    const table = await runDorsal(['processes', '--data', dir]);
    expect(table.stdout).toMatch(/^process +exe +start +duration +messages +timings +replay of$/m);
    expect(table.stdout).toContain(listing[0]!.processId);
  });

  it('stats: percentiles per actor × stream, and per actor alone', async () => {
    const { code, stdout } = await runDorsal(['stats', '--data', dir, '--json']);
    expect(code).toBe(0);
    const { rows } = JSON.parse(stdout) as {
      rows: { actor: string; stream: string; count: number; latency: { p50: number; max: number } }[];
    };
    expect(rows.map((r) => [r.actor, r.stream])).toEqual([
      ['book-builder', 'ticks'],
      ['gateway', 'orders'],
      ['strategy', 'books'],
    ]);
    for (const row of rows) expect(row.latency.p50).toBeLessThanOrEqual(row.latency.max);
    const byActor = await runDorsal(['stats', '--data', dir, '--by', 'actor']);
    expect(byActor.stdout).toMatch(/^actor +count +p50 +p90 +p99 +p99\.9 +max +handler p50/m);
    expect(byActor.stdout).toMatch(/^gateway +[\d,]+ +[\d.]+ [nµm]?s/m);
  });

  it('tree: the slowest trees and the tree of one message, drawn or as JSON', async () => {
    const slowest = await runDorsal(['tree', '--data', dir, '--slowest', '2', '--json']);
    expect(slowest.code).toBe(0);
    const trees = JSON.parse(slowest.stdout) as TreeJson[];
    expect(trees).toHaveLength(2);
    expect(trees.every((t) => t.root.stream === 'ticks')).toBe(true);
    const one = await runDorsal(['tree', '--data', dir, '--message', 'books:5', '--json']);
    const [tree] = JSON.parse(one.stdout) as TreeJson[];
    expect([tree!.root.stream, tree!.root.seq]).toEqual(['ticks', 5]);
    expect(tree!.root.children.map((c) => c.stream)).toEqual(['books']);
    const drawn = await runDorsal(['tree', '--data', dir, '--message', 'ticks:5']);
    expect(drawn.stdout).toMatch(/^ticks #5 feed \{.*\} at \+0 ns/m);
    expect(drawn.stdout).toMatch(/^└─ books #5 book-builder \{.*\} at \+[\d.]+ [nµm]?s hop/m);
  });

  it('query: read-only SQL as a table, JSON or CSV', async () => {
    const csv = await runDorsal([
      'query',
      'SELECT stream, count(*) AS n FROM messages GROUP BY 1 ORDER BY 1',
      '--data',
      dir,
      '--format',
      'csv',
    ]);
    expect(csv.code).toBe(0);
    expect(csv.stdout.split('\r\n')[0]).toBe('stream,n');
    expect(
      csv.stdout
        .split('\r\n')
        .slice(1, -1)
        .map((l) => l.split(',')[0]),
    ).toEqual(['acks', 'books', 'orders', 'ticks']);
    const json = await runDorsal(['query', 'SELECT 6 * 7 AS answer', '--data', dir, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ columns: [{ name: 'answer' }], rows: [[42]] });
    const table = await runDorsal(['query', "SELECT 'a' AS x, 1 AS y", '--data', dir]);
    expect(table.stdout).toMatch(/^x +y\na +1$/m);
    // Recorded text reaches the terminal escaped: no escape sequence of its own, no row split.
    const controls = await runDorsal([
      'query',
      "SELECT chr(27) || '[31mred' || chr(10) || 'next' AS x",
      '--data',
      dir,
    ]);
    expect(controls.stdout).toBe('x\n\\u001b[31mred\\nnext\n');
    // A table of many rows (a spread of them all into Math.max overflowed the stack).
    const long = await runDorsal([
      'query',
      'SELECT * FROM range(200000)',
      '--data',
      dir,
      '--max-rows',
      '200000',
    ]);
    expect(long.code, long.stderr).toBe(0);
    expect(long.stderr).toBe('200000 rows\n');
  });

  it('says what went wrong in one line, and exits 1', async () => {
    const failures: [string[], RegExp][] = [
      [['stats', '--data', join(dir, 'nope')], /^dorsal: no lake in .*nope: record a run first/],
      [
        ['stats', '--data', dir, '--process', 'ffffffff'],
        /^dorsal: no process ffffffff in .*: `dorsal processes` lists them/,
      ],
      [['query', 'SELEC 1', '--data', dir], /^dorsal: the query does not parse/],
      [
        ['stats', '--data', dir, '--process', 'abc', '--process', 'def'],
        /option '--process <id>' argument 'def' is invalid\. one process only, got abc and def/,
      ],
      [
        ['query', 'SELECT 1', '--data', dir, '--all-processes', '--process', 'abc'],
        /option '--all-processes' cannot be used with option '--process <id>'/,
      ],
      [
        ['query', 'SELECT 1', '--data', dir, '--json', '--format', 'csv'],
        /option '--format <format>' cannot be used with option '--json'/,
      ],
      [
        ['query', 'DROP TABLE blocks', '--data', dir],
        /^dorsal: the analytics are read-only: only SELECT is answered, got DROP/,
      ],
      [
        ['stats', '--url', 'http://127.0.0.1:1'],
        /^dorsal: cannot reach http:\/\/127\.0\.0\.1:1: is `dorsal serve` running there\?/,
      ],
      [['tree', '--data', dir, '--message', 'ticks'], /expected STREAM:SEQ/],
      [['processes', '--data', dir, '--url', 'http://127.0.0.1:9'], /give --data or --url, not both/],
      [['tree', '--data', dir, '--message', 'ticks:'], /expected STREAM:SEQ/],
      [['tree', '--data', dir, '--message', 'ticks:0x10'], /expected STREAM:SEQ/],
      [['tree', '--data', dir, '--message', 'ticks: 7'], /expected STREAM:SEQ/],
      [['run', 'no/such/system.js', '--data', dir], /^dorsal: no system module at no\/such\/system\.js/],
      [['run', 'examples/market/spine.ts', '--data', dir], /must export default defineSystem/],
      [
        ['run', SYSTEM, '--data', dir, '--flush-timeout', '0'],
        /option '--flush-timeout <ms>' argument '0' is invalid\. expected an integer from 1 to/,
      ],
      [
        ['replay', '--data', dir, '--flush-timeout', '1.5'],
        /option '--flush-timeout <ms>' argument '1\.5' is invalid\. expected an integer from 1 to/,
      ],
      [
        ['serve', '--data', dir, '--analytics-cache', dir, '--port', '0'],
        /^dorsal: the analytics cache directory .* is the lake's blob directory/,
      ],
    ];
    for (const [args, message] of failures) {
      const { code, stderr } = await runDorsal(args);
      expect(code, args.join(' ')).toBe(1);
      expect(stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(stderr, args.join(' ')).toMatch(message);
    }
  });

  it('ends quietly, exit 0, when its reader stops reading (dorsal query … | head -1)', async () => {
    const child = spawnDorsal(['query', 'SELECT * FROM messages', '--data', dir, '--format', 'csv']);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // The first line read, the pipe is closed: what the command writes next meets EPIPE.
    child.stdout!.once('data', () => child.stdout!.destroy());
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('says its version', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(await runDorsal(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('has --help with an example for each command', async () => {
    for (const command of ['run', 'demo', 'processes', 'stats', 'tree', 'query']) {
      const { code, stdout } = await runDorsal([command, '--help']);
      expect(code, command).toBe(0);
      expect(stdout, command).toMatch(/Example/);
    }
  });

  // Last of this describe: it adds a process to the lake the tests above read.
  it('through a server that answers few rows at a time, processes, stats, trees and the report are whole', async () => {
    // A second process: the listing has more rows than one answer holds.
    const second = await runDorsal(['run', SYSTEM, '--seconds', '0.3', '--data', dir]);
    expect(second.code, second.stderr).toBe(0);
    // Each page of a tree runs its query again: 4 rows a page keeps them few.
    for (const [rows, commands] of [
      ['1', [['processes', '--json']]],
      [
        '4',
        [
          ['stats', '--json'],
          ['tree', '--slowest', '3', '--json'],
          ['tree', '--message', 'ticks:5', '--json'],
          ['report', '-o', '-'],
        ],
      ],
    ] as const) {
      const serve = await startDorsalServe(['--port', '0', '--data', dir, '--query-rows', rows]);
      try {
        for (const args of commands) {
          const local = await runDorsal([...args, '--data', dir]);
          const remote = await runDorsal([...args, '--url', serve.url]);
          expect(remote.code, remote.stderr).toBe(0);
          // Cut at the server's row limit, these were a part of the answer, said whole (the
          // report's time buckets, its histograms and its tables as well).
          if (args[0] === 'report') expect(remote.stdout).toBe(local.stdout);
          else expect(JSON.parse(remote.stdout), args.join(' ')).toEqual(JSON.parse(local.stdout));
        }
        if (rows !== '1') continue;
        // A query's answer is the user's to page: it says which limit cut it.
        const cut = await runDorsal([
          'query',
          'SELECT * FROM range(5)',
          '--url',
          serve.url,
          '--max-rows',
          '5000',
        ]);
        expect(cut.stderr).toBe("1 row (cut at the server's row limit, or at the answer's byte limit)\n");
      } finally {
        await serve.stop();
      }
    }
  }, 120_000);
});

describe('the dorsal command on a run ended by a signal', () => {
  it('SIGTERM stops the run as Ctrl-C does: flushed, summarized, every parent of a recorded message recorded; a second signal while it stops ends it at once, saying so', async () => {
    const { dir, cleanup } = tempDir('dorsal-cli-signal-');
    try {
      const started = (data: string, system = SYSTEM, env: Record<string, string> = {}) => {
        const child = spawnDorsal(['run', system, '--seconds', '600', '--data', data], env);
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
        return { child, exit, out: () => ({ stdout, stderr }) };
      };
      const data = join(dir, 'term');
      const run = started(data);
      // Once the persister has shipped a block: the run is under way.
      await firstBlockIn(data);
      run.child.kill('SIGTERM');
      const [code] = await run.exit;
      const { stdout, stderr } = run.out();
      expect(code, stderr).toBe(0);
      const summary = SUMMARY.exec(stdout);
      expect(summary, stdout).not.toBeNull();
      expect(number(summary![5]!)).toBe(0);
      // Ended by Node's default instead, the lake held children of messages never flushed.
      const orphans = await runDorsal([
        'query',
        'SELECT count(*) FROM messages c WHERE c.parent_stream IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages p WHERE p.stream = c.parent_stream AND p.seq = c.parent_seq)',
        '--data',
        data,
        '--json',
      ]);
      expect(orphans.code, orphans.stderr).toBe(0);
      expect(JSON.parse(orphans.stdout)).toMatchObject({ rows: [['0']] });

      // A system whose stop takes 3 s, and says when it began: the second signal comes while it
      // stops (two sent at once may be handled in either order, or arrive as one).
      const marker = join(dir, 'stopping');
      const twice = started(join(dir, 'twice'), 'test/fixtures/replay/slow-exit.system.ts', {
        DORSAL_TEST_EXIT_MARKER: marker,
      });
      await firstBlockIn(join(dir, 'twice'));
      twice.child.kill('SIGINT');
      await until(() => existsSync(marker), 'the system stopping', 60_000);
      twice.child.kill('SIGTERM');
      const [, endedBy] = await twice.exit;
      expect(endedBy).toBe('SIGTERM');
      expect(twice.out().stderr).toContain(
        'dorsal: ended by SIGTERM while stopping: what was not flushed to the lake is lost',
      );
    } finally {
      cleanup();
    }
  }, 120_000);
});

describe('the dorsal command on a run an actor crashed', () => {
  it('run: stops at the crash, prints what the run did, then the crash in one line, and exits 1', async () => {
    const { dir, cleanup } = tempDir('dorsal-cli-crash-');
    try {
      // Long enough that only the crash can end it within the test's time.
      const run = await runDorsal([
        'run',
        'test/fixtures/systems/crashing-ingress.system.ts',
        '--seconds',
        '600',
        '--data',
        dir,
      ]);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stdout).toMatch(/^bad-feed +ticks +0 +2 +0 +0 +0$/m);
      expect(SUMMARY.exec(run.stdout)).not.toBeNull();
      expect(run.stderr).toMatch(
        /^dorsal: actor 'bad-feed' crashed: .*field 'n' of message 'Tick'.* — the system stopped there/m,
      );
    } finally {
      cleanup();
    }
  }, 120_000);

  it('run --json: the JSON says the crash too, and the command exits 1; a crash a restart healed fails nothing', async () => {
    const { dir, cleanup } = tempDir('dorsal-cli-crash-json-');
    try {
      const run = await runDorsal([
        'run',
        'test/fixtures/systems/crashing-ingress.system.ts',
        '--seconds',
        '600',
        '--data',
        dir,
        '--json',
      ]);
      expect(run.code, run.stderr).toBe(1);
      const summary = JSON.parse(run.stdout) as { failure?: string; messages: number };
      expect(summary.messages).toBe(2 + 4);
      expect(summary.failure).toMatch(
        /^actor 'bad-feed' crashed: .*field 'n' of message 'Tick'.* — the system stopped there$/,
      );
      const healed = await runDorsal([
        'run',
        'test/fixtures/systems/healed-crash.system.ts',
        '--seconds',
        '1',
        '--data',
        dir,
        '--json',
      ]);
      expect(healed.code, healed.stderr).toBe(0);
      const counted = JSON.parse(healed.stdout) as {
        failure?: string;
        actors: { actor: string; failed: number }[];
      };
      expect(counted.failure).toBeUndefined();
      expect(counted.actors.find((a) => a.actor === 'crasher')?.failed).toBe(1);
    } finally {
      cleanup();
    }
  }, 120_000);
});

describe('the dorsal command on a run whose stop terminated a thread', () => {
  it('run: names the thread it terminated and exits 0 (no crash); --json says so too', async () => {
    const { dir, cleanup } = tempDir('dorsal-cli-stuck-');
    try {
      const system = 'test/fixtures/systems/stuck-actor.system.ts';
      const run = await runDorsal(['run', system, '--seconds', '0.3', '--data', dir]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^terminated at the stop, not ended in time: stuck$/m);
      expect(run.stderr).not.toMatch(/crashed/);
      const json = await runDorsal(['run', system, '--seconds', '0.3', '--data', dir, '--json']);
      expect(json.code, json.stderr).toBe(0);
      const summary = JSON.parse(json.stdout) as { terminated: string[]; drained: boolean; failure?: string };
      expect(summary.terminated).toEqual(['stuck']);
      expect(summary.failure).toBeUndefined();
    } finally {
      cleanup();
    }
  }, 120_000);
});

describe('the dorsal command through a server', () => {
  it('run --url records through dorsal serve, and stats --url reads through it', async () => {
    const { dir, cleanup } = tempDir('dorsal-cli-url-');
    const serve = await startDorsalServe(['--port', '0', '--data', dir]);
    try {
      const run = await runDorsal(['run', SYSTEM, '--seconds', '1', '--url', serve.url]);
      expect(run.code, run.stderr).toBe(0);
      expect(SUMMARY.exec(run.stdout)![4]).toBe(serve.url);
      const stats = await runDorsal(['stats', '--json'], { DORSAL_URL: serve.url });
      expect(stats.code, stats.stderr).toBe(0);
      expect((JSON.parse(stats.stdout) as { rows: unknown[] }).rows).toHaveLength(3);
    } finally {
      await serve.stop();
      cleanup();
    }
  }, 120_000);

  it('run --url whose server goes away mid-run: says what the run counted, then that the server cannot be reached (it ended silently, code 0)', async () => {
    const { dir, cleanup } = tempDir('dorsal-cli-gone-');
    const serve = await startDorsalServe(['--port', '0', '--data', dir]);
    try {
      // The stop waits a second for its last blocks, not the 10 s by default.
      const child = spawnDorsal([
        'run',
        SYSTEM,
        '--seconds',
        '3',
        '--url',
        serve.url,
        '--flush-timeout',
        '1000',
      ]);
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = once(child, 'exit');
      // Gone once the run has begun recording through it.
      const lake = Lake.open({ data: dir });
      try {
        await until(async () => (await lake.blocks()).length > 0, 'a block in the lake', 60_000);
      } finally {
        await lake.close();
      }
      await serve.stop();
      const [code] = (await exited) as [number | null];
      expect(code, stderr).toBe(1);
      expect(stdout).toMatch(/what each actor did\nactor +stream +handled +produced +lost +failed +unread\n/);
      const summary = SUMMARY.exec(stdout);
      expect(summary, stdout).not.toBeNull();
      expect(number(summary![5]!)).toBeGreaterThan(0);
      expect(stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+: is `dorsal serve` running there\?/);
    } finally {
      await serve.stop();
      cleanup();
    }
  }, 120_000);

  it('demo runs the market pipeline and summarizes it', async () => {
    const { dir, cleanup } = tempDir('dorsal-cli-demo-');
    try {
      const demo = await runDorsal(['demo', '--seconds', '1', '--rate', '5000', '--data', dir]);
      expect(demo.code, demo.stderr).toBe(0);
      expect(demo.stdout).toMatch(/the market pipeline for 1 s at 5,000 ticks\/s/);
      expect(number(SUMMARY.exec(demo.stdout)![1]!)).toBeGreaterThan(0);
    } finally {
      cleanup();
    }
  }, 120_000);

  it('run of a system that publishes nothing still records its process, and says so', async () => {
    const { dir, cleanup } = tempDir('dorsal-cli-nothing-');
    try {
      const run = await runDorsal([
        'run',
        'test/fixtures/systems/nothing-published.system.ts',
        '--seconds',
        '0.3',
        '--data',
        dir,
      ]);
      expect(run.code, run.stderr).toBe(0);
      const [, messages, , , , lost] = SUMMARY.exec(run.stdout)!;
      expect([number(messages!), number(lost!)]).toEqual([0, 0]);
      // No percentile table (its header would draw a latency axis over nothing).
      expect(run.stdout).toMatch(/and handler time .*\nprocess \S+ recorded no timing\n/);
      expect(run.stdout).not.toMatch(/latency .* … /);
      const listing = JSON.parse((await runDorsal(['processes', '--data', dir, '--json'])).stdout) as {
        messages: number;
      }[];
      expect(listing).toHaveLength(1);
      expect(listing[0]!.messages).toBe(0);
      // A second run: through a server that answers one row at a time, --process still finds the older one by a prefix.
      await runDorsal([
        'run',
        'test/fixtures/systems/nothing-published.system.ts',
        '--seconds',
        '0.1',
        '--data',
        dir,
      ]);
      const older = (listing[0] as unknown as { processId: string }).processId;
      const serve = await startDorsalServe(['--port', '0', '--data', dir, '--query-rows', '1']);
      try {
        const tree = await runDorsal(['tree', '--process', older.slice(0, 8), '--url', serve.url]);
        expect(tree.stderr).toBe('');
        expect(tree.stdout).toContain(`process ${older} recorded no handled message`);
      } finally {
        await serve.stop();
      }
    } finally {
      cleanup();
    }
  }, 90_000);
});

describe('the dorsal command from the TypeScript sources, through tsx', () => {
  it('runs a system of TypeScript modules: the command, and every actor thread and the persister thread, register tsx', async () => {
    // Every other test runs compiled; this one keeps the path of `dorsal run system.ts` with tsx
    // installed, where each worker thread registers tsx before it loads its module.
    const { dir, cleanup } = tempDir('dorsal-cli-tsx-');
    try {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'src/cli/dorsal.ts', 'run', SYSTEM, '--seconds', '0.5', '--data', dir],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code, stderr).toBe(0);
      const [, messages, , , , lost] = SUMMARY.exec(stdout)!;
      expect(number(messages!)).toBeGreaterThan(0);
      expect(number(lost!)).toBe(0);
      const actors = await runDorsal([
        'query',
        "SELECT properties->>'dorsal.actors' FROM processes",
        '--data',
        dir,
        '--json',
      ]);
      const modules = (
        JSON.parse((JSON.parse(actors.stdout) as { rows: string[][] }).rows[0]![0]!) as { module: string }[]
      ).map((a) => a.module);
      expect(modules.length).toBeGreaterThan(0);
      for (const module of modules) expect(module).toMatch(/^file:.*\/examples\/market\/[a-z-]+\.ts$/);
    } finally {
      cleanup();
    }
  }, 120_000);
});
