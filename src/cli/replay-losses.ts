/**
 * What a recording lost, as a replay says it: a replay plays what the lake holds, and its diff
 * compares with what the lake holds, so messages the recorded run lost make the replay and its
 * diff differ from the run, not from the system.
 */
import type { AnalyticsQuestions } from '../telemetry/analytics/questions.js';
import { count, counted, printable } from './format.js';
import { losses } from './trace-queries.js';

/** Messages of one spine stream that the recorded run lost. */
export interface RecordingLoss {
  readonly stream: string;
  /**
   * `persister`: missing from the recording (a replay cannot play an ingress one, and its diff
   * counts what the replay makes of another as replayed only); `actor`: the actor named by
   * `consumer` was lapped, and handled none of them in the recorded run (the replayed one may).
   */
  readonly countedBy: 'persister' | 'actor';
  readonly consumer: string;
  readonly lost: number;
}

/**
 * The losses of a recorded process's spine streams (`streams`: their names): the persister's
 * (poisoned and dropped included, as `dorsal trace` counts them), and its actors'. Timing records
 * and instrumentation an observer or the persister lost change nothing a replay plays or compares.
 */
export async function recordingLosses(
  analytics: AnalyticsQuestions,
  process: string,
  streams: ReadonlySet<string>,
): Promise<RecordingLoss[]> {
  const rows = await losses(analytics, process);
  return rows.flatMap((l): RecordingLoss[] => {
    // What the lake holds of neither is missing from the recording too.
    const missing = l.lost + l.dropped + l.unrecorded;
    if (l.countedBy === 'persister' && streams.has(l.stream) && missing > 0) {
      return [{ stream: l.stream, countedBy: 'persister', consumer: l.consumer, lost: missing }];
    }
    if (l.countedBy === 'actor' && l.lost > 0) {
      return [{ stream: l.stream, countedBy: 'actor', consumer: l.consumer, lost: l.lost }];
    }
    return [];
  });
}

/** One line per loss, said before the replay plays (`ingress`: the streams it plays). */
export function lossLines(lost: readonly RecordingLoss[], ingress: readonly string[]): string[] {
  return lost.map((l) => {
    const messages = counted(l.lost, 'message', 'messages');
    const stream = printable(l.stream);
    if (l.countedBy === 'actor') {
      return `${printable(l.consumer)} lost ${messages} of ${stream} in the recorded run (lapped): it handled none of them, and the replay may`;
    }
    return ingress.includes(l.stream)
      ? `the recording lacks ${messages} of ${stream}, lost by its persister: the replay cannot play them`
      : `the recording lacks ${messages} of ${stream}, lost by its persister: what the replay makes of them is replayed only`;
  });
}

/**
 * Said next to a diff's verdict when the recorded run lost messages: the recording is incomplete
 * only for what its persister lost; what its actors lost (lapped) is in the recording, handled by
 * none of them. Each counted apart: the same message may be lost by both.
 */
export function incompleteNote(lost: readonly RecordingLoss[]): string {
  const sum = (by: RecordingLoss['countedBy']) =>
    lost.filter((l) => l.countedBy === by).reduce((n, l) => n + l.lost, 0);
  const [persister, actors] = [sum('persister'), sum('actor')];
  const said = [
    ...(persister > 0
      ? [`the recording is incomplete (its persister lost ${count(persister)} messages)`]
      : []),
    ...(actors > 0 ? [`the recorded run's actors lost ${count(actors)} messages (lapped)`] : []),
  ];
  return `${said.join(', and ')}, said above: divergences may come from what was lost, not from the system`;
}
