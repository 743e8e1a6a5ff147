import type { DuckDBConnection } from '@duckdb/node-api';
import type { BlockRow, ProcessRow, StreamRow } from '../lake/types.js';
import { RecordProperty } from '../persist/records.js';
import type { StoredDiff } from '../persist/replay-diff.js';
import type { StoredCounts } from '../persist/run-counts.js';
import { MAX_EPOCH_NS, MIN_EPOCH_NS, rfc3339ToEpochNs, streamName } from '../wire/index.js';
import { appendedTable, type Cell } from './appended-table.js';
import { messageOf } from './guard.js';
import type { Materialized } from './partitions.js';
import { type TimeWindow, windowCondition } from './query.js';
import { foldCase as folded, quoteIdentifier as id, quoteLiteral as text } from './sql.js';

/** DuckDB's number types: a field typed as two of them across processes is read as one. */
const NUMBER_TYPE = /INT|FLOAT|DOUBLE|DECIMAL/;

/**
 * A record's time (ns since its process's start, a DOUBLE as recorded) as ns since the epoch, or
 * NULL outside the years 1678 to 2261 (the lake's times, `MIN_EPOCH_NS`): a client's block may
 * carry any number (1e300), and a cast that fails, or a timestamp DuckDB cannot print, would fail
 * every query over the lake, not leave that record's time out.
 */
const sinceEpoch = (t: string) =>
  `(CASE WHEN try(p.start_ns + TRY_CAST(${t} AS BIGINT)) BETWEEN ${MIN_EPOCH_NS} AND ${MAX_EPOCH_NS} THEN p.start_ns + TRY_CAST(${t} AS BIGINT) END)`;

/** NO_PARENT of the tracking envelope: an ingress message's parent stream. */
const NO_PARENT = 65535;

/** What the views of one query are made of. */
export interface ViewInputs {
  readonly processes: readonly ProcessRow[];
  readonly streams: readonly StreamRow[];
  readonly blocks: readonly BlockRow[];
  readonly materialized: readonly Materialized[];
  /** The replays' diffs kept in the lake (`dorsal replay --diff`), one per diff block. */
  readonly diffs?: readonly DocumentRow<StoredDiff>[];
  /** The runs' counts kept in the lake by the persister at their stop, one per run. */
  readonly counts?: readonly DocumentRow<StoredCounts>[];
  /** Rows outside it are left out of every view. */
  readonly window?: TimeWindow;
}

/** A document stream's block, read (or why it could not be). */
export type DocumentRow<T> =
  | { readonly processId: string; readonly document: T }
  | { readonly processId: string; readonly error: string };

const num = (n: number | null) => (n === null || !Number.isFinite(n) ? 'NULL' : String(n));

/**
 * The tables of the replays' diffs: `replay_diffs` (one row per diff: the replay, the recording,
 * messages diverged, the divergences kept at most, or why its block did not read),
 * `replay_diff_streams` (per stream: matched, differing, only recorded, only replayed) and
 * `replay_divergences` (the first divergences, `n` from 1 in the order the command printed
 * them: kind, stream, place, seq on each side, and `fields`, a JSON list of
 * `{field, recorded, replayed}`).
 */
async function createDiffTables(
  connection: DuckDBConnection,
  diffs: readonly DocumentRow<StoredDiff>[],
): Promise<void> {
  const ok = diffs.filter((d) => 'document' in d).map((d) => ({ processId: d.processId, diff: d.document }));
  await appendedTable(
    connection,
    'replay_diffs',
    'process_id VARCHAR, replay_of VARCHAR, diverged BIGINT, divergences_limit BIGINT, error VARCHAR',
    diffs.map((d) =>
      'document' in d
        ? [d.processId, d.document.recording ?? '', d.document.diverged, d.document.limit, null]
        : [d.processId, null, null, null, d.error],
    ),
  );
  // Counts and sequence numbers are safe integers (`parseStoredDiff` checks each).
  await appendedTable(
    connection,
    'replay_diff_streams',
    'process_id VARCHAR, position INTEGER, stream VARCHAR, matched BIGINT, differing BIGINT, only_recorded BIGINT, only_replayed BIGINT',
    ok.flatMap((d) =>
      d.diff.streams.map((s, i) => [
        d.processId,
        i,
        s.stream,
        s.matched,
        s.differing,
        s.onlyRecorded,
        s.onlyReplayed,
      ]),
    ),
  );
  await appendedTable(
    connection,
    'replay_divergences',
    'process_id VARCHAR, n INTEGER, kind VARCHAR, stream VARCHAR, place VARCHAR, recorded_seq BIGINT, replayed_seq BIGINT, fields JSON',
    ok.flatMap((d) =>
      d.diff.divergences.map((v, i) => [
        d.processId,
        i + 1,
        v.kind,
        v.stream,
        v.place,
        v.recordedSeq,
        v.replayedSeq,
        JSON.stringify(v.fields ?? []),
      ]),
    ),
  );
}

