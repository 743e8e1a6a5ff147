import { readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDirectories } from '../../directories.js';
import { decodeDropReport, encodeDropReport } from '../wire/index.js';

/** The kinds of records kept beside spooled blocks. */
export type MetaKind = 'process' | 'stream';

/** A process or stream record, encoded, as the spool keeps it (`meta/{kind}-{id}.cbor`). */
export interface MetaRecord {
  readonly id: string;
  readonly kind: MetaKind;
  readonly bytes: Uint8Array;
}

/** A spooled block: its file name and its encoded bytes. */
export interface SpoolEntry {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** A block to spool, with the ids of the records it needs. */
export interface SpoolBlock {
  readonly blockId: string;
  readonly processId: string;
  readonly streamId: string;
  readonly bytes: Uint8Array;
}

/** A drop report kept in the spool. */
interface KeptReport {
  readonly reportId: string;
  readonly processId: string;
  /**
   * Never handed to a transport (`drops-{id}.unsent.cbor`): its counts may still grow. Once a
   * report may have reached the lake they may not (the lake takes a report id once).
   */
  unsent: boolean;
}

const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
/** `{time}-{sequence}-{processId}-{streamId}-{blockId}.cbor`: the records a block needs, by name. */
const BLOCK_NAME = new RegExp(`^\\d+-\\d+-(${UUID})-(${UUID})-(?:${UUID})\\.cbor$`);
/** The block id at the end of a spooled block's name, as this version and the one before named it. */
const BLOCK_ID = new RegExp(`(?:^|-)(${UUID})\\.cbor$`);
const RECORD_NAME = /^(process|stream)-(.*)\.cbor$/;
const REPORT_NAME = /^drops-.*\.cbor$/;
const UNSENT = /\.unsent\.cbor$/;

/** The block id a spooled block's file name says (its name without `.cbor` if it says none). */
export function spooledBlockId(name: string): string {
  return BLOCK_ID.exec(name)?.[1] ?? name.replace(/\.cbor$/, '');
}

/**
 * A directory of encoded blocks waiting for ingestion to come back, plus the process and stream
 * records they need (`meta/{kind}-{id}.cbor`) and the drop reports not sent yet
 * (`meta/drops-{id}.cbor`), so that a later run can send what an earlier one could not. Files are
 * named by a time-ordered sequence, so the oldest is sent first. Everything counts in `maxBytes`,
 * records and reports as much as blocks: a program restarting in a loop while ingestion is down
 * wrote records and a report at every run, and filled the disk. One sink per directory at a time.
 */
export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  private bytes = 0;
  private readonly sizes = new Map<string, number>();
  /** Sizes of the records and reports held, by file name in `meta/`. */
  private readonly metaSizes = new Map<string, number>();
  private readonly kept = new Map<string, KeptReport>();
  private readonly pending: string[] = [];
  private readonly leased = new Set<string>();
  private sequence = 0;
  private readonly metaWritten = new Map<string, Promise<void>>();
  /** The reports read at open, until `reports` hands them over. */
  private opened: SpoolEntry[] = [];

  /**
   * Bytes blocks (with their records) may fill: the rest of `maxBytes` is kept for drop reports
   * and their process records, so that a spool full of blocks still keeps the count of those it
   * had to drop (one a block filled to the last byte counted them in the process alone).
   */
  private readonly blockLimit: number;

  private constructor(dir: string, maxBytes: number) {
    this.dir = dir;
    this.maxBytes = maxBytes;
    this.blockLimit = maxBytes - Math.min(REPORT_ROOM_BYTES, Math.floor(maxBytes / 8));
  }

  /** Opens (creating) a spool directory and indexes what it already holds. */
  static async open(dir: string, maxBytes: number): Promise<Spool> {
    const spool = new Spool(dir, maxBytes);
    await makeDirectories(join(dir, 'blocks'));
    await makeDirectories(join(dir, 'meta'));
    // A write cut short (the process died between the write and its rename) leaves a temp file
    // that nothing reads, counts or deletes: with one sink per directory, none is being written.
    for (const sub of ['blocks', 'meta']) {
      for (const name of await readdir(join(dir, sub))) {
        if (name.endsWith('.tmp')) await unlink(join(dir, sub, name)).catch(() => {});
      }
    }
    const names = (await readdir(join(dir, 'blocks'))).filter((n) => n.endsWith('.cbor')).sort();
    // The ids of the records still needed: a block's name says its process and stream, a report
    // its process (whose record the lake must have before it). A block named as earlier versions
    // named them says neither: every record is kept while one is left.
    const needed = new Set<string>();
    let unnamed = false;
    for (const name of names) {
      const size = (await stat(join(dir, 'blocks', name))).size;
      spool.sizes.set(name, size);
      spool.bytes += size;
      spool.pending.push(name);
      const ids = BLOCK_NAME.exec(name);
      if (ids === null) unnamed = true;
      else for (const id of ids.slice(1)) needed.add(id.toLowerCase());
    }
    const meta = (await readdir(join(dir, 'meta'))).sort();
    for (const name of meta.filter((n) => REPORT_NAME.test(n))) {
      const bytes = await readFile(join(dir, 'meta', name)).catch(() => undefined);
      if (bytes === undefined) continue;
      spool.metaSizes.set(name, bytes.length);
      spool.bytes += bytes.length;
      spool.opened.push({ name, bytes });
      try {
        const report = decodeDropReport(bytes);
        const processId = report.processId.toLowerCase();
        needed.add(processId);
        spool.kept.set(name, { reportId: report.reportId, processId, unsent: UNSENT.test(name) });
      } catch {
        // The sink deletes it, saying so, when it resumes the reports.
      }
    }
    // A record no block and no report needs is deleted, or every outage would leave its runs'
    // records for good. (Only here, before this sink writes any: a sweep later could take the
    // records of a block being spooled.)
    for (const name of meta) {
      const record = RECORD_NAME.exec(name);
      if (record === null) continue;
      const path = join(dir, 'meta', name);
      if (!unnamed && !needed.has((record[2] as string).toLowerCase())) {
        await unlink(path).catch(() => {});
        continue;
      }
      const size = await stat(path).then(
        (s) => s.size,
        () => undefined,
      );
      if (size === undefined) continue;
      spool.metaSizes.set(name, size);
      spool.bytes += size;
    }
    return spool;
  }

