import { dirname } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { loadAddon } from '../../native-addon.js';

/** The addon of `native/durable-file.cc`. */
interface DurableFileAddon {
  /** Resolves to 0, or to `(step << 16) | errno` for the call that failed. */
  createDurable(path: string, bytes: Uint8Array, sync: boolean): Promise<number>;
}

const STEPS = ['', 'open', 'write', 'fdatasync', 'close', 'fsync'] as const;
const DIRECTORY_SYNC = 5;

/**
 * Creates `path` (failing with EEXIST if a file is there), writes `bytes`, and closes it; with
 * `sync`, fdatasyncs it and syncs its directory (shared with the calls under way at once), so
 * that both the bytes and the name are durable when it resolves. One task on libuv's thread pool.
 * A file it created is removed if a later call on it fails. Rejects with an Error like Node's
 * (`code`, `errno`, `syscall`, `path`). Keep `bytes` unchanged until it settles.
 */
export type CreateDurable = (path: string, bytes: Uint8Array, sync: boolean) => Promise<void>;

function errnoError(result: number, file: string): NodeJS.ErrnoException {
  const errno = result & 0xffff;
  const path = result >> 16 === DIRECTORY_SYNC ? dirname(file) : file;
  const syscall = STEPS[result >> 16] ?? 'create';
  const [code, description] = getSystemErrorMap().get(-errno) ?? [`E${errno}`, 'unknown error'];
  const error: NodeJS.ErrnoException = new Error(`${code}: ${description}, ${syscall} '${path}'`);
  error.code = code;
  error.errno = -errno;
  error.syscall = syscall;
  error.path = path;
  return error;
}

const loaded = loadAddon<DurableFileAddon>('dorsal_durable_file', (addon) =>
  typeof addon.createDurable === 'function' ? undefined : 'has no createDurable (built for another OS?)',
);

/** The native durable file creation, or undefined when the addon was not built. */
export const createDurable: CreateDurable | undefined =
  typeof loaded === 'string'
    ? undefined
    : async (path, bytes, sync) => {
        const result = await loaded.createDurable(path, bytes, sync);
        if (result !== 0) throw errnoError(result, path);
      };

/** Why there is no native durable file creation (empty when there is one). */
export const createDurableMissing: string = typeof loaded === 'string' ? loaded : '';
