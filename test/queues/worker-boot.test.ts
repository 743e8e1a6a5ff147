import { expect, it } from 'vitest';
import { exited, firstMessage, startWorker } from '../helpers/workers.js';

it('a worker thread starts from a TypeScript module and imports the sources', async () => {
  // The one worker of the suite started from TypeScript (through tsx; the others run compiled):
  // startModuleWorker's own path for a TypeScript module.
  const worker = startWorker(new URL('../fixtures/echo.ts', import.meta.url), { hello: 1 });
  expect(await firstMessage(worker)).toEqual({ size: 8, data: { hello: 1 } });
  await exited(worker);
});