  /** Bytes held: blocks, the records they need and the drop reports kept. */
  get size(): number {
    return this.bytes;
  }

  /** Blocks held, leased ones included. */
  get count(): number {
    return this.sizes.size;
  }

  /** Blocks waiting to be taken. */
  get waiting(): number {
    return this.pending.length;
  }

  /** Whether this many bytes more fit. */
  fits(size: number): boolean {
    return this.bytes + size <= this.maxBytes;
  }

  /** A process or stream record, if held. */
  async getMeta(id: string): Promise<{ kind: MetaKind; bytes: Uint8Array } | undefined> {
    for (const kind of ['process', 'stream'] as const) {
      try {
        return { kind, bytes: await readFile(join(this.dir, 'meta', `${kind}-${id}.cbor`)) };
      } catch {
        // not this kind
      }
    }
    return undefined;
  }

  /**
   * Keeps a drop report that could not be sent, for a later run, with its process record (when
   * given and not held yet). One never handed to a transport (`sent` false) is added to a kept
   * report of its process that never was either, under that report's id: one file per process,
   * its counts the sum. One that was (it may have reached the lake) is kept as it is, under its
   * own id, so that the lake counts it once. Resolves false, keeping nothing, if it does not fit
   * in `maxBytes`.
   */
  async keepReport(bytes: Uint8Array, sent: boolean, record?: MetaRecord): Promise<boolean> {
    const report = decodeDropReport(bytes);
    const processId = report.processId.toLowerCase();
    const into = sent ? undefined : [...this.kept].find(([, k]) => k.unsent && k.processId === processId);
    if (into !== undefined) {
      const [name, kept] = into;
      const path = join(this.dir, 'meta', name);
      const counts: Record<string, number> = { ...decodeDropReport(await readFile(path)).counts };
      for (const [reason, count] of Object.entries(report.counts))
        counts[reason] = (counts[reason] ?? 0) + count;
      const merged = encodeDropReport({
        reportId: kept.reportId,
        processId: report.processId,
        time: report.time,
        counts,
      });
      const before = this.metaSizes.get(name) ?? 0;
      if (!this.fits(merged.length - before)) return false;
      this.resize(name, merged.length);
      try {
        // Renamed over the report it replaces: a crash leaves the one or the other, never both.
        await writeFile(`${path}.tmp`, merged);
        await rename(`${path}.tmp`, path);
      } catch (error) {
        this.resize(name, before);
        throw error;
      }
      return true;
    }
    const name = `drops-${report.reportId}${sent ? '' : '.unsent'}.cbor`;
    const recordNeeded = record !== undefined && !this.metaSizes.has(recordName(record));
    if (!this.fits(bytes.length + (recordNeeded ? (record?.bytes.length ?? 0) : 0))) return false;
    const writes = record === undefined ? [] : [this.putMeta(record)];
    this.resize(name, bytes.length);
    try {
      await Promise.all(writes);
      const path = join(this.dir, 'meta', name);
      await writeFile(`${path}.tmp`, bytes);
      await rename(`${path}.tmp`, path);
    } catch (error) {
      this.resize(name, undefined);
      throw error;
    }
    this.kept.set(name, { reportId: report.reportId, processId, unsent: !sent });
    return true;
  }

  /**
   * The drop reports kept by earlier runs, by file name (read at open: a later call has none).
   * Those sent already come first: while ingestion is down only the first is tried, and one never
   * sent stays one that later counts of its process can be added to.
   */
  async reports(): Promise<SpoolEntry[]> {
    const opened = this.opened;
    this.opened = [];
    return [...opened.filter((r) => !UNSENT.test(r.name)), ...opened.filter((r) => UNSENT.test(r.name))];
  }

