import { spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * Runs `node --import tsx <args>` (the sources run as TypeScript, as in the tests) and resolves
 * with its standard output and exit code; its standard error goes to the test's.
 */
export async function runTsxChild(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ out: string; code: number | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: timeoutMs,
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { out, code };
}
