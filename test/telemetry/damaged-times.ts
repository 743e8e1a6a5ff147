import { join } from 'node:path';
import { Analytics } from '../../src/telemetry/analytics/analytics.js';
import { LocalPartitionStore } from '../../src/telemetry/analytics/local-partitions.js';
import { Lake } from '../../src/telemetry/lake/lake.js';
import type { BlockRow } from '../../src/telemetry/lake/types.js';
import {
  compressPart,
  decodePayloadBlob,
  decompressPart,
  encodePayloadBlob,
} from '../../src/telemetry/wire/payload.js';

/** The little-endian bytes of a float64. */
export function f64(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleLE(value);
  return bytes;
}

/**
 * Damages a recorded run's timing records in its stored blocks, as a client could send them: the
 * handler calls from the one after `from` on (by start time), one per value of `values`, get that value as
 * their `field` time. Returns how many records were rewritten and how many the run holds. Read
 * with partitions kept out of the lake: the damage would not reach partitions already made.
 */
export async function damageHandlerTimes(
  dir: string,
  field: 'start' | 'end',
  values: readonly number[],
  from = 10,
): Promise<{ damaged: number; timings: number }> {
  const probe = await Analytics.open({
    lake: { data: dir },
    cacheDir: join(dir, 'probe'),
    partitions: new LocalPartitionStore(join(dir, 'probe', 'partitions')),
  });
  const calls = (
    await probe.query(
      `SELECT start_t, end_t FROM timings ORDER BY start_t LIMIT ${values.length} OFFSET ${from}`,
    )
  ).rows.map((r) => [Number(r[0]), Number(r[1])] as const);
  const timings = Number((await probe.query('SELECT count(*) FROM timings')).rows[0]![0]);
  await probe.close();
  const lake = Lake.open({ data: dir });
  let damaged = 0;
  try {
    damaged = await patchRecords(lake, await lake.blocks(), (objects) => {
      let patched = 0;
      for (const [i, [start, end]] of calls.entries()) {
        // A record's start and end lie side by side.
        const at = objects.indexOf(Buffer.concat([f64(start), f64(end)]));
        if (at < 0) continue;
        f64(values[i]!).copy(objects, field === 'start' ? at : at + 8);
        patched++;
      }
      return patched;
    });
  } finally {
    await lake.close();
  }
  return { damaged, timings };
}

/**
 * Rewrites the records of `blocks` in their blobs, as a damaged recording has them: `patch` changes
 * a block's objects part in place and says how many records it changed (a block it changed none
 * of is left as it was). Returns how many it changed in all.
 */
export async function patchRecords(
  lake: Lake,
  blocks: readonly BlockRow[],
  patch: (objects: Buffer) => number,
): Promise<number> {
  let patched = 0;
  for (const block of blocks) {
    const parts = decodePayloadBlob(await lake.readBlob(block));
    const objects = Buffer.from(decompressPart(parts.objects, 'objects'));
    const changed = patch(objects);
    if (changed === 0) continue;
    patched += changed;
    await lake.blobs.replace(
      block.blobPath,
      encodePayloadBlob({ dependencies: parts.dependencies, objects: compressPart(objects) }),
    );
  }
  return patched;
}
