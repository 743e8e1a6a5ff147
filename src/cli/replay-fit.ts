import type { FieldDescription } from '../queues/field-types.js';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { streamTableName } from '../telemetry/analytics/source-tables.js';
import { quoteIdentifier } from '../telemetry/analytics/sql.js';
import { count, printable } from './format.js';
import { nameList, type Playlist, recordedColumn, recordedLayouts } from './replay-recording.js';
import { CliError, type ProcessSummary } from './source.js';

/** The integer types' ranges (what the layouts' codecs take). */
const RANGES: Readonly<Record<string, readonly [bigint, bigint]>> = {
  i8: [-128n, 127n],
  u8: [0n, 255n],
  i16: [-32768n, 32767n],
  u16: [0n, 65535n],
  i32: [-2147483648n, 2147483647n],
  u32: [0n, 4294967295n],
  i64: [-(2n ** 63n), 2n ** 63n - 1n],
  u64: [0n, 2n ** 64n - 1n],
};

/** What `fieldValue` reads as a number for a field of 32 bits or less (`DECIMAL` in `replay-pages.ts`). */
const DECIMAL = String.raw`-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?`;

/**
 * Whether every value a field of the recorded type can hold fits the replayed field as the player
 * reads it (`replay-pages.ts`): the same type (a string or bytes of as many bytes or more), an
 * integer into a wider one or a float, a float into a float. The recording need not be read.
 */
function alwaysFits(recorded: FieldDescription, replayed: FieldDescription): boolean {
  const from = recorded.type;
  const to = replayed.type;
  if (from === to) return (replayed.bytes ?? 0) >= (recorded.bytes ?? 0);
  const fromRange = RANGES[from];
  const toRange = RANGES[to];
  if (fromRange !== undefined && toRange !== undefined) {
    return toRange[0] <= fromRange[0] && fromRange[1] <= toRange[1];
  }
  return (fromRange !== undefined || from === 'f32' || from === 'f64') && (to === 'f32' || to === 'f64');
}

/**
 * SQL, true where a recorded value of `column` (typed `recorded`) fits the `replayed` field: what
 * `fieldValue` takes of the text `selectField` makes of it, and then the replayed layout's codec
 * (an integer in range, a string or bytes short enough). A NULL is a string's '' and nothing
 * else's. A bool or a float never becomes bytes (DuckDB has no `hex` of a bool, and its `hex` of a
 * double is no bytes of it, and fails for a NaN). Undefined when the types say that every value
 * fits.
 */
export function fitSql(
  column: string,
  recorded: FieldDescription,
  replayed: FieldDescription,
): string | undefined {
  if (alwaysFits(recorded, replayed)) return undefined;
  const text = `${column}::VARCHAR`;
  const range = RANGES[replayed.type];
  switch (replayed.type) {
    case 'f64':
    case 'f32':
      return `coalesce(TRY_CAST(${column} AS DOUBLE) IS NOT NULL, false)`;
    case 'i64':
    case 'u64':
      return `coalesce(regexp_full_match(${text}, '-?[0-9]+') AND TRY_CAST(${text} AS HUGEINT) BETWEEN ${range![0]} AND ${range![1]}, false)`;
    case 'bool':
      return `coalesce(${text} IN ('true', 'false'), false)`;
    case 'string':
      return `(${column} IS NULL OR strlen(${text}) <= ${replayed.bytes})`;
    case 'bytes':
      if (['bool', 'f32', 'f64'].includes(recorded.type)) return 'false';
      return `coalesce(regexp_full_match(hex(${column}), '([0-9A-Fa-f]{2})*') AND strlen(hex(${column})) <= ${2 * replayed.bytes!}, false)`;
    default: {
      const number = `TRY_CAST(${text} AS DOUBLE)`;
      return `coalesce(regexp_full_match(${text}, '${DECIMAL}') AND ${number} BETWEEN ${range![0]} AND ${range![1]} AND ${number} = trunc(${number}), false)`;
    }
  }
}

/** A field's type in words: `an i64`, `a string of 12 bytes`, `5 bytes`. */
function typeText(field: FieldDescription): string {
  if (field.type === 'string') return `a string of ${field.bytes} bytes`;
  if (field.type === 'bytes') return `${field.bytes} bytes`;
  return /^[if]/.test(field.type) ? `an ${field.type}` : `a ${field.type}`;
}

/**
 * Refuses, before anything runs, a replay whose system types a field of a played stream otherwise
 * than the recording did (its `dorsal.spine`) where a recorded value does not fit the new type (a
 * NaN into an i64, 'twelve bytes' into a string of 4): played, the first such value would stop the
 * replay mid-run, after the system started and was recorded as a process. A retyping every
 * recorded value fits (a u32 into a u16 whose values are all small) plays. One query per stream
 * with such fields; none when the types say that every value fits.
 */
export async function refuseUnfitFields(
  analytics: AnalyticsQuestions,
  process: ProcessSummary,
  playlist: Playlist,
  module: string,
): Promise<void> {
  const recordedStreams = new Map(
    recordedLayouts(process).map((s) => [s.name, new Map(s.layout.fields.map((f) => [f.name, f]))]),
  );
  for (const [s, stream] of playlist.streams.entries()) {
    const recordedFields = recordedStreams.get(stream);
    if (recordedFields === undefined) continue;
    const retyped = playlist.layouts[s]!.describe().fields.flatMap((replayed) => {
      const recorded = recordedFields.get(replayed.name);
      const column = quoteIdentifier(recordedColumn(playlist, s, replayed.name));
      const fits = recorded === undefined ? undefined : fitSql(column, recorded, replayed);
      return fits === undefined ? [] : [{ recorded: recorded!, replayed, column, fits }];
    });
    if (retyped.length === 0) continue;
    const checks = retyped.map(({ recorded, column, fits }, i) => {
      const unfit = `NOT ${fits}`;
      return `count(*) FILTER (WHERE ${unfit})::DOUBLE AS n${i}, min(seq) FILTER (WHERE ${unfit}) AS q${i}, arg_min(${recorded.type === 'bytes' ? `hex(${column})` : `${column}::VARCHAR`}, seq) FILTER (WHERE ${unfit}) AS v${i}`;
    });
    const { rows } = await analytics.query(
      `SELECT count(*)::DOUBLE, ${checks.join(', ')} FROM ${quoteIdentifier(streamTableName(stream))} WHERE actor IN ${nameList(playlist.actors)}`,
      { process: playlist.process, maxRows: 1 },
    );
    const row = rows[0] ?? [];
    for (const [i, { recorded, replayed }] of retyped.entries()) {
      const unfit = Number(row[1 + 3 * i] ?? 0);
      if (unfit === 0) continue;
      const value = row[3 + 3 * i];
      // Recorded text (a feed's outside data, the recording's names) reaches a terminal escaped.
      const shown =
        value === null || value === undefined ? 'NULL' : `'${printable(String(value).slice(0, 40))}'`;
      throw new CliError(
        `field '${printable(replayed.name)}' of stream '${printable(stream)}' is ${typeText(replayed)} in ${printable(module)}, ${typeText(recorded)} in process ${playlist.process}: ${count(unfit)} of its ${count(Number(row[0]))} recorded values do not fit (the first: ${printable(stream)} #${String(row[2 + 3 * i])}, ${shown}); nothing was replayed`,
      );
    }
  }
}
