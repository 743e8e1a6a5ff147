import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestionService } from '../../src/telemetry/ingestion/service.js';
import { runDorsal } from './cli-helpers.js';
import { makeProcess, tempDir } from './fixtures.js';

/** An escape sequence that would turn a terminal red. */
const RED = '\u001b[31mRED\u001b[0m';

/**
 * `dorsal query` on a lake whose recorded text holds escape sequences (a process's exe): what it
 * prints, on stdout or stderr, never carries them raw; and each format says when an answer is cut.
 */
describe('dorsal query output', () => {
  const { dir, cleanup } = tempDir('dorsal-query-output-');

  beforeAll(async () => {
    const service = new IngestionService({ data: dir });
    try {
      await service.ingestProcess(makeProcess({ exe: `/usr/bin/${RED}` }));
    } finally {
      await service.close();
    }
  });
  afterAll(cleanup);

  it('an error that quotes recorded data prints it escaped, in one line', async () => {
    const run = await runDorsal(['query', '--data', dir, 'SELECT exe::INTEGER FROM processes']);
    expect(run.code).toBe(1);
    expect(run.stderr).not.toContain('\u001b');
    expect(run.stderr).toContain('\\u001b[31mRED');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  }, 60_000);

  it("a table's column names print escaped, as its cells do", async () => {
    const run = await runDorsal(['query', '--data', dir, `SELECT exe AS "${RED}" FROM processes`]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).not.toContain('\u001b');
    expect(run.stdout.split('\n')[0]).toContain('\\u001b[31mRED');
  }, 60_000);

  it('--format csv cut at --max-rows says so on stderr, and stdout is the CSV alone', async () => {
    const sql = 'SELECT x FROM (VALUES (1), (2), (3)) t(x) ORDER BY x';
    const cut = await runDorsal(['query', '--data', dir, '--format', 'csv', '--max-rows', '2', sql]);
    expect(cut.code, cut.stderr).toBe(0);
    expect(cut.stdout).toBe('x\r\n1\r\n2\r\n');
    expect(cut.stderr.trim()).toBe('dorsal: 2 rows (cut at --max-rows 2): the answer has more');
    // Whole, nothing is said.
    const whole = await runDorsal(['query', '--data', dir, '--format', 'csv', sql]);
    expect(whole.code, whole.stderr).toBe(0);
    expect(whole.stdout).toBe('x\r\n1\r\n2\r\n3\r\n');
    expect(whole.stderr).toBe('');
  }, 60_000);
});
