import { Command, Option } from 'commander';
import { checkApiKey } from '../telemetry/sink/api-key.js';
import { keyOption } from './options.js';
import { CliError, remoteFailure } from './source.js';

/**
 * `dorsal status --url URL`: asks a server whether it is ready (`GET /ready`: it answers, and
 * reaches its database and blob store). Prints one line; exits 0 when ready, 1 otherwise.
 */
export function statusCommand(): Command {
  return new Command('status')
    .description('check that an ingestion server is up and reaches its lake')
    .addOption(new Option('--url <url>', 'the server').env('DORSAL_URL').default('http://127.0.0.1:8081'))
    .addOption(keyOption())
    .action(async (options: { readonly url: string; readonly key?: string }) => {
      let base: URL;
      try {
        base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
      } catch {
        throw new CliError(`--url ${options.url} is not a URL: give http://host:port`);
      }
      const url = new URL('ready', base);
      if (options.key) checkApiKey(options.key, '--key (or DORSAL_KEY)');
      const headers: Record<string, string> =
        options.key === undefined || options.key === '' ? {} : { authorization: `Bearer ${options.key}` };
      let res: Response;
      let text: string;
      try {
        res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
        text = (await res.text()).slice(0, 4096);
      } catch (error) {
        // Said as the other commands say it: "cannot reach" only when no connection was made.
        console.error(
          (error as Error).name === 'TimeoutError'
            ? `${options.url}: no answer within 10 s: is \`dorsal serve\` running there?`
            : error instanceof TypeError
              ? remoteFailure(base.origin, error).message
              : `${options.url}: ${withCause(error)}`,
        );
        process.exitCode = 1;
        return;
      }
      let body: { status?: unknown; error?: { code?: string; message?: string } } | undefined;
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        // not JSON: said as it is
      }
      if (res.ok && body?.status === 'ready') {
        console.log(`${options.url}: ready`);
        return;
      }
      // dorsal's error answer: { error: { code, message } } with a string message. Any other JSON
      // (`{"error":null}`, `{"error":"Not Found"}`) is some other server's, said as its page is.
      const error =
        typeof body?.error === 'object' && body.error !== null && typeof body.error.message === 'string'
          ? body.error
          : undefined;
      const detail = res.ok
        ? `answered ${res.status} but not as dorsal serve does ({"status":"ready"}): is it a dorsal server?`
        : error !== undefined
          ? // In one line, whatever the server put in it (line breaks, terminal escapes).
            `${oneLine(error.message ?? '')} (${oneLine(String(error.code ?? 'no code'))})`
          : // Not dorsal's JSON error (a web server's HTML page, say): its start, in one line.
            `not as dorsal serve does (${res.headers.get('content-type') ?? 'no content type'}: ${JSON.stringify(text.replace(/\s+/g, ' ').trim().slice(0, 80))}): is it a dorsal server?`;
      console.error(`${options.url}: ${res.ok ? detail : `${res.status} ${detail}`}`);
      process.exitCode = 1;
    });
}

/** A server's text as one line: control characters (line breaks, escapes) and runs of spaces as one space. */
function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
  return text.replace(/[\s\u0000-\u001f\u007f]+/g, ' ').trim();
}

/** An error's message and its cause's: fetch says "fetch failed", its cause says why. */
function withCause(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : undefined;
  return cause === undefined ? message : `${message}: ${cause}`;
}
