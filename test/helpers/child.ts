import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { compiled } from './compiled.js';

/**
 * Runs `node --import tsx <args>` (the sources run as TypeScript) and resolves with its standard
 * output and exit code; its standard error goes to the test's. For what is about running
 * TypeScript itself; anything else runs compiled (`runCompiledChild`).
 */
export function runTsxChild(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ out: string; code: number | null }> {
  return runNode(['--import', 'tsx', ...args], timeoutMs);
}

/**
 * Runs `node <args>` with each TypeScript file of the repository among them given as its compiled
 * JavaScript (see `compiled`), and resolves as `runTsxChild` does.
 */
export function runCompiledChild(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ out: string; code: number | null }> {
  return runNode(args.map(compiled), timeoutMs);
}

async function runNode(
  args: readonly string[],
  timeoutMs: number,
): Promise<{ out: string; code: number | null }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], timeout: timeoutMs });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { out, code };
}
