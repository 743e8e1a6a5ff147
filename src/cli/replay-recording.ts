import { actorModuleUrl, type SystemDefinition } from '../actors/define-system.js';
import type { FieldDescription } from '../queues/field-types.js';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { fieldColumnName, streamTableName } from '../telemetry/analytics/source-tables.js';
import { quoteIdentifier, quoteLiteral } from '../telemetry/analytics/sql.js';
import { parseList } from '../telemetry/analytics/views.js';
import { readPaged } from './paged.js';
import type { PlayerArgs } from './replay-player.js';
import { CliError, type ProcessSummary } from './source.js';

/** A recorded actor, as the process's `dorsal.actors` property lists it. */
interface RecordedActor {
  readonly id: number;
  readonly name?: string;
  readonly module?: string;
}

/**
 * The names of a recorded process's ingress actors: those its `dorsal.ingress` property lists
 * (by actor id), or, for a process recorded without it, its actors whose module is an ingress
 * actor's in `definition`.
 */
export function ingressActorsOf(process: ProcessSummary, definition?: SystemDefinition): string[] {
  const actors = parseList<RecordedActor>(process.properties['dorsal.actors']);
  const listed = process.properties['dorsal.ingress'];
  let ingress: RecordedActor[];
  if (listed !== undefined) {
    const ids = new Set(parseList<number>(listed));
    ingress = actors.filter((a) => ids.has(a.id));
  } else {
    const modules = new Set(
      (definition?.actors ?? []).filter((a) => a.ingress === true).map((a) => actorModuleUrl(a).href),
    );
    ingress = actors.filter((a) => a.module !== undefined && modules.has(a.module));
  }
  return ingress.flatMap((a) => (a.name === undefined ? [] : [a.name]));
}

/** SQL `IN` list of names. */
export function nameList(names: readonly string[]): string {
  return `(${names.map(quoteLiteral).join(', ')})`;
}

/** How many messages each stream holds from the given actors, in one process. */
export async function countByStream(
  analytics: AnalyticsQuestions,
  process: string,
  actors: readonly string[],
): Promise<Map<string, number>> {
  if (actors.length === 0) return new Map();
  const { rows } = await analytics.query(
    `SELECT stream, count(*)::DOUBLE FROM messages WHERE actor IN ${nameList(actors)} GROUP BY stream`,
    { process, maxRows: 100_000 },
  );
  return new Map(rows.map((r) => [String(r[0]), Number(r[1])]));
}

/** A field's value as SQL selects it for replay: exact as text where JSON would round or fail. */
function selectField(field: FieldDescription): string {
  const column = quoteIdentifier(fieldColumnName(field.name));
  switch (field.type) {
    case 'f64':
    case 'f32':
      // DuckDB prints the shortest text that reads back as the same double (and nan, inf).
      return `${column}::DOUBLE::VARCHAR`;
    case 'i64':
    case 'u64':
      return `${column}::VARCHAR`;
    case 'bytes':
      return `hex(${column})`;
    default:
      return column;
  }
}

/** A selected value back as the layout takes it. */
function fieldValue(field: FieldDescription, value: unknown): unknown {
  switch (field.type) {
    case 'f64':
    case 'f32': {
      const text = String(value);
      return text === 'nan'
        ? Number.NaN
        : text === 'inf'
          ? Infinity
          : text === '-inf'
            ? -Infinity
            : Number(text);
    }
    case 'i64':
    case 'u64':
      return BigInt(String(value));
    case 'bytes':
      return Uint8Array.from(Buffer.from(String(value), 'hex'));
    case 'bool':
      return value === true || value === 'true';
    case 'string':
      return String(value ?? '');
    default:
      return Number(value);
  }
}

/** The player's messages: everything but how fast, and the shared count. */
export type Playlist = Omit<PlayerArgs, 'speed' | 'played'>;

/**
 * The messages a recorded process's ingress actors published, in their recorded order (publish
 * time; a tie by stream, then sequence), each with the fields `definition`'s spine declares for
 * its stream, read from the recording. A stream or a field the recording lacks is a `CliError`.
 */
export async function readPlaylist(
  analytics: AnalyticsQuestions,
  process: ProcessSummary,
  actors: readonly string[],
  counts: ReadonlyMap<string, number>,
  definition: SystemDefinition,
  module: string,
): Promise<Playlist> {
  const streams = [...counts.keys()].sort();
  const recorded = new Map(
    parseList<{ name: string; layout?: { fields?: FieldDescription[] } }>(
      process.properties['dorsal.spine'],
    ).map((s) => [s.name, new Set((s.layout?.fields ?? []).map((f) => f.name))]),
  );
  const rows: { stream: number; t: number; seq: number; value: object }[] = [];
  for (const [s, name] of streams.entries()) {
    const spec = definition.spine.streams[name];
    if (spec === undefined) {
      throw new CliError(
        `${module} has no stream '${name}', which the ingress actors of process ${process.processId} published`,
      );
    }
    const fields = spec.message.describe().fields;
    const missing = fields.find((f) => recorded.has(name) && !recorded.get(name)!.has(f.name));
    if (missing !== undefined) {
      throw new CliError(
        `stream '${name}' of ${module} has a field '${missing.name}' that process ${process.processId} did not record`,
      );
    }
    const select = fields.map(selectField).join(', ');
    const page = await readPaged(
      analytics,
      process.processId,
      (after, limit) =>
        `SELECT seq, publish_t${select ? `, ${select}` : ''} FROM ${quoteIdentifier(streamTableName(name))} WHERE actor IN ${nameList(actors)} AND seq > ${after} ORDER BY seq LIMIT ${limit}`,
    );
    for (const row of page) {
      const value: Record<string, unknown> = {};
      fields.forEach((f, i) => {
        value[f.name] = fieldValue(f, row[i + 2]);
      });
      rows.push({ stream: s, t: Number(row[1]), seq: Number(row[0]), value });
    }
  }
  rows.sort((a, b) => a.t - b.t || a.stream - b.stream || a.seq - b.seq);
  const first = rows[0]?.t ?? 0;
  return {
    streams,
    stream: Uint16Array.from(rows, (r) => r.stream),
    at: Float64Array.from(rows, (r) => r.t - first),
    values: rows.map((r) => r.value),
  };
}
