import { rmSync } from 'node:fs';
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises';
import type { TraceEvent } from './chrome-trace.js';
import { CliError, writtenPath } from './source.js';

/** Text gathered before one write to the file. */
const CHUNK_CHARS = 1 << 20;

/** The output path that means standard output. */
export const STDOUT = '-';

/**
 * Paths of this process's own standard output: written as `-` is (a socket there, as a parent
 * process's pipe may be, cannot be opened by its path: ENXIO).
 */
const OWN_STDOUT = new Set(['/dev/stdout', '/dev/fd/1', '/proc/self/fd/1']);

/** Whether a trace to `path` goes to this process's standard output (then what is said of it goes to stderr). */
export function toStdout(path: string): boolean {
  return path === STDOUT || OWN_STDOUT.has(path);
}

/** Signals that end a trace half written: its partial file is removed, then the signal re-raised. */
const ENDING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Where a trace's bytes go: a file written beside its path and renamed into place, or stdout. */
interface TraceOutput {
  write(bytes: Buffer): Promise<void>;
  /** Everything is written: puts the output in place. */
  finish(): Promise<void>;
  /** Gives up: leaves nothing behind that looks like a trace. */
  abandon(): Promise<void>;
}

/**
 * A trace file written as its events come: `{"traceEvents":[…],"displayTimeUnit":"ns",
 * "metadata":{…}}`, never held whole in memory. It is written beside its path and renamed into
 * place by `finish`, so that a run that fails or is interrupted (SIGINT, SIGTERM, SIGHUP) leaves
 * no half file. To `-` it is streamed to stdout, where a failure leaves what was written.
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
    private readonly output: TraceOutput,
  ) {}

  /** Opens `path` for a new trace (written to `path.partial-PID` until `finish`), or stdout for `-`. */
  static async create(path: string): Promise<TraceFile> {
    const output = toStdout(path) ? stdoutOutput() : await fileOutput(path);
    const file = new TraceFile(path, output);
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
    await this.output.finish();
  }

  /** Closes and removes the unfinished file. */
  async abandon(): Promise<void> {
    await this.output.abandon();
  }

  private push(text: string): void {
    this.chunks.push(text);
    this.chars += text.length;
  }

  private async flush(): Promise<void> {
    const bytes = Buffer.from(this.chunks.join(''), 'utf8');
    this.chunks.length = 0;
    this.chars = 0;
    await this.output.write(bytes);
  }
}

/**
 * Where a trace to `path` goes: the file a symbolic link names (the link stays), and whether it is
 * written in place: a path that is no regular file (a FIFO, a device such as /dev/null, a socket)
 * is written as it is; renaming a file over it would replace it.
 */
async function outputTarget(path: string): Promise<{ file: string; inPlace: boolean }> {
  // What the path names, links followed: a pipe (`-o /dev/stdout | wc`, a shell's `>(gzip)`) has
  // no real path to resolve, but is there to write.
  const found = await stat(path).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw cannotWrite(path, error);
  });
  // A directory: refused before anything is written (the rename onto it failed once all was).
  if (found?.isDirectory() === true) {
    throw cannotWrite(path, Object.assign(new Error('a directory'), { code: 'EISDIR' }));
  }
  if (found !== undefined && !found.isFile()) return { file: path, inPlace: true };
  // A file, or nothing there, or a link (or a chain of them) to nothing yet: the file at its end
  // is made, and every link stays. The same path as `refuseOutputInLake` checked.
  try {
    return { file: writtenPath(path), inPlace: false };
  } catch (error) {
    throw cannotWrite(path, error);
  }
}

/**
 * `path.partial-PID`, renamed to `path` at the finish (beside the file a link names, onto it).
 * Until then an ending signal removes it (synchronously: the process is about to die) and is
 * raised again, so that the exit status says what ended the process, as it would have without
 * the handler. A path that is no regular file is written in place (`outputTarget`).
 */
async function fileOutput(path: string): Promise<TraceOutput> {
  const { file, inPlace } = await outputTarget(path);
  if (inPlace) return inPlaceOutput(path, file);
  const partial = `${file}.partial-${process.pid}`;
  const onSignal = (signal: NodeJS.Signals) => {
    release();
    rmSync(partial, { force: true });
    process.kill(process.pid, signal);
  };
  const release = () => {
    for (const signal of ENDING_SIGNALS) process.off(signal, onSignal);
  };
  // Before the file is made: it is on the disk before `open` resolves, and a signal between the two
  // would otherwise end the process by default and leave it there.
  for (const signal of ENDING_SIGNALS) process.on(signal, onSignal);
  const handle: FileHandle = await open(partial, 'w').catch((error: unknown) => {
    release();
    throw cannotWrite(path, error);
  });
  return {
    write: (bytes) => writeAll(handle, bytes),
    async finish() {
      try {
        await handle.close();
        await rename(partial, file).catch((error: unknown) => {
          throw cannotWrite(path, error);
        });
      } finally {
        release();
      }
    },
    async abandon() {
      await handle.close().catch(() => {});
      await rm(partial, { force: true });
      release();
    },
  };
}

/**
 * Writes `bytes` to `path` whole, as a trace file is written: beside the file it names (links
 * followed), then renamed onto it; a FIFO or a device written as it is. A failure leaves nothing
 * half written, and a hard link to another file (the lake's database, by a backup's `cp -al`) has
 * its name replaced, not that file's bytes. A `CliError` with the system's reason if it cannot.
 */
export async function writeWhole(path: string, bytes: Buffer): Promise<void> {
  const output = await fileOutput(path);
  try {
    await output.write(bytes);
    await output.finish();
  } catch (error) {
    // Its partial file too, when the rename onto the target fails (another user's file in /tmp).
    await output.abandon();
    throw error instanceof CliError ? error : cannotWrite(path, error);
  }
}

/** Writes all of `bytes` to `handle` (a write may take part of them). */
async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  for (let at = 0; at < bytes.length; ) {
    at += (await handle.write(bytes, at, bytes.length - at)).bytesWritten;
  }
}

/** A FIFO, a device or a socket, written as it is: what it was given stays given. */
async function inPlaceOutput(path: string, file: string): Promise<TraceOutput> {
  const handle = await open(file, 'w').catch((error: unknown) => {
    throw cannotWrite(path, error);
  });
  return {
    write: (bytes) => writeAll(handle, bytes),
    async finish() {
      await handle.close();
    },
    async abandon() {
      await handle.close().catch(() => {});
    },
  };
}

/**
 * Standard output, each chunk written before the next is made: a slow reader holds the export
 * back, and nothing piles up. (A reader that goes away, `| head`, ends the CLI quietly: dorsal.ts.)
 */
function stdoutOutput(): TraceOutput {
  return {
    write(bytes) {
      return new Promise<void>((resolve, reject) => {
        process.stdout.write(bytes, (error) => (error ? reject(cannotWrite('stdout', error)) : resolve()));
      });
    },
    async finish() {},
    async abandon() {},
  };
}

/** A file that cannot be written, said with the system's reason (`EISDIR`, `EACCES`, …). */
function cannotWrite(path: string, error: unknown): CliError {
  const code = (error as NodeJS.ErrnoException).code;
  return new CliError(
    path === 'stdout'
      ? `cannot write the trace to stdout (${code ?? String(error)})`
      : `cannot write ${path} (${code ?? String(error)}): give -o a file in a directory you can write`,
  );
}
