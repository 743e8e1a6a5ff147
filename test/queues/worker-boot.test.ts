import { expect, it } from 'vitest';
import { compiledUrl } from '../helpers/compiled.js';
import { exited, firstMessage, startWorker } from '../helpers/workers.js';

it('a worker thread starts from a TypeScript module and imports the sources', async () => {
  const worker = startWorker(compiledUrl('../fixtures/echo.ts', import.meta.url), { hello: 1 });
  expect(await firstMessage(worker)).toEqual({ size: 8, data: { hello: 1 } });
  await exited(worker);
});
