import { barList, latencyHistogram, timeChart } from './charts.js';
import { count, duration, esc, short } from './format.js';
import { SCRIPT, STYLE } from './page-assets.js';
import type { ReportData } from './report-data.js';
import { slowestTrees } from './timeline.js';
import { topologySvg } from './topology.js';

/** How a report page links out and what it adds: the served page links processes and goes live. */
export interface ReportPageOptions {
  /** Where another process's view is (a replay's original); none in a file: the id is printed instead. */
  readonly processHref?: (processId: string) => string;
  /** Markup before the report (the served page's process picker link). */
  readonly before?: string;
  /** The server-sent events URL of the live view, for a served page. */
  readonly live?: string;
}

/** A whole HTML document: inline style and script, nothing fetched (a `data-live` page opens its event stream). */
export function htmlPage(title: string, body: string, live?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'self'">
<title>${esc(title)}</title><style>${STYLE}</style></head>
<body${live === undefined ? '' : ` data-live="${esc(live)}"`}>
${body}
<script>${SCRIPT}</script>
</body></html>
`;
}

/** The report of one recorded process as a self-contained HTML document. */
export function renderReport(data: ReportData, options: ReportPageOptions = {}): string {
  const p = data.process;
  const body = [
    options.before ?? '',
    `<h1>dorsal report: process <code>${esc(p.processId)}</code></h1>`,
    header(data, options),
    '<nav><a href="#topology">topology</a><a href="#latency">latency</a><a href="#over-time">over time</a><a href="#trees">slowest trees</a><a href="#instrumentation">instrumentation</a></nav>',
    options.live === undefined ? '' : liveSection(),
    p.replayOf === undefined
      ? ''
      : `<h2 id="divergences">Divergences from the recording</h2>${divergences(data)}`,
    `<h2 id="topology">Topology</h2>${topology(data)}`,
    `<h2 id="latency">Latency since the origin, per actor × stream</h2>${latency(data)}`,
    `<h2 id="over-time">Throughput and loss over time</h2>${overTime(data)}`,
    `<h2 id="trees">The slowest message trees</h2>${slowestTrees(data.slowest)}`,
    `<h2 id="instrumentation">Instrumentation</h2>${instrumentation(data)}`,
  ].join('\n');
  return htmlPage(`dorsal report ${p.processId}`, body, options.live);
}

function header(data: ReportData, options: ReportPageOptions): string {
  const p = data.process;
  const seconds = (data.time.endNs - data.time.beginNs) / 1e9;
  const messages = data.topology.produced.reduce((n, e) => n + e.count, 0);
  const over = data.time.spanned ? `over ${esc(duration(seconds * 1e9))}` : 'at one time';
  const lines = [
    `<p class="dim">${esc(p.exe)} · started ${esc(p.startTime)} · ${count(messages)} messages ${over}${p.properties['dorsal.system'] ? ` · system <code>${esc(p.properties['dorsal.system'])}</code>` : ''}</p>`,
  ];
  const { unreadable } = data;
  if (unreadable.blocks > 0) {
    lines.push(
      `<p class="warning" data-unreadable-blocks="${unreadable.blocks}">${count(unreadable.blocks)} block${unreadable.blocks === 1 ? '' : 's'} of this run did not read (a blob missing or damaged): ${count(unreadable.records)} records are in none of the figures below. ${unreadable.errors.map((e) => `<code>${esc(e)}</code>`).join(' ')}${unreadable.blocks > unreadable.errors.length ? ' … (<code>SELECT * FROM unreadable_blocks</code> lists them all)' : ''}</p>`,
    );
  }
  if (data.countsErrors.length > 0) {
    lines.push(
      `<p class="warning" data-counts-unreadable="${data.countsErrors.length}">The run's counts (what its actors counted lost, kept at its stop) did not read: the lost column below is unknown, not none. ${data.countsErrors.map((e) => `<code>${esc(e)}</code>`).join(' ')}</p>`,
    );
  }
  if (data.untimed > 0) {
    lines.push(
      `<p class="warning" data-untimed="${data.untimed}">${count(data.untimed)} timing record${data.untimed === 1 ? '' : 's'} of this run ${data.untimed === 1 ? 'has' : 'have'} a time that is not a number (NaN or infinite: the recording is damaged there): ${data.untimed === 1 ? 'it is' : 'they are'} in none of the latency figures below.</p>`,
    );
  }
  if (data.offAxis > 0) {
    lines.push(
      `<p class="warning" data-off-axis="${data.offAxis}">${count(data.offAxis)} message${data.offAxis === 1 ? '' : 's'} of this run ${data.offAxis === 1 ? 'has' : 'have'} a publish time outside the times of its blocks, or one that is not a number (the recording is damaged there): ${data.offAxis === 1 ? 'it is' : 'they are'} in none of the figures over time.</p>`,
    );
  }
  if (p.replayOf !== undefined) {
    const original =
      options.processHref !== undefined && p.originalInLake
        ? `<a data-replay-of="${esc(p.replayOf)}" href="${esc(options.processHref(p.replayOf))}">${esc(p.replayOf)}</a>`
        : `<code data-replay-of="${esc(p.replayOf)}">${esc(p.replayOf)}</code>${p.originalInLake ? ` (<code>dorsal report --process ${esc(p.replayOf)}</code>)` : ' (not in this lake)'}`;
    lines.push(
      `<p class="replay">A replay of ${original}: its <a href="#divergences">divergences</a> from it.</p>`,
    );
  }
  return lines.join('');
}

