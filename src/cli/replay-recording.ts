import { actorModuleUrl, type SystemDefinition } from '../actors/define-system.js';
import type { FieldDescription } from '../queues/field-types.js';
import type { Layout } from '../queues/layout.js';
import { allRows } from '../telemetry/analytics/paged.js';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { fieldColumnName, fieldColumnNames } from '../telemetry/analytics/source-tables.js';
import { quoteLiteral } from '../telemetry/analytics/sql.js';
import { parseList } from '../telemetry/analytics/views.js';
import { printable } from './format.js';
import type { TimeSpan } from './replay-span.js';
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

/**
 * Per stream the given actors published into, in one process: how many messages the recording
 * holds now, and the first seq past them (see `Playlist.ends`).
 */
export async function ingressByStream(
  analytics: AnalyticsQuestions,
  process: string,
  actors: readonly string[],
): Promise<Map<string, { readonly count: number; readonly end: number }>> {
  if (actors.length === 0) return new Map();
  const rows = await allRows(
    analytics,
    { process },
    `SELECT stream, count(*)::DOUBLE, (max(seq) + 1)::DOUBLE FROM messages WHERE actor IN ${nameList(actors)} GROUP BY stream ORDER BY stream`,
  );
  return new Map(rows.map((r) => [String(r[0]), { count: Number(r[1]), end: Number(r[2]) }]));
}

/**
 * Ingress streams in the order a replay breaks ties of play time in (see `playOrderSql`), and
 * so the order its diff ranks ingress messages in (replay-tree.ts, replay-memory.ts): by name, as
 * JavaScript sorts strings.
 */
export function inPlayOrder(streams: Iterable<string>): string[] {
  return [...streams].sort();
}

/**
 * What a replay plays, checked against the recording before anything runs: the streams the
 * recorded ingress actors published (sorted: the order ties on publish time are broken in), each
 * with the replayed spine's layout of it, and how many messages there are in all.
 */
export interface Playlist {
  readonly process: string;
  /** The recorded ingress actors, whose messages are played. */
  readonly actors: readonly string[];
  readonly streams: readonly string[];
  /** Per stream: the replayed spine's layout, whose fields are read from the recording. */
  readonly layouts: readonly Layout[];
  /**
   * Per stream: the column of the recording's table each field of `layouts` is read from (see
   * `fieldColumnNames`: a column's name may depend on the recorded layout's other fields); absent,
   * each field's own (`fieldColumnName`). See `recordedColumn`.
   */
  readonly columns?: readonly ReadonlyMap<string, string>[];
  /** Messages to play, from the counts (what the progress bar and the runner's end go by). */
  readonly total: number;
  /**
   * Per stream: the first seq past what is played (a recording still under way goes on past the
   * counts: what it records from then on is not played). Absent: the stream's whole recording.
   */
  readonly ends?: readonly number[];
  /** The recording's span: a publish time outside it paces nothing (see `TimeSpan`). Absent: any finite time paces. */
  readonly span?: TimeSpan;
}

/**
 * The recorded spine's streams whose layout its `dorsal.spine` holds: a spine too wide for a
 * process property is described without layouts (see the persister), and its fields are then
 * taken as the replayed layout names them.
 */
export function recordedLayouts(
  process: ProcessSummary,
): { name: string; layout: { fields: FieldDescription[] } }[] {
  return parseList<{ name: string; layout?: { fields?: FieldDescription[] } }>(
    process.properties['dorsal.spine'],
  ).filter((s): s is { name: string; layout: { fields: FieldDescription[] } } =>
    Array.isArray(s?.layout?.fields),
  );
}

/** The column of the recording's table that field `field` of stream `s` of the playlist is read from. */
export function recordedColumn(playlist: Playlist, s: number, field: string): string {
  return playlist.columns?.[s]?.get(field) ?? fieldColumnName(field);
}

/**
 * The playlist of a recorded process's ingress actors into `definition`'s spine: a `CliError`
 * for a stream they published that the spine lacks, or a field of its layout the recording does
 * not have. The messages themselves are read as they are played (see `replay-pages.ts`).
 */
export function playlistOf(
  process: ProcessSummary,
  actors: readonly string[],
  counts: ReadonlyMap<string, number>,
  definition: SystemDefinition,
  module: string,
): Playlist {
  const streams = inPlayOrder(counts.keys());
  const recorded = new Map(
    recordedLayouts(process).map((s) => {
      const names = s.layout.fields.map((f) => String(f.name));
      const columns = fieldColumnNames(names);
      return [s.name, new Map(names.map((name, i) => [name, columns[i]!]))];
    }),
  );
  const layouts = streams.map((name) => {
    const spec = definition.spine.streams[name];
    if (spec === undefined) {
      throw new CliError(
        `${printable(module)} has no stream '${printable(name)}', which the ingress actors of process ${process.processId} published`,
      );
    }
    const fields = spec.message.describe().fields;
    const missing = fields.find((f) => recorded.has(name) && !recorded.get(name)!.has(f.name));
    if (missing !== undefined) {
      throw new CliError(
        `stream '${printable(name)}' of ${printable(module)} has a field '${printable(missing.name)}' that process ${process.processId} did not record`,
      );
    }
    return spec.message as Layout;
  });
  // A stream whose recorded layout is not described (a spine too wide) is taken to have the
  // replayed layout's fields: their columns are named as the recording named them then.
  const columns = streams.map((name, s) => {
    const names = layouts[s]!.describe().fields.map((f) => f.name);
    const own =
      recorded.get(name) ?? new Map(fieldColumnNames(names).map((column, i) => [names[i]!, column]));
    return new Map(names.map((n) => [n, own.get(n) ?? fieldColumnName(n)]));
  });
  const total = [...counts.values()].reduce((n, c) => n + c, 0);
  return { process: process.processId, actors, streams, layouts, columns, total };
}
