import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { CliError, resolveProcess, type Source } from '../../src/cli/source.js';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { makeProcess, tempDir } from './fixtures.js';

it('a process recorded since the analytics last looked at the lake is found by its whole id (a replay said its own process did not exist)', async () => {
  const { dir, cleanup } = tempDir('dorsal-cli-source-');
  const lake = Lake.open({ data: dir });
  // A look at the whole lake is reused for a minute here, as a server reuses one for a second.
  const analytics = await Analytics.open({
    lake: { data: dir },
    cacheDir: join(dir, 'analytics'),
    freshnessMs: 60_000,
  });
  const source: Source = { analytics, where: dir, close: () => analytics.close() };
  try {
    await lake.ready();
    const first = makeProcess({ startTime: '2026-12-06T10:00:00.000000000Z' });
    await lake.metadata.insertProcess(first);
    expect((await resolveProcess(source, undefined)).processId).toBe(first.processId);
    // Recorded after that look, as the replay a command has just made.
    const second = makeProcess({ startTime: '2026-12-06T10:00:01.000000000Z' });
    await lake.metadata.insertProcess(second);
    const found = await resolveProcess(source, second.processId.toUpperCase());
    expect(found.processId).toBe(second.processId);
    expect(found.exe).toBe(second.exe);
    expect(found.properties).toEqual(second.properties);
    // A whole id the lake does not hold is still said to be missing, in the command's words.
    const missing = randomUUID();
    await expect(resolveProcess(source, missing)).rejects.toThrow(CliError);
    await expect(resolveProcess(source, missing)).rejects.toThrow(`no process ${missing} in ${dir}`);
  } finally {
    await analytics.close();
    await lake.close();
    cleanup();
  }
});
