import { InvalidArgumentError } from 'commander';
import { rfc3339ToEpochNs } from '../telemetry/wire/index.js';

/** A `--begin` or `--end`: a time on the calendar, or an offset from the process's start. */
export type TraceTime =
  | { readonly kind: 'offset'; readonly ns: number; readonly text: string }
  | { readonly kind: 'time'; readonly epochNs: bigint; readonly text: string };

const UNITS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  // The Greek letter mu, which keyboards and NFKC give for the micro sign.
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
};

const OFFSET = /^\+(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m)$/;

/**
 * Parses `--begin`/`--end`: RFC 3339 (`2026-01-02T10:00:01.5Z`) or `+2s`, `+500ms`, `+250us`,
 * `+1.5m` (to the nanosecond).
 */
export function traceTime(value: string): TraceTime {
  const text = value.trim();
  const offset = OFFSET.exec(text);
  if (offset !== null) {
    const ns = Math.round(Number(offset[1]) * UNITS[offset[2]!]!);
    // Past 2^53 ns (104 days) nanoseconds are no longer exact, and far past it no number at all.
    if (!Number.isSafeInteger(ns)) throw new InvalidArgumentError(`the offset ${text} is too large`);
    return { kind: 'offset', ns, text };
  }
  const epochNs = rfc3339ToEpochNs(text);
  if (epochNs === undefined) {
    throw new InvalidArgumentError(
      'expected an RFC 3339 time (2026-01-02T10:00:01.5Z) or an offset from the process start (+2s, +500ms)',
    );
  }
  return { kind: 'time', epochNs, text };
}

/** Nanoseconds since the process's start (`startNs`, epoch ns) at which `time` is. */
export function sinceStart(time: TraceTime, startNs: bigint): number {
  return time.kind === 'offset' ? time.ns : Number(time.epochNs - startNs);
}

/** Which events a trace keeps: `[beginNs, endNs)` in ns since the process's start (unbounded when absent). */
export interface TraceWindow {
  readonly beginNs?: number;
  readonly endNs?: number;
}