  /**
   * Marks a kept report as handed to a transport, before it is: its counts may no longer grow
   * (should it reach the lake, a later run adding to it under its id would be counted short).
   * Returns its file name from now on.
   */
  async markSent(name: string): Promise<string> {
    const kept = this.kept.get(name);
    if (kept === undefined || !UNSENT.test(name)) return name;
    // At once, not after the rename: a report merged meanwhile would not be the one sent.
    kept.unsent = false;
    const sentName = name.replace(UNSENT, '.cbor');
    await rename(join(this.dir, 'meta', name), join(this.dir, 'meta', sentName));
    this.kept.delete(name);
    this.kept.set(sentName, kept);
    const size = this.metaSizes.get(name);
    this.metaSizes.delete(name);
    if (size !== undefined) this.metaSizes.set(sentName, size);
    return sentName;
  }

  /** Deletes a kept drop report once the lake has it. */
  async removeReport(name: string): Promise<void> {
    this.kept.delete(name);
    this.resize(name, undefined);
    await unlink(join(this.dir, 'meta', name)).catch(() => {});
  }

  /**
   * Adds a block with the process and stream records it needs (those not held yet are written
   * first), if they all fit in the room blocks have (`maxBytes` but the reports' share); resolves
   * false, writing nothing, if not. Written to a
   * temp name, then renamed; its name says which records it needs.
   */
  async put(block: SpoolBlock, records: readonly MetaRecord[]): Promise<boolean> {
    const missing = records.filter((r) => !this.metaSizes.has(recordName(r)));
    const needed = block.bytes.length + missing.reduce((sum, r) => sum + r.bytes.length, 0);
    if (this.bytes + needed > this.blockLimit) return false;
    this.sequence += 1;
    const stamp = `${Date.now().toString().padStart(15, '0')}-${this.sequence.toString().padStart(9, '0')}`;
    const name = `${stamp}-${block.processId.toLowerCase()}-${block.streamId.toLowerCase()}-${block.blockId}.cbor`;
    // Counted before the first wait: a block spooled meanwhile sees the room this one takes.
    const writes = records.map((r) => this.putMeta(r));
    this.bytes += block.bytes.length;
    this.sizes.set(name, block.bytes.length);
    try {
      // Every record write settled before a failure is told: none goes on after the sink closed.
      const failed = (await Promise.allSettled(writes)).find((w) => w.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      const path = join(this.dir, 'blocks', name);
      await writeFile(`${path}.tmp`, block.bytes);
      await rename(`${path}.tmp`, path);
    } catch (error) {
      this.forget(name);
      throw error;
    }
    this.pending.push(name);
    return true;
  }

  /** Takes the oldest waiting block; it stays on disk until `remove` or `release`. */
  async take(): Promise<SpoolEntry | undefined> {
    const name = this.pending.shift();
    if (name === undefined) return undefined;
    this.leased.add(name);
    try {
      return { name, bytes: await readFile(join(this.dir, 'blocks', name)) };
    } catch {
      this.forget(name);
      return this.take();
    }
  }

  /** Deletes a block that was sent (or rejected). */
  async remove(name: string): Promise<void> {
    this.forget(name);
    await unlink(join(this.dir, 'blocks', name)).catch(() => {});
  }

  /** Puts a taken block back, to be taken again later. */
  release(name: string): void {
    if (!this.leased.delete(name)) return;
    this.pending.unshift(name);
  }

  /**
   * Stores a process or stream record unless held (once per id; concurrent calls share one
   * write), counted from the call on.
   */
  private putMeta(record: MetaRecord): Promise<void> {
    const name = recordName(record);
    let written = this.metaWritten.get(name);
    if (written === undefined) {
      // Held since the spool was opened: the same record, kept for a block or report of before.
      if (this.metaSizes.has(name)) return Promise.resolve();
      this.resize(name, record.bytes.length);
      const path = join(this.dir, 'meta', name);
      written = writeFile(`${path}.tmp`, record.bytes).then(() => rename(`${path}.tmp`, path));
      written.catch(() => {
        this.metaWritten.delete(name);
        this.resize(name, undefined);
      });
      this.metaWritten.set(name, written);
    }
    return written;
  }

  /** Sets the size counted for a file in `meta/` (undefined: none held). */
  private resize(name: string, size: number | undefined): void {
    this.bytes -= this.metaSizes.get(name) ?? 0;
    if (size === undefined) this.metaSizes.delete(name);
    else {
      this.metaSizes.set(name, size);
      this.bytes += size;
    }
  }

  private forget(name: string): void {
    this.leased.delete(name);
    this.bytes -= this.sizes.get(name) ?? 0;
    this.sizes.delete(name);
  }
}

/** The room kept for drop reports at most (an eighth of a smaller spool): a report takes a few hundred bytes, its process record a few KiB. */
const REPORT_ROOM_BYTES = 1024 * 1024;

function recordName(record: MetaRecord): string {
  return `${record.kind}-${record.id}.cbor`;
}
