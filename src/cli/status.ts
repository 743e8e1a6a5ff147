import { Command } from 'commander';
import { keyOption } from './options.js';

/**
 * `dorsal status --url URL`: asks a server whether it is ready (`GET /ready`: it answers, and
 * reaches its database and blob store). Prints one line; exits 0 when ready, 1 otherwise.
 */
export function statusCommand(): Command {
  return new Command('status')
    .description('check that an ingestion server is up and reaches its lake')
    .option('--url <url>', 'the server', 'http://127.0.0.1:8081')
    .addOption(keyOption())
    .action(async (options: { readonly url: string; readonly key?: string }) => {
      const url = new URL('ready', options.url.endsWith('/') ? options.url : `${options.url}/`);
      const headers: Record<string, string> =
        options.key === undefined || options.key === '' ? {} : { authorization: `Bearer ${options.key}` };
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
      const text = (await res.text()).slice(0, 4096);
      if (res.ok) {
        console.log(`${options.url}: ready`);
        return;
      }
      let detail = text;
      try {
        const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
        detail = `${body.error?.message ?? text} (${body.error?.code ?? 'no code'})`;
      } catch {
        // not JSON: the text as it is
      }
      console.error(`${options.url}: ${res.status} ${detail}`);
      process.exitCode = 1;
    });
}
