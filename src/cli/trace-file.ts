import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import type { TraceEvent } from './chrome-trace.js';
import { CliError } from './source.js';

/** Text gathered before one write to the file. */
const CHUNK_CHARS = 1 << 20;

/**
 * A trace file written as its events come: `{"traceEvents":[…],"displayTimeUnit":"ns",
 * "metadata":{…}}`, never held whole in memory. It is written beside its path and renamed into
 * place by `finish`, so that a run that fails leaves no half file (`abandon` removes it).
 *
 * @example
 * const file = await TraceFile.create('trace.json');
 * await file.add(processName(1, 'market'));
 * await file.finish({ source: 'dorsal' });
 */
export class TraceFile {
  private readonly chunks: string[] = [];
  private chars = 0;
  private events = 0;

  private constructor(
    readonly path: string,
    private readonly partial: string,
    private readonly handle: FileHandle,
  ) {}

  /** Opens `path` for a new trace (written to `path.partial-PID` until `finish`). */
  static async create(path: string): Promise<TraceFile> {
    const partial = `${path}.partial-${process.pid}`;
    const handle = await open(partial, 'w').catch((error: unknown) => {
      throw cannotWrite(path, error);
    });
    const file = new TraceFile(path, partial, handle);
    file.push('{"traceEvents":[\n');
    return file;
  }

  /** Events written so far. */
  get written(): number {
    return this.events;
  }

  /** Appends events, writing to the file whenever a chunk has gathered. */
  async add(...events: readonly TraceEvent[]): Promise<void> {
    for (const event of events) {
      this.push(`${this.events === 0 ? '' : ',\n'}${JSON.stringify(event)}`);
      this.events++;
    }
    if (this.chars >= CHUNK_CHARS) await this.flush();
  }

  /** Closes the event list, writes the metadata, and moves the file into place. */
  async finish(metadata: Readonly<Record<string, unknown>>): Promise<void> {
    this.push(`\n],"displayTimeUnit":"ns","metadata":${JSON.stringify(metadata)}}\n`);
    await this.flush();
    await this.handle.close();
    await rename(this.partial, this.path).catch((error: unknown) => {
      throw cannotWrite(this.path, error);
    });
  }

  /** Closes and removes the unfinished file. */
  async abandon(): Promise<void> {
    await this.handle.close().catch(() => {});
    await rm(this.partial, { force: true });
  }

  private push(text: string): void {
    this.chunks.push(text);
    this.chars += text.length;
  }

  private async flush(): Promise<void> {
    const bytes = Buffer.from(this.chunks.join(''), 'utf8');
    this.chunks.length = 0;
    this.chars = 0;
    for (let at = 0; at < bytes.length; ) {
      at += (await this.handle.write(bytes, at, bytes.length - at)).bytesWritten;
    }
  }
}

/** A file that cannot be written, said with the system's reason (`EISDIR`, `EACCES`, …). */
function cannotWrite(path: string, error: unknown): CliError {
  const code = (error as NodeJS.ErrnoException).code;
  return new CliError(
    `cannot write ${path} (${code ?? String(error)}): give -o a file in a directory you can write`,
  );
}
