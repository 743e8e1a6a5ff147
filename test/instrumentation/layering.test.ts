import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const folder = new URL('../../src/telemetry/instrumentation/', import.meta.url);

/** Every module specifier a file names: `from '…'`, a bare `import '…'`, a dynamic `import('…')`. */
function specifiers(source: string): string[] {
  return [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]!);
}

describe('the instrumentation stays light', () => {
  it('imports only its own files, the queues, the spine clock, the errors and node:worker_threads', () => {
    const allowed = [
      /^\.\/[a-z-]+\.js$/,
      /^\.\.\/\.\.\/queues\/(index|codec)\.js$/,
      /^\.\.\/\.\.\/spine\/clock\.js$/,
      /^\.\.\/\.\.\/errors\.js$/,
      /^node:worker_threads$/,
    ];
    const files = readdirSync(folder).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(10);
    const wrong: string[] = [];
    for (const file of files) {
      for (const spec of specifiers(readFileSync(new URL(file, folder), 'utf8'))) {
        if (!allowed.some((pattern) => pattern.test(spec))) wrong.push(`${file}: ${spec}`);
      }
    }
    // No database, HTTP, compression or wire-format code: an actor that logs loads none of it.
    expect(wrong).toEqual([]);
  });
});
