import { LayoutError } from '../errors.js';
import type { ByteRing } from '../queues/byte-ring.js';
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { printable } from './format.js';
import { ChunkWriter, smallestChunk } from './replay-chunk.js';
import { playOrderPages, playTimeOf, rowValue } from './replay-pages.js';
import type { Playlist } from './replay-recording.js';
import { CliError } from './source.js';

/** The ring between the main thread and the player, in bytes, unless told otherwise. */
export const RING_BYTES = 4 * 1024 * 1024;

/** A chunk's bytes at most: a thousand small messages, the unit the player holds. */
const CHUNK_BYTES = 64 * 1024;

/**
 * The longest the writer waits for room before it checks that the run still goes on: a player
 * that stopped reading (its thread crashed, the system stopped) never holds the main thread.
 */
const WAIT_MS = 50;

/**
 * Bytes per chunk for a playlist and a ring: `CHUNK_BYTES`, or a quarter of the ring if that is
 * less (the player plays a chunk while the next ones are written), or more for a message larger
 * than that. A message the ring cannot hold at all is a `CliError`, before anything runs.
 */
export function chunkBytesFor(playlist: Playlist, ring: ByteRing): number {
  const least = smallestChunk(playlist.layouts);
  const size = Math.max(least, Math.min(CHUNK_BYTES, ring.capacity / 4));
  if (size > ring.maxRecord) {
    const widest = playlist.layouts.reduce((a, b) => (b.size > a.size ? b : a));
    throw new CliError(
      `a message of stream '${printable(playlist.streams[playlist.layouts.indexOf(widest)]!)}' takes ${widest.size} bytes: more than the replay's ring of ${ring.capacity} bytes holds`,
    );
  }
  return Math.ceil(size / 8) * 8;
}

/** The error's own words. */
function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Reads the playlist in play order, a page at a time (the next page's query runs while this one
 * is written), and writes it into `ring` in chunks of `chunkBytes`: the main thread holds two
 * pages at most, whatever the length of the recording. Closes the ring after the last message
 * and resolves to the number written. Every wait for room is bounded, and stops (resolving to
 * what was written so far) once `running()` turns false. A recording that cannot be read, that
 * holds more or fewer messages than the counts said, or a value the replayed layout does not
 * take, rejects with a `CliError` saying so.
 */
export async function feedPlaylist(
  analytics: AnalyticsQuestions,
  playlist: Playlist,
  ring: ByteRing,
  chunkBytes: number,
  running: () => boolean,
): Promise<number> {
  const fields = playlist.layouts.map((l) => l.describe().fields);
  const chunk = new ChunkWriter(playlist.layouts, chunkBytes);
  let written = 0;
  // The pacing: each message's play time since the first finite one. A play time is -inf before
  // its stream's first timed publish time (a damaged recording, see `TimeSpan`): due at once.
  let first: number | undefined;
  const pacing = (t: number): number => {
    if (!Number.isFinite(t)) return 0;
    first ??= t;
    return t - first;
  };
  const send = async (): Promise<boolean> => {
    const bytes = chunk.filled();
    while (!ring.tryWrite(bytes)) {
      if (!running()) return false;
      await ring.roomFreed(WAIT_MS);
    }
    written += chunk.count;
    chunk.clear();
    return true;
  };
  const pages = playOrderPages(analytics, playlist);
  const read = (page: ReturnType<typeof pages.next>) =>
    page.catch((error: unknown) => {
      throw new CliError(
        `reading the ingress messages of process ${playlist.process} failed: ${printable(messageOf(error))}`,
      );
    });
  try {
    let coming = read(pages.next());
    for (;;) {
      const page = await coming;
      if (page.done || !running()) break;
      coming = read(pages.next());
      // Awaited on the next round; until then a failure would count as unhandled.
      coming.catch(() => {});
      for (const row of page.value) {
        const stream = Number(row[1]);
        const at = pacing(playTimeOf(row));
        if (written + chunk.count >= playlist.total) {
          throw new CliError(
            `process ${playlist.process}'s ingress streams hold more messages than the ${playlist.total} counted`,
          );
        }
        let value: object;
        try {
          value = rowValue(fields[stream]!, row);
          if (chunk.add(stream, at, value)) continue;
          if (!(await send())) return written;
          chunk.add(stream, at, value);
        } catch (error) {
          if (!(error instanceof LayoutError)) throw error;
          throw new CliError(
            `${printable(playlist.streams[stream]!)} #${String(row[2])} of process ${playlist.process} does not fit the replayed layout: ${printable(error.message)}`,
          );
        }
      }
    }
    if (!running() || (chunk.count > 0 && !(await send()))) return written;
    if (written !== playlist.total) {
      throw new CliError(
        `process ${playlist.process}'s ingress streams hold ${written} messages, not the ${playlist.total} counted`,
      );
    }
    ring.close();
    return written;
  } finally {
    // Ends the reading (after a query under way): nothing is left running against the analytics.
    await pages.return(undefined).catch(() => {});
  }
}
