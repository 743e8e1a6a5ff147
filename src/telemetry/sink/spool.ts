import { readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDirectories } from '../../directories.js';

/** The kinds of records kept beside spooled blocks. */
export type MetaKind = 'process' | 'stream';

/** A spooled block: its file name and its encoded bytes. */
export interface SpoolEntry {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/**
 * A directory of encoded blocks waiting for ingestion to come back, plus the process and stream
 * records they need (`meta/{kind}-{id}.cbor`) and the drop reports not sent yet
 * (`meta/drops-{id}.cbor`), so that a later run can send what an earlier one could not. Files are named by a time-ordered sequence, so the oldest is sent first. One sink per
 * directory at a time.
 */
export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  private bytes = 0;
  private readonly sizes = new Map<string, number>();
  private readonly pending: string[] = [];
  private readonly leased = new Set<string>();
  private sequence = 0;
  private readonly metaWritten = new Map<string, Promise<void>>();

  private constructor(dir: string, maxBytes: number) {
    this.dir = dir;
    this.maxBytes = maxBytes;
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
    for (const name of names) {
      const size = (await stat(join(dir, 'blocks', name))).size;
      spool.sizes.set(name, size);
      spool.bytes += size;
      spool.pending.push(name);
    }
    // With no block and no drop report left, no process or stream record is needed any more:
    // deleted, or every outage would leave its runs' records for good. (Only here, before this
    // sink writes any: a sweep later could take the records of a block being spooled.)
    const meta = await readdir(join(dir, 'meta'));
    if (names.length === 0 && !meta.some((n) => n.startsWith('drops-'))) {
      for (const name of meta) {
        if (/^(process|stream)-.*\.cbor$/.test(name)) await unlink(join(dir, 'meta', name)).catch(() => {});
      }
    }
    return spool;
  }

  /** Bytes of blocks held. */
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

  /** Whether a block of this size fits. */
  fits(size: number): boolean {
    return this.bytes + size <= this.maxBytes;
  }

  /** Stores a process or stream record (once per id and run; concurrent calls share one write). */
  putMeta(id: string, kind: MetaKind, bytes: Uint8Array): Promise<void> {
    let written = this.metaWritten.get(id);
    if (written === undefined) {
      const path = join(this.dir, 'meta', `${kind}-${id}.cbor`);
      written = writeFile(`${path}.tmp`, bytes).then(() => rename(`${path}.tmp`, path));
      written.catch(() => this.metaWritten.delete(id));
      this.metaWritten.set(id, written);
    }
    return written;
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

  /** Keeps a drop report that could not be sent (`meta/drops-{id}.cbor`), for a later run. */
  async putReport(reportId: string, bytes: Uint8Array): Promise<void> {
    const path = join(this.dir, 'meta', `drops-${reportId}.cbor`);
    await writeFile(`${path}.tmp`, bytes);
    await rename(`${path}.tmp`, path);
  }

  /** The drop reports kept by earlier runs, by file name. */
  async reports(): Promise<SpoolEntry[]> {
    const names = (await readdir(join(this.dir, 'meta'))).filter((n) => /^drops-.*\.cbor$/.test(n)).sort();
    return Promise.all(
      names.map(async (name) => ({ name, bytes: await readFile(join(this.dir, 'meta', name)) })),
    );
  }

  /** Deletes a kept drop report once the lake has it. */
  async removeReport(name: string): Promise<void> {
    await unlink(join(this.dir, 'meta', name)).catch(() => {});
  }

  /** Adds a block (the caller checked `fits`); written to a temp name, then renamed. */
  async put(blockId: string, bytes: Uint8Array): Promise<void> {
    this.sequence += 1;
    const stamp = `${Date.now().toString().padStart(15, '0')}-${this.sequence.toString().padStart(9, '0')}`;
    const name = `${stamp}-${blockId}.cbor`;
    this.bytes += bytes.length;
    this.sizes.set(name, bytes.length);
    try {
      const path = join(this.dir, 'blocks', name);
      await writeFile(`${path}.tmp`, bytes);
      await rename(`${path}.tmp`, path);
    } catch (error) {
      this.forget(name);
      throw error;
    }
    this.pending.push(name);
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

  private forget(name: string): void {
    this.leased.delete(name);
    this.bytes -= this.sizes.get(name) ?? 0;
    this.sizes.delete(name);
  }
}
