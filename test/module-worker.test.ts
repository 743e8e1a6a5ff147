import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE_WORKER = fileURLToPath(new URL('../src/module-worker.ts', import.meta.url));
const HELLO = new URL('./fixtures/hello-worker.mjs', import.meta.url).href;

describe('startModuleWorker', () => {
  it('starts a worker from a file in a process started with `node --input-type=module -e`', async () => {
    // Workers inherit the process's flags; `--input-type` would make this one fail to start.
    const script = `
      const { startModuleWorker } = await import(${JSON.stringify(MODULE_WORKER)});
      const worker = startModuleWorker(new URL(${JSON.stringify(HELLO)}));
      worker.once('error', (error) => { console.log('error: ' + error.message); process.exit(1); });
      worker.once('message', (text) => { console.log(text); worker.terminate(); });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 30_000,
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(out.trim()).toBe('hello from a module worker');
    expect(code).toBe(0);
  });
});
