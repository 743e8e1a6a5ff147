import { esc } from './format.js';

/** A recorded process as the picker lists it. */
export interface PickedProcess {
  readonly processId: string;
  readonly exe: string;
  readonly startTime: string;
  readonly replayOf: string | null;
}

/** The served page's process picker: every recorded process, newest first, the shown one marked. */
export function processPicker(
  processes: readonly PickedProcess[],
  shown: string | undefined,
  href: (id: string) => string,
): string {
  if (processes.length === 0) {
    return '<p class="note" data-picker="empty">This lake holds no recorded process yet: run one with <code>dorsal run MODULE --url …</code>.</p>';
  }
  const items = processes
    .map(
      (p) =>
        `<li data-process="${esc(p.processId)}"${p.processId === shown ? ' aria-current="page"' : ''}><a href="${esc(href(p.processId))}"><code>${esc(p.processId)}</code></a> <span class="dim">${esc(p.startTime)} · ${esc(p.exe)}${p.replayOf === null ? '' : ` · replay of ${esc(p.replayOf)}`}</span></li>`,
    )
    .join('');
  return `<details class="picker"${shown === undefined ? ' open' : ''}><summary>${processes.length} recorded process${processes.length === 1 ? '' : 'es'} (pick one)</summary><ol>${items}</ol></details>`;
}