function value(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A replay's diff as `dorsal replay --diff` kept it: the per-stream table, then the first divergences. */
function divergences(data: ReportData): string {
  const d = data.process.diff;
  if (d === undefined) {
    return '<p class="note" data-divergences="absent">No diff of this replay is in the lake: it was replayed without <code>--diff</code> (or by a dorsal that did not keep diffs). <code>dorsal replay --diff</code> compares, and keeps what it finds here.</p>';
  }
  if (d.error !== undefined) {
    return `<p class="note" data-divergences="unreadable">The diff of this replay is in the lake but does not read: ${esc(d.error)}</p>`;
  }
  const streams = `<table data-table="diff-streams"><thead><tr><th class="text">stream</th><th>matched</th><th>differing</th><th>only recorded</th><th>only replayed</th></tr></thead><tbody>${d.streams
    .map(
      (s) =>
        `<tr data-stream="${esc(s.stream)}" data-matched="${s.matched}" data-differing="${s.differing}" data-only-recorded="${s.onlyRecorded}" data-only-replayed="${s.onlyReplayed}"><td class="text">${esc(s.stream)}</td><td>${count(s.matched)}</td><td>${count(s.differing)}</td><td>${count(s.onlyRecorded)}</td><td>${count(s.onlyReplayed)}</td></tr>`,
    )
    .join('')}</tbody></table>`;
  if (d.diverged === 0) {
    return `<p class="note" data-divergences="0">No divergence: every message is at the same place in the tree, with the same fields, in the recording and the replay.</p>${streams}`;
  }
  const side = (seq: number | null) => (seq === null ? '—' : `#${seq}`);
  const kind = (k: string) =>
    k === 'differs' ? 'differs' : k === 'only-recorded' ? 'recorded only' : 'replayed only';
  const items = d.divergences
    .map(
      (v, i) =>
        `<li data-divergence="${i + 1}" data-kind="${esc(v.kind)}" data-stream="${esc(v.stream)}"><b>${esc(v.stream)}</b> ${esc(kind(v.kind))} · recorded ${esc(side(v.recordedSeq))}, replayed ${esc(side(v.replayedSeq))} <span class="dim">at <code>${esc(v.place)}</code></span>${
          v.fields.length === 0
            ? ''
            : `<table data-table="diff-fields"><thead><tr><th class="text">field</th><th class="text">recorded</th><th class="text">replayed</th></tr></thead><tbody>${v.fields
                .map(
                  (f) =>
                    `<tr data-field="${esc(f.field)}"><td class="text">${esc(f.field)}</td><td class="text">${esc(value(f.recorded))}</td><td class="text">${esc(value(f.replayed))}</td></tr>`,
                )
                .join('')}</tbody></table>`
        }</li>`,
    )
    .join('');
  const shown = d.divergences.length;
  return `<p data-divergences="${d.diverged}">${count(d.diverged)} message${d.diverged === 1 ? '' : 's'} diverged${shown < d.diverged ? ` (the first ${count(shown)} below; <code>--divergences N</code> keeps more)` : ''}.</p>${streams}${shown === 0 ? '' : `<ol class="divergences">${items}</ol>`}`;
}

function liveSection(): string {
  return `<section class="live" id="live"><h2>Live</h2><p><span data-live-status>connecting…</span> · total <b class="value" data-live-total>—</b> messages/s</p>
<div class="grid2"><table><thead><tr><th>stream</th><th>messages/s</th></tr></thead><tbody data-live-rates></tbody></table>
<table><thead><tr><th>actor</th><th class="text">stream</th><th>handled</th><th>p50</th><th>p99</th><th>max</th></tr></thead><tbody data-live-latency></tbody></table>
<figure><svg data-live-chart data-samples="0" viewBox="0 0 400 80" width="400" height="80" role="img" aria-label="the last minute"><polyline class="rate" points=""/><polyline class="p99" points=""/></svg><figcaption><span class="key"><i style="background:#2f6fbd"></i>messages/s</span><span class="key"><i style="background:#b8434b"></i>worst p99</span> over the last minute</figcaption></figure></div></section>`;
}

function topology(data: ReportData): string {
  const { produced, consumed } = data.topology;
  if (produced.length + consumed.length === 0) return '<p class="note">No message recorded.</p>';
  const seconds = (data.time.endNs - data.time.beginNs) / 1e9;
  // A run of one time tells no rate (one message over the axis' 1 ns was 1 G/s).
  const rate = (n: number) => (data.time.spanned ? short(n / seconds) : '—');
  const rows = [
    ...produced.map((e) => [e.actor, 'publishes', e.stream, count(e.count), rate(e.count), '', '']),
    ...consumed.map((e) => [
      e.actor,
      'handles',
      e.stream,
      count(e.count),
      rate(e.count),
      count(e.gaps),
      e.lapped === null ? '' : count(e.lapped),
    ]),
  ];
  const lost = data.topology.persister.filter((l) => l.lost + l.dropped + l.unrecorded > 0);
  return `${topologySvg(data)}
<table data-table="edges"><thead><tr><th>actor</th><th class="text"></th><th class="text">stream</th><th>messages</th><th>mean /s</th><th>skipped</th><th>lost</th></tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => `<td${i < 3 ? ' class="text"' : ''}>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>
<p class="note">Skipped: sequences missing between the first and last an actor handled (the actor was lapped, or its timing records were lost). Lost: what the actor's own consumer counted as lost, lapped or poisoned (kept in the lake at the run's stop). ${
    lost.length === 0
      ? 'The persister lost nothing.'
      : `Of what the persister was to record, ${lost
          .map(
            (l) =>
              `${esc(l.stream)}: ${[
                l.lost + l.dropped > 0 ? `${count(l.lost + l.dropped)} lost` : '',
                l.unrecorded > 0
                  ? `${count(l.unrecorded)} neither in the lake nor counted lost (lost on their way with their count, or deleted by retention)`
                  : '',
              ]
                .filter((part) => part !== '')
                .join(', ')}`,
          )
          .join('; ')}.`
  }</p>`;
}

function latency(data: ReportData): string {
  if (data.latency.length === 0) return '<p class="note">No timing record.</p>';
  const rows = data.latency
    .map(
      (d) =>
        `<tr data-actor="${esc(d.actor)}" data-stream="${esc(d.stream)}" data-count="${d.count}"><td>${esc(d.actor)}</td><td class="text">${esc(d.stream)}</td><td>${count(d.count)}</td>${[d.latency.p50, d.latency.p90, d.latency.p99, d.latency.p999, d.latency.max, d.processing.p50, d.processing.p99, d.processing.max].map((ns) => `<td>${esc(duration(ns))}</td>`).join('')}</tr>`,
    )
    .join('');
  const charts = data.latency
    .map(
      (d) =>
        `<figure>${latencyHistogram(d)}<figcaption>${esc(d.actor)} ← ${esc(d.stream)} (log scale)</figcaption></figure>`,
    )
    .join('');
  return `<table data-table="percentiles"><thead><tr><th>actor</th><th class="text">stream</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>handler p50</th><th>handler p99</th><th>handler max</th></tr></thead><tbody>${rows}</tbody></table><div class="grid2">${charts}</div>`;
}

function overTime(data: ReportData): string {
  const bucket = duration(data.time.bucketNs);
  const streams = data.topology.streams;
  const throughput =
    data.throughput.length === 0
      ? '<p class="note">No message recorded.</p>'
      : `<figure>${timeChart(data.throughput, { chart: 'throughput', bucketNs: data.time.bucketNs, colourOf: (name, i) => (streams.includes(name) ? streams.indexOf(name) : i) })}<figcaption>messages/s per stream, in ${esc(bucket)} buckets</figcaption></figure>`;
  const gaps =
    data.gaps.length === 0
      ? '<p class="note" data-chart="gaps" data-series-count="0">No actor skipped a sequence.</p>'
      : `<figure>${timeChart(data.gaps, { chart: 'gaps', bucketNs: data.time.bucketNs })}<figcaption>sequences skipped per ${esc(bucket)}, per actor ← stream</figcaption></figure>`;
  return `<div class="grid2">${throughput}${gaps}</div>`;
}

function instrumentation(data: ReportData): string {
  const { levels, topLogs, metrics, spans } = data.instrumentation;
  const parts: string[] = ['<h3>Log entries by level</h3>'];
  parts.push(
    levels.length === 0
      ? '<p class="note">No log entry.</p>'
      : barList(
          'log-levels',
          levels.map((l) => ({ label: l.level, value: l.count, text: count(l.count) })),
        ),
  );
  if (topLogs.length > 0) {
    parts.push(
      `<table data-table="logs"><thead><tr><th>level</th><th class="text">target</th><th class="text">message</th><th>count</th></tr></thead><tbody>${topLogs
        .map(
          (l) =>
            `<tr><td>${esc(l.level)}</td><td class="text">${esc(l.target)}</td><td class="text">${esc(l.message)}</td><td>${count(l.count)}</td></tr>`,
        )
        .join('')}</tbody></table>`,
    );
  }
  parts.push('<h3>Metrics</h3>');
  parts.push(
    metrics.length === 0
      ? '<p class="note">No metric.</p>'
      : `<div class="grid2">${metrics
          .map(
            (m) =>
              `<figure data-metric="${esc(m.name)}" data-source="${esc(m.source)}">${timeChart(
                [
                  { name: 'mean', values: m.mean },
                  { name: 'min', values: m.min },
                  { name: 'max', values: m.max },
                ],
                { chart: `metric:${m.name}:${m.source}`, bucketNs: data.time.bucketNs },
              )}<figcaption>${esc(m.name)}${m.unit ? ` (${esc(m.unit)})` : ''}${m.source ? ` by ${esc(m.source)}` : ''}: ${count(m.count)} measures</figcaption></figure>`,
          )
          .join('')}</div>`,
  );
  parts.push('<h3>Heaviest spans</h3>');
  parts.push(
    spans.length === 0
      ? '<p class="note">No span.</p>'
      : `${barList(
          'spans',
          spans.map((s) => ({
            label: s.name,
            value: s.totalNs,
            text: `${duration(s.totalNs)} in ${count(s.count)}`,
          })),
        )}<table data-table="spans"><thead><tr><th>span</th><th>count</th><th>total</th><th>p99</th><th>max</th></tr></thead><tbody>${spans
          .map(
            (s) =>
              `<tr><td>${esc(s.name)}</td><td>${count(s.count)}</td><td>${esc(duration(s.totalNs))}</td><td>${esc(duration(s.p99Ns))}</td><td>${esc(duration(s.maxNs))}</td></tr>`,
          )
          .join('')}</tbody></table>`,
  );
  return parts.join('');
}
