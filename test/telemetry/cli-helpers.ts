import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lake } from '../../src/telemetry/lake/lake.js';
import { compiled } from '../helpers/compiled.js';
import { until } from '../helpers/until.js';

/** The `dorsal` command, compiled from its source by the tests' global setup. */
export const DORSAL_BIN = compiled(fileURLToPath(new URL('../../src/cli/dorsal.ts', import.meta.url)));

/** What a finished `dorsal` run printed, and how it exited. */
export interface DorsalRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Spawns `dorsal ARGS…` (with extra environment variables), compiled: an argument that names a
 * TypeScript file of the repository (a system module) is given as its compiled JavaScript.
 */
export function spawnDorsal(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [DORSAL_BIN, ...args.map(compiled)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DORSAL_KEY: '', ...env },
  });
}

/** Runs `dorsal ARGS…` to its end. */
export function runDorsal(args: readonly string[], env: Record<string, string> = {}): Promise<DorsalRun> {
  return finished(spawnDorsal(args, env));
}

/** What a spawned `dorsal` prints until it exits, and how it exits. */
export async function finished(child: ChildProcess): Promise<DorsalRun> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** Spawns `dorsal serve ARGS…` and resolves once it says where it listens. */
export async function startDorsalServe(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<ServedDorsal> {
  return served(spawnDorsal(['serve', ...args], env));
}

/** A running `dorsal serve`: its process, where it listens, and how to stop it (its exit code). */
export interface ServedDorsal {
  readonly child: ChildProcess;
  readonly url: string;
  stop(): Promise<number | null>;
}

/** A spawned `dorsal serve`, once it says where it listens. */
export async function served(child: ChildProcess): Promise<ServedDorsal> {
  let out = '';
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /dorsal (?:ingestion and analytics|ingestion|analytics) listening on (http:\/\/\S+)/.exec(
        out,
      );
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`dorsal serve exited with ${code}: ${out}${err}`)));
  });
  return {
    child,
    url,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}

/** Resolves once the embedded lake in `data` holds a block: a run's persister is under way. */
export async function firstBlockIn(data: string): Promise<void> {
  await until(
    async () => {
      if (!existsSync(join(data, 'lake.sqlite'))) return false;
      const lake = Lake.open({ data });
      try {
        return (await lake.blocks()).length > 0;
      } finally {
        await lake.close();
      }
    },
    `a first block in the lake in ${data}`,
    60_000,
  );
}
