import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Runs `dorsal serve` in a child process, so that the server and the load generator each get a
 * core, as they would on two machines. Works from the sources (under tsx) and from `dist`.
 */
export async function spawnServer(data: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const bin = fileURLToPath(new URL(`../../src/cli/dorsal.${ext}`, import.meta.url));
  const child: ChildProcess = spawn(
    process.execPath,
    [...process.execArgv, bin, 'serve', '--port', '0', '--data', data],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`dorsal serve exited with ${code}`)));
  });
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