/**
 * The tables of the runs' counts (see `persist/run-counts.ts`): `run_counts` (one row per run:
 * ingress refused at the stop, whether it drained, the threads terminated, or why its block did
 * not read), `actor_counts` (per actor × stream: handled, skipped, lost, poisoned, failed,
 * produced, unread), `timing_reads` (per observer × actor: timing records read, lost and unread) and
 * `persister_accounts` (per lake stream the persister persisted: the sequences it was to persist,
 * `from_seq` to `end_seq`, and of them lost, poisoned; events dropped at the source). Runs go in
 * by batches, each in a transaction; should some run's counts not make tables (the parser
 * refuses what it knows of), its batch goes in run by run, so that they are that run's `error`
 * and every other block's rows are there all the same.
 */
async function createCountsTables(
  connection: DuckDBConnection,
  counts: readonly DocumentRow<StoredCounts>[],
): Promise<void> {
  const run = (sql: string) => connection.run(sql);
  await run(
    'CREATE TEMP TABLE run_counts (process_id VARCHAR, refused BIGINT, drained BOOLEAN, terminated JSON, error VARCHAR)',
  );
  await run(
    'CREATE TEMP TABLE actor_counts (process_id VARCHAR, actor VARCHAR, actor_id INTEGER, stream VARCHAR, handled BIGINT, skipped BIGINT, lost BIGINT, poisoned BIGINT, failed BIGINT, produced BIGINT, unread BIGINT)',
  );
  await run(
    'CREATE TEMP TABLE timing_reads (process_id VARCHAR, observer VARCHAR, observer_id INTEGER, actor VARCHAR, actor_id INTEGER, handled BIGINT, lost BIGINT, unread BIGINT)',
  );
  await run(
    'CREATE TEMP TABLE persister_accounts (process_id VARCHAR, stream_id VARCHAR, tags JSON, name VARCHAR, from_seq BIGINT, end_seq BIGINT, lost BIGINT, poisoned BIGINT, dropped BIGINT)',
  );
  const rowsOf = (row: DocumentRow<StoredCounts>) => {
    const p = text(row.processId);
    if (!('document' in row))
      return { runs: [`(${p}, NULL, NULL, NULL, ${text(row.error)})`], actors: [], reads: [], accounts: [] };
    const c = row.document;
    return {
      accounts: (c.persisted ?? []).map(
        (a) =>
          `(${p}, ${text(a.streamId)}, ${text(JSON.stringify(a.tags))}, ${text(a.name)}, ${num(a.from)}, ${num(a.end)}, ${num(a.lost)}, ${num(a.poisoned)}, ${num(a.dropped)})`,
      ),
      runs: [`(${p}, ${num(c.refused)}, ${c.drained === true}, ${text(JSON.stringify(c.terminated))}, NULL)`],
      actors: c.streams.map(
        (s) =>
          `(${p}, ${text(s.actor)}, ${num(s.actorId)}, ${text(s.stream)}, ${num(s.handled)}, ${num(s.skipped)}, ${num(s.lost)}, ${num(s.poisoned)}, ${num(s.failed)}, ${num(s.produced)}, ${num(s.unread ?? 0)})`,
      ),
      reads: c.timings.map(
        (t) =>
          `(${p}, ${text(t.observer)}, ${num(t.observerId)}, ${text(t.actor)}, ${num(t.actorId)}, ${num(t.handled)}, ${num(t.lost)}, ${num(t.unread ?? 0)})`,
      ),
    };
  };
  /** Inserts the rows of `rows`, all or none of them (a transaction: an error leaves nothing). */
  const insert = async (rows: readonly DocumentRow<StoredCounts>[]) => {
    const made = rows.map(rowsOf);
    await run('BEGIN TRANSACTION');
    try {
      for (const [table, values] of [
        ['actor_counts', made.flatMap((m) => m.actors)],
        ['timing_reads', made.flatMap((m) => m.reads)],
        ['run_counts', made.flatMap((m) => m.runs)],
        ['persister_accounts', made.flatMap((m) => m.accounts)],
      ] as const) {
        if (values.length > 0) await run(`INSERT INTO ${table} VALUES ${values.join(', ')}`);
      }
      await run('COMMIT');
    } catch (error) {
      await run('ROLLBACK');
      throw error;
    }
  };
  // Runs in batches of about COUNTS_BATCH_ROWS rows, one statement per table each: a statement
  // per run was slow over a lake of many runs, one for all of them held the whole lake's SQL.
  let batch: DocumentRow<StoredCounts>[] = [];
  let batchRows = 0;
  const flush = async () => {
    const runs = batch;
    batch = [];
    batchRows = 0;
    try {
      await insert(runs);
    } catch {
      // Some run's counts do not make tables: run by run, so that it is the only one left out.
      for (const row of runs) {
        try {
          await insert([row]);
        } catch (error) {
          await insert([
            { processId: row.processId, error: `its counts do not make tables: ${messageOf(error)}` },
          ]);
        }
      }
    }
  };
  for (const row of counts) {
    batch.push(row);
    batchRows +=
      'document' in row
        ? 1 +
          row.document.streams.length +
          row.document.timings.length +
          (row.document.persisted?.length ?? 0)
        : 1;
    if (batchRows >= COUNTS_BATCH_ROWS) await flush();
  }
  if (batch.length > 0) await flush();
}

