import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runTsxChild } from './helpers/child.js';

const MODULE_WORKER = fileURLToPath(new URL('../src/module-worker.ts', import.meta.url));
const HELLO = new URL('./fixtures/hello-worker.mjs', import.meta.url).href;

/** Runs `script` in a child `node --import tsx <flags> -e`; resolves with its output and exit code. */
async function runChild(flags: string[], script: string): Promise<{ out: string; code: number | null }> {
  const { out, code } = await runTsxChild([...flags, '-e', script], 30_000);
  return { out: out.trim(), code };
}

/** Starts the hello worker through startModuleWorker and prints what it says (or its error). */
const HELLO_SCRIPT = `
  import(${JSON.stringify(MODULE_WORKER)}).then(({ startModuleWorker }) => {
    const worker = startModuleWorker(new URL(${JSON.stringify(HELLO)}));
    worker.once('error', (error) => { console.log('error: ' + error.message); process.exit(1); });
    worker.once('message', (text) => { console.log(text); worker.terminate(); });
  });`;

describe('startModuleWorker', () => {
  it('starts a worker from a file in a process started with `node --input-type=module -e`', async () => {
    // Workers inherit the process's flags; `--input-type` would make this one fail to start.
    const { out, code } = await runChild(['--input-type=module'], HELLO_SCRIPT);
    expect(out).toBe('hello from a module worker');
    expect(code).toBe(0);
  });

  it('starts a worker under `--input-type` together with a per-process flag', async () => {
    // Neither may be passed on as is: the first breaks a worker started from a file, the second
    // is refused in an explicit execArgv.
    const { out, code } = await runChild(['--input-type=module', '--max-old-space-size=512'], HELLO_SCRIPT);
    expect(out).toBe('hello from a module worker');
    expect(code).toBe(0);
  });

  it('starts a worker in a process run with a per-process flag, which a worker inherits', async () => {
    // Listed explicitly in a worker's execArgv, `--max-old-space-size` would be refused.
    const { out, code } = await runChild(['--max-old-space-size=512'], HELLO_SCRIPT);
    expect(out).toBe('hello from a module worker');
    expect(code).toBe(0);
  });
});