/** Rows of the counts tables inserted per statement (see `createCountsTables`). */
const COUNTS_BATCH_ROWS = 1000;

/**
 * Creates, on one connection, the tables a query sees (as temporary views and tables, so that
 * concurrent queries over other processes do not meet): `processes`, `streams`, `blocks`; one
 * typed view per spine stream, `stream_<name>`: the envelope (`process_id, stream, seq,
 * origin_t, publish_t, actor, parent_stream, parent_seq, publish_time`) then the message's fields
 * as columns; `messages`, every stream's rows with `fields` as JSON (each process's own, keyed by
 * the fields' own names); `timings` (with
 * `latency_ns`, `processing_ns`, `end_time`); `timing_records`, the same records with the ids
 * of their actor and stream (`_actors`, `_stream_names` name them); `losses` (the persister's
 * and every actor's); the replays' diffs, `replay_diffs`, `replay_diff_streams`,
 * `replay_divergences` (see `createDiffTables`); the runs' counts, `run_counts`, `actor_counts`,
 * `timing_reads`, `persister_accounts` (see `createCountsTables`); `unreadable_blocks`, the blocks whose records are
 * left out because their blob is missing or damaged (`object_count` records each, and why).
 */
export async function createViews(connection: DuckDBConnection, inputs: ViewInputs): Promise<void> {
  const run = (sql: string) => connection.run(sql);
  const window = inputs.window ?? {};
  await appendedTable(
    connection,
    'processes',
    'process_id VARCHAR, exe VARCHAR, host VARCHAR, username VARCHAR, start_time TIMESTAMPTZ, start_ns BIGINT, parent_process_id VARCHAR, properties JSON, start_ticks DOUBLE, clock JSON',
    inputs.processes.map((p) => [
      p.processId,
      p.exe,
      p.host,
      p.username,
      p.startTime,
      rfc3339ToEpochNs(p.startTime) ?? 0n,
      p.parentProcessId ?? '',
      JSON.stringify(p.properties),
      p.startTicks,
      JSON.stringify(p.clock),
    ]),
  );
  await appendedTable(
    connection,
    'streams',
    'stream_id VARCHAR, process_id VARCHAR, tags JSON, properties JSON, name VARCHAR',
    inputs.streams.map((s) => [
      s.streamId,
      s.processId,
      JSON.stringify(s.tags),
      JSON.stringify(s.properties),
      streamName(s),
    ]),
  );
  await appendedTable(
    connection,
    'blocks',
    'block_id VARCHAR, stream_id VARCHAR, process_id VARCHAR, begin_time TIMESTAMPTZ, begin_ticks BIGINT, end_time TIMESTAMPTZ, end_ticks BIGINT, object_count BIGINT, payload_size BIGINT',
    inputs.blocks.map((b) => [
      b.blockId,
      b.streamId,
      b.processId,
      b.beginTime,
      b.beginTicks,
      b.endTime,
      b.endTicks,
      b.objectCount,
      b.payloadSize,
    ]),
  );
  await appendedTable(
    connection,
    'unreadable_blocks',
    'process_id VARCHAR, stream_id VARCHAR, block_id VARCHAR, object_count BIGINT, error VARCHAR',
    inputs.materialized.flatMap((m) =>
      m.unreadable.map((u) => [u.processId, u.streamId, u.blockId, u.objectCount, u.error]),
    ),
  );
  await createNameTables(connection, inputs.processes, inputs.streams);
  await createDiffTables(connection, inputs.diffs ?? []);
  await createCountsTables(connection, inputs.counts ?? []);

  // One view per spine stream name, over every selected process that has it. Names are told
  // apart as DuckDB tells them, whatever their case (runs may spell a stream differently: two
  // views would clash); each process's rows carry its own spelling in `stream`.
  interface StreamView {
    /** The view's name: the first spelling met. */
    view: string;
    /** The columns of the message's fields. */
    fields: string[];
    /** The field each column holds, by the column's name (`field_seq` holds `seq`). */
    keys: Map<string, string>;
    /** Each process's spelling of the stream's name. */
    names: Map<string, string>;
    /** The processes' tables of it (as `Materialized.files` names them). */
    tables: Set<string>;
  }
  const byView = new Map<string, StreamView>();
  for (const m of inputs.materialized) {
    for (const { table } of m.sources) {
      if (table.kind !== 'messages') continue;
      const entry: StreamView = byView.get(folded(table.table)) ?? {
        view: table.table,
        fields: [],
        keys: new Map(),
        names: new Map(),
        tables: new Set(),
      };
      for (const column of table.columns) {
        if (column.part === 2 && !entry.fields.some((f) => folded(f) === folded(column.name))) {
          entry.fields.push(column.name);
          entry.keys.set(column.name, column.field);
        }
      }
      if (!entry.names.has(m.processId)) entry.names.set(m.processId, table.name);
      entry.tables.add(table.table);
      byView.set(folded(table.table), entry);
    }
  }
  const files = (view: string) => inputs.materialized.flatMap((m) => m.files.get(view) ?? []);
  /** The `stream` column: each process's spelling of the name. */
  const nameOfStream = (names: ReadonlyMap<string, string>) => {
    const spellings = new Set(names.values());
    if (spellings.size === 1) return text([...spellings][0]!);
    return `CASE r.process_id ${[...names].map(([process, name]) => `WHEN ${text(process)} THEN ${text(name)}`).join(' ')} END`;
  };
  const streamRows = (
    names: ReadonlyMap<string, string>,
    paths: readonly string[],
    fields: readonly string[],
    asText: ReadonlySet<string> = new Set(),
  ) =>
    `SELECT r.process_id, ${nameOfStream(names)} AS stream, r.seq::BIGINT AS seq, r.origin_t, r.publish_t, a.actor, ps.stream AS parent_stream, CASE WHEN r.parent_stream_id = ${NO_PARENT} THEN NULL ELSE r.parent_seq::BIGINT END AS parent_seq, make_timestamp_ns(${sinceEpoch('r.publish_t')}) AS publish_time${fields.map((f) => (asText.has(f) ? `, r.${id(f)}::VARCHAR AS ${id(f)}` : `, r.${id(f)}`)).join('')} FROM ${parquet(paths)} r LEFT JOIN _actors a ON a.process_id = r.process_id AND a.actor_id = r.actor_id LEFT JOIN _stream_names ps ON ps.process_id = r.process_id AND ps.stream_id = r.parent_stream_id LEFT JOIN processes p ON p.process_id = r.process_id WHERE ${windowCondition(sinceEpoch('r.publish_t'), window)}`;
  // Keyed by each field's own name, not its column's (`seq`, not `field_seq`); a JSON object,
  // not a struct, whose keys DuckDB would tell apart regardless of case.
  const asMessages = (fields: readonly string[], keys: ReadonlyMap<string, string>, from: string) => {
    const members = fields.map((f) => `${text(keys.get(f) ?? f)}, ${id(f)}`).join(', ');
    return `SELECT process_id, stream, seq, origin_t, publish_t, actor, parent_stream, parent_seq, publish_time, ${members ? `json_object(${members})` : "'{}'::JSON"} AS fields FROM ${from}`;
  };
  /**
   * A stream's view over every process that has it. A field whose processes type it apart, other
   * than as numbers (bytes in one run, a number in its replay into a changed system), is text in
   * it: read together, DuckDB found no type for both, and the whole view failed. Processes are
   * then read in groups of one type per such field, their rows put together by name.
   */
  const streamView = (
    materialized: readonly Materialized[],
    ownFiles: (m: Materialized) => string[],
    tables: ReadonlySet<string>,
    names: ReadonlyMap<string, string>,
    fields: readonly string[],
  ): string => {
    const typed = materialized.map((m) => {
      const types = new Map<string, string>();
      for (const { table } of m.sources) {
        if (table.kind !== 'messages' || !tables.has(table.table)) continue;
        for (const c of table.columns) if (c.part === 2) types.set(folded(c.name), c.type);
      }
      return { m, types, paths: ownFiles(m) };
    });
    // Of the processes with rows in the view: a stream record with no block types nothing.
    const apart = fields.filter((f) => {
      const types = new Set(
        typed.flatMap(({ types: t, paths }) => (paths.length > 0 ? (t.get(folded(f)) ?? []) : [])),
      );
      return types.size > 1 && ![...types].every((t) => NUMBER_TYPE.test(t));
    });
    const all = typed.flatMap(({ paths }) => paths);
    if (apart.length === 0) return streamRows(names, all, fields);
    const groups = new Map<string, { paths: string[]; names: Map<string, string>; has: Set<string> }>();
    for (const { m, types, paths } of typed) {
      if (paths.length === 0) continue;
      const key = JSON.stringify(apart.map((f) => types.get(folded(f)) ?? null));
      const group = groups.get(key) ?? {
        paths: [],
        names: new Map<string, string>(),
        has: new Set<string>(),
      };
      group.paths.push(...paths);
      group.names.set(m.processId, names.get(m.processId)!);
      for (const f of fields) if (types.has(folded(f))) group.has.add(f);
      groups.set(key, group);
    }
    const asText = new Set(apart);
    return [...groups.values()]
      .map((g) =>
        streamRows(
          g.names,
          g.paths,
          fields.filter((f) => g.has.has(f)),
          asText,
        ),
      )
      .join(' UNION ALL BY NAME ');
  };
  const messageSelects: string[] = [];
  for (const { view, fields, keys, names, tables } of byView.values()) {
    const ownFiles = (m: Materialized) => [...tables].flatMap((table) => m.files.get(table) ?? []);
    const paths = inputs.materialized.flatMap(ownFiles);
    if (paths.length === 0) continue;
    await run(
      `CREATE TEMP VIEW ${id(view)} AS ${streamView(inputs.materialized, ownFiles, tables, names, fields)}`,
    );
    // In `messages`, each process's rows hold its own fields, as its layout types them: processes
    // whose layouts of the stream differ (a replay into a changed system) are read apart, so that
    // none gains another's fields (as nulls) or has its values cast to another's types (a number
    // and the same digits as text made equal; bytes and a number, a query that fails).
    const layouts = new Map<
      string,
      { fields: string[]; keys: Map<string, string>; paths: string[]; names: Map<string, string> }
    >();
    for (const m of inputs.materialized) {
      const own = ownFiles(m);
      if (own.length === 0) continue;
      const columns = m.sources
        .filter((s) => s.table.kind === 'messages' && tables.has(s.table.table))
        .flatMap((s) => s.table.columns.filter((c) => c.part === 2));
      const types = new Map(columns.map((c) => [c.name, c.type]));
      // Layouts that differ in their fields' order only are read together (one order of keys);
      // in their names' case, or in the field a column holds (`field_seq`: a field `seq`, or one
      // named `field_seq`), apart: each keeps its own names in `fields`.
      const held = new Map(columns.map((c) => [c.name, [c.type, c.field]]));
      const key = JSON.stringify([...held].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      const group = layouts.get(key) ?? {
        fields: [...types.keys()],
        keys: new Map(columns.map((c) => [c.name, c.field])),
        paths: [],
        names: new Map<string, string>(),
      };
      group.paths.push(...own);
      group.names.set(m.processId, names.get(m.processId)!);
      layouts.set(key, group);
    }
    if (layouts.size <= 1) messageSelects.push(asMessages(fields, keys, id(view)));
    else {
      for (const group of layouts.values()) {
        messageSelects.push(
          asMessages(group.fields, group.keys, `(${streamRows(group.names, group.paths, group.fields)})`),
        );
      }
    }
  }
  await run(
    `CREATE TEMP VIEW messages AS ${
      messageSelects.length > 0
        ? messageSelects.join(' UNION ALL ')
        : 'SELECT NULL::VARCHAR AS process_id, NULL::VARCHAR AS stream, NULL::BIGINT AS seq, NULL::DOUBLE AS origin_t, NULL::DOUBLE AS publish_t, NULL::VARCHAR AS actor, NULL::VARCHAR AS parent_stream, NULL::BIGINT AS parent_seq, NULL::TIMESTAMP_NS AS publish_time, NULL::JSON AS fields WHERE false'
    }`,
  );
  const timingFiles = files('timings');
  await run(
    `CREATE TEMP VIEW timings AS ${
      timingFiles.length > 0
        ? `SELECT r.process_id, a.actor, s.stream, r.seq::BIGINT AS seq, r.origin_t, r.publish_t, r.start_t, r.end_t, r.end_t - r.origin_t AS latency_ns, r.end_t - r.start_t AS processing_ns, make_timestamp_ns(${sinceEpoch('r.end_t')}) AS end_time FROM ${parquet(timingFiles)} r LEFT JOIN _actors a ON a.process_id = r.process_id AND a.actor_id = r.actor_id LEFT JOIN _stream_names s ON s.process_id = r.process_id AND s.stream_id = r.stream_id LEFT JOIN processes p ON p.process_id = r.process_id WHERE ${windowCondition(sinceEpoch('r.end_t'), window)}`
        : 'SELECT NULL::VARCHAR AS process_id, NULL::VARCHAR AS actor, NULL::VARCHAR AS stream, NULL::BIGINT AS seq, NULL::DOUBLE AS origin_t, NULL::DOUBLE AS publish_t, NULL::DOUBLE AS start_t, NULL::DOUBLE AS end_t, NULL::DOUBLE AS latency_ns, NULL::DOUBLE AS processing_ns, NULL::TIMESTAMP_NS AS end_time WHERE false'
    }`,
  );
  // The same records with ids for names and no join unless a window needs the process's start:
  // what an aggregate over millions of rows reads (names are joined to its few groups after).
  const windowed = window.beginNs !== undefined || window.endNs !== undefined;
  await run(
    `CREATE TEMP VIEW timing_records AS ${
      timingFiles.length > 0
        ? `SELECT r.process_id, r.actor_id::INTEGER AS actor_id, r.stream_id::INTEGER AS stream_id, r.seq::BIGINT AS seq, r.origin_t, r.publish_t, r.start_t, r.end_t FROM ${parquet(timingFiles)} r${windowed ? ` JOIN processes p ON p.process_id = r.process_id WHERE ${windowCondition(sinceEpoch('r.end_t'), window)}` : ''}`
        : 'SELECT NULL::VARCHAR AS process_id, NULL::INTEGER AS actor_id, NULL::INTEGER AS stream_id, NULL::BIGINT AS seq, NULL::DOUBLE AS origin_t, NULL::DOUBLE AS publish_t, NULL::DOUBLE AS start_t, NULL::DOUBLE AS end_t WHERE false'
    }`,
  );
  const coverageFiles = files('block_coverage');
  const coverage =
    coverageFiles.length > 0
      ? `SELECT process_id, lower(stream_id) AS stream_id, max(lost_total)::BIGINT AS lost, max(poisoned_total)::BIGINT AS poisoned, max(coalesce(dropped_total, 0))::BIGINT AS dropped FROM ${parquet(coverageFiles, true)} GROUP BY ALL`
      : 'SELECT NULL::VARCHAR AS process_id, NULL::VARCHAR AS stream_id, NULL::BIGINT AS lost, NULL::BIGINT AS poisoned, NULL::BIGINT AS dropped WHERE false';
  // The persister's account of the whole run, kept at its stop: not within a time window (a
  // window's losses are its blocks' coverage). What it was to persist, less what it counted
  // lost, less the records the lake holds, is `unrecorded`: blocks lost on their way with the
  // coverage that would have said so, or deleted by retention since (the lake cannot tell which).
  const accounts = windowed
    ? 'SELECT NULL::VARCHAR AS process_id, NULL::VARCHAR AS stream_id, NULL::JSON AS tags, NULL::VARCHAR AS name, NULL::BIGINT AS lost, NULL::BIGINT AS poisoned, NULL::BIGINT AS dropped, NULL::BIGINT AS unrecorded WHERE false'
    : 'SELECT a.process_id, lower(a.stream_id) AS stream_id, a.tags, a.name, a.lost, a.poisoned, a.dropped, greatest(0, a.end_seq - a.from_seq - a.lost - coalesce(b.stored, 0))::BIGINT AS unrecorded FROM persister_accounts a LEFT JOIN (SELECT process_id, lower(stream_id) AS stream_id, sum(object_count) AS stored FROM blocks GROUP BY ALL) b ON b.process_id = a.process_id AND b.stream_id = lower(a.stream_id)';
  // A stream is named as the lake has it, else as the account does (its record may not have come).
  const [tags, name] = ['coalesce(s.tags, a.tags)::VARCHAR[]', 'coalesce(s.name, a.name, k.stream_id)'];
  const label = `CASE ${['timings', 'log', 'metrics', 'spans'].map((tag) => `WHEN list_contains(${tags}, '${tag}') THEN '${tag}:' || ${name}`).join(' ')} ELSE ${name} END`;
  // The persister's losses, per lake stream, from its blocks' coverage and its account at the
  // stop (the greater of each: an account the lake got is the whole run's, a stream's last
  // coverage may not have arrived), and what the lake holds of neither (`unrecorded`, apart: it
  // may be retention's doing); then every actor's, per stream it consumed and per timing queue it
  // observed, from the run's counts. `counted_by` says which (an actor may be named 'persister').
  await run(
    `CREATE TEMP VIEW losses AS WITH c AS (${coverage}), a AS (${accounts}) SELECT k.process_id, ${label} AS stream, 'persister' AS consumer, 'persister' AS counted_by, greatest(c.lost, a.lost)::BIGINT AS lost, greatest(c.poisoned, a.poisoned)::BIGINT AS poisoned, greatest(c.dropped, a.dropped)::BIGINT AS dropped, coalesce(a.unrecorded, 0)::BIGINT AS unrecorded FROM (SELECT process_id, stream_id FROM c UNION SELECT process_id, stream_id FROM a) k LEFT JOIN c ON c.process_id = k.process_id AND c.stream_id = k.stream_id LEFT JOIN a ON a.process_id = k.process_id AND a.stream_id = k.stream_id LEFT JOIN streams s ON s.process_id = k.process_id AND lower(s.stream_id) = k.stream_id UNION ALL SELECT process_id, stream, actor, 'actor', lost, poisoned, 0::BIGINT, 0::BIGINT FROM actor_counts WHERE handled + skipped + lost + failed > 0 UNION ALL SELECT process_id, 'timings:' || actor, observer, 'observer', lost, 0::BIGINT, 0::BIGINT, 0::BIGINT FROM timing_reads`,
  );
  await createInstrumentationViews(connection, inputs, window);
}

/** Log levels by number, as events store them. */
const LEVELS = ['off', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/**
 * `log_entries`, `measures` and `thread_spans`, over the instrumentation streams' partitions:
 * each event's time on the process's clock (`time_ns`: its thread's clock base rebased onto the
 * process's) and on the calendar (`time`), its thread (and actor), its strings resolved.
 */
async function createInstrumentationViews(
  connection: DuckDBConnection,
  inputs: ViewInputs,
  window: TimeWindow,
): Promise<void> {
  const run = (sql: string) => connection.run(sql);
  const streams = new Map(inputs.streams.map((s) => [s.streamId, s]));
  const processBase = new Map(
    inputs.processes.map((p) => [p.processId, p.properties['dorsal.clock_base_ns']] as const),
  );
  const files: Cell[][] = [];
  for (const m of inputs.materialized) {
    for (const [file, streamId] of m.fileStreams) {
      const stream = streams.get(streamId);
      if (stream === undefined) continue;
      const base = stream.properties[RecordProperty.CLOCK_BASE_NS];
      const origin = processBase.get(stream.processId);
      const offset = base !== undefined && origin !== undefined ? Number(base) - Number(origin) : 0;
      files.push([file, streamId, stream.properties.thread ?? '', stream.properties.actor, offset]);
    }
  }
  await appendedTable(
    connection,
    '_instrumented_files',
    'file VARCHAR, stream_id VARCHAR, thread VARCHAR, actor VARCHAR, offset_ns DOUBLE',
    files,
  );
  const of = (view: string) => inputs.materialized.flatMap((m) => m.files.get(view) ?? []);
  /** The events of one raw table with their thread and times, or no row with the right columns. */
  const events = (view: string, columns: string, empty: string) => {
    const paths = of(view);
    if (paths.length === 0) return `SELECT ${empty} WHERE false`;
    return `SELECT r.process_id, f.stream_id, f.thread, f.actor, r.t + f.offset_ns AS time_ns, make_timestamp_ns(${sinceEpoch('r.t + f.offset_ns')}) AS time, ${columns} FROM ${processBranches(paths, (files) => `read_parquet(${files}, hive_partitioning = false, union_by_name = true, filename = true)`)} r JOIN _instrumented_files f ON f.file = r.filename LEFT JOIN processes p ON p.process_id = r.process_id`;
  };
  const common =
    'NULL::VARCHAR AS process_id, NULL::VARCHAR AS stream_id, NULL::VARCHAR AS thread, NULL::VARCHAR AS actor, NULL::DOUBLE AS time_ns, NULL::TIMESTAMP_NS AS time';
  const levels = LEVELS.map((name, i) => `WHEN ${i} THEN '${name}'`).join(' ');
  await run(
    `CREATE TEMP VIEW log_entries AS SELECT process_id, thread, actor, time_ns, time, CASE level ${levels} ELSE 'level ' || level END AS level, target, message, properties::JSON AS properties, span, (flags & 1) <> 0 AS properties_left_out, (flags & 2) <> 0 AS text_cut FROM (${events(
      '_log_events',
      'r.level, r.target, r.message, r.properties, r.span, r.flags',
      `${common}, NULL::UTINYINT AS level, NULL::VARCHAR AS target, NULL::VARCHAR AS message, NULL::VARCHAR AS properties, NULL::DOUBLE AS span, NULL::UTINYINT AS flags`,
    )}) e WHERE ${timeWithin('e', window)}`,
  );
  await run(
    `CREATE TEMP VIEW measures AS SELECT process_id, thread, actor, time_ns, time, name, unit, value, CASE kind WHEN 2 THEN 'integer' ELSE 'float' END AS kind, span FROM (${events(
      '_metric_events',
      'r.name, r.unit, r.value, r.kind, r.span',
      `${common}, NULL::VARCHAR AS name, NULL::VARCHAR AS unit, NULL::DOUBLE AS value, NULL::UTINYINT AS kind, NULL::DOUBLE AS span`,
    )}) e WHERE ${timeWithin('e', window)}`,
  );
  // A span is its begin joined with its end (by thread and id); one never ended has no end.
  await run(
    `CREATE TEMP VIEW thread_spans AS WITH e AS (${events(
      '_span_events',
      'r.id, r.parent, r.depth, r.kind, r.flags, r.name',
      `${common}, NULL::DOUBLE AS id, NULL::DOUBLE AS parent, NULL::USMALLINT AS depth, NULL::UTINYINT AS kind, NULL::UTINYINT AS flags, NULL::VARCHAR AS name`,
    )}) SELECT b.process_id, b.thread, b.actor, b.id AS span_id, nullif(b.parent, 0) AS parent_span_id, b.depth, b.name, b.time_ns AS begin_ns, x.time_ns AS end_ns, x.time_ns - b.time_ns AS duration_ns, b.time AS begin_time, b.kind = 3 AS async, coalesce((x.flags & 1) <> 0, false) AS closed_by_parent FROM e b LEFT JOIN e x ON x.stream_id = b.stream_id AND x.id = b.id AND x.kind IN (2, 4) WHERE b.kind IN (1, 3) AND ${timeWithin('b', window)}`,
  );
}

/** A window condition on an event's calendar time (`time`, TIMESTAMP_NS) of the relation named `alias`. */
function timeWithin(alias: string, window: TimeWindow): string {
  return windowCondition(`epoch_ns(${alias}.time)`, window);
}

/** `_actors(process_id, actor_id, actor)` and `_stream_names(process_id, stream_id, stream)`, from the processes' properties. */
async function createNameTables(
  connection: DuckDBConnection,
  processes: readonly ProcessRow[],
  streams: readonly StreamRow[],
): Promise<void> {
  const actors = new Map<string, Cell[]>();
  const names: Cell[][] = [];
  // Ids and names come from what clients sent (process and stream records): an id that is not
  // an actor id a record can hold names nothing; both are appended as values, never as SQL.
  for (const p of processes) {
    for (const a of parseList<{ id: unknown; name?: unknown } | null>(p.properties['dorsal.actors'])) {
      if (typeof a?.name === 'string' && isActorId(a.id))
        actors.set(`${p.processId}/${a.id}`, [p.processId, a.id, a.name]);
    }
    parseList<{ name?: unknown } | null>(p.properties['dorsal.spine']).forEach((s, i) => {
      if (typeof s?.name === 'string') names.push([p.processId, i, s.name]);
    });
  }
  // Actors spawned after the start are named by their timing stream.
  for (const s of streams) {
    const actorId = s.properties.actor_id === undefined ? Number.NaN : Number(s.properties.actor_id);
    if (isActorId(actorId) && s.properties.actor !== undefined) {
      actors.set(`${s.processId}/${actorId}`, [s.processId, actorId, s.properties.actor]);
    }
  }
  const columns = (id: string, name: string) => `process_id VARCHAR, ${id} INTEGER, ${name} VARCHAR`;
  await appendedTable(connection, '_actors', columns('actor_id', 'actor'), actors.values());
  await appendedTable(connection, '_stream_names', columns('stream_id', 'stream'), names);
}

/** An actor's id as records hold it (a USMALLINT): another names no actor, and is left out. */
function isActorId(id: unknown): id is number {
  return Number.isInteger(id) && (id as number) >= 0 && (id as number) <= 0xffff;
}

/** A JSON array held in a property, or none when it is missing or not an array. */
export function parseList<T>(json: string | undefined): T[] {
  if (json === undefined) return [];
  try {
    const value = JSON.parse(json) as unknown;
    return Array.isArray(value) ? (value as T[]) : [];
  } catch {
    return [];
  }
}

/**
 * Parquet files as one table (see `processBranches`). Files of one process share their columns
 * (one layout per stream), so their schema is read from one of them. `union`: unioned by name
 * within a process too (the blocks' coverage, whose files gained a column once).
 */
function parquet(paths: readonly string[], union = false): string {
  return processBranches(
    paths,
    (files) => `read_parquet(${files}, hive_partitioning = false${union ? ', union_by_name = true' : ''})`,
  );
}

/**
 * Partition files as one table with their process's id, one `read_parquet` per process: a
 * filter on `process_id` then drops the other processes' branches (their files are not opened),
 * as DuckDB's Hive partitioning did. Not that: it makes a column of every `key=value` folder of
 * the path, the cache directory's own included (a cache under `runs/price=1/` answered every
 * tick's price as 1), over the file's own column of that name. Files of one process share their
 * columns (one layout per stream); processes are unioned by name (a layout changed between runs).
 */
function processBranches(paths: readonly string[], read: (files: string) => string): string {
  const byProcess = new Map<string, string[]>();
  for (const path of paths) {
    // The folder a file is in: `…/process_id=ID/file.parquet`, whatever the folders above are named.
    const id = /process_id=([^/\\]+)[/\\][^/\\]*$/.exec(path)?.[1] ?? '';
    const files = byProcess.get(id);
    if (files === undefined) byProcess.set(id, [path]);
    else files.push(path);
  }
  const branches = [...byProcess].map(
    ([id, files]) => `SELECT *, ${text(id)} AS process_id FROM ${read(`[${files.map(text).join(', ')}]`)}`,
  );
  return `(${branches.join(' UNION ALL BY NAME ')})`;
}
