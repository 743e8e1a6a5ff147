/** The style and the script every view page carries inline: a page needs no other file. */
import { duration } from './format.js';

export const STYLE = `
:root { font: 14px/1.4 system-ui, sans-serif; color: #222; background: #fafafa; }
body { margin: 0 auto; padding: 16px 24px 48px; max-width: 1280px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 14px; margin: 8px 0; } .dim, .note { color: #666; } .note { font-style: italic; } .warning { color: #8a3b00; background: #fff3e0; padding: 6px 10px; }
nav a { margin-right: 12px; } a { color: #2f6fbd; }
table { border-collapse: collapse; margin: 6px 0 12px; } th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #eee; white-space: nowrap; }
th:first-child, td:first-child, th.text, td.text { text-align: left; } th { background: #f0f0f0; font-weight: 600; }
.grid2 { display: flex; flex-wrap: wrap; gap: 12px 24px; } figure { margin: 0; }
figcaption { font-size: 12px; } .key { margin-right: 12px; white-space: nowrap; }
.key i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; }
svg { background: #fff; border: 1px solid #e4e4e4; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #333; } svg .tick { fill: #666; }
svg .axis { stroke: #999; } svg .grid { stroke: #eee; } svg .empty { text-anchor: middle; fill: #999; }
svg .bar { fill: #2f6fbd; } svg .mark { stroke: #b8434b; stroke-dasharray: 3 2; } svg .mark-label { fill: #b8434b; }
svg .line { fill: none; stroke-width: 1.5; }
.topology .edge path { fill: none; stroke: #888; stroke-width: 1.5; } .topology .edge.lossy path { stroke: #b8434b; stroke-width: 2.5; }
.topology .edge text { fill: #444; font-size: 10px; } .topology .edge.lossy text { fill: #b8434b; font-weight: 600; }
.topology .actor rect { fill: #e8f0fb; stroke: #2f6fbd; } .topology .stream rect { fill: #fdf1e4; stroke: #d9822b; }
.topology .lost { fill: #b8434b; font-size: 10px; }
.trees { display: flex; gap: 16px; align-items: flex-start; } .tree-list { margin: 0; padding-left: 22px; min-width: 280px; }
.tree-list button { border: 1px solid #ddd; background: #fff; padding: 3px 8px; margin: 2px 0; cursor: pointer; text-align: left; width: 100%; font: inherit; }
.tree-list button[aria-pressed="true"] { background: #e8f0fb; border-color: #2f6fbd; }
.timeline [data-kind="wait"], .key i.wait { fill: #f3c58f; background: #f3c58f; }
.timeline [data-kind="handler"], .key i.handler { fill: #2f6fbd; background: #2f6fbd; }
.timeline [data-kind="publish"], .key i.publish { fill: #555; background: #555; }
.timeline .row-label { font-size: 11px; } .legend { margin: 0 0 4px; font-size: 12px; }
.live { background: #fff; border: 1px solid #cfe0f5; padding: 8px 12px; } .live .value { font-variant-numeric: tabular-nums; }
.picker li { margin: 3px 0; }
.live svg polyline { fill: none; stroke-width: 1.5; } .live .rate { stroke: #2f6fbd; } .live .p99 { stroke: #b8434b; }
`;

/**
 * What the page does by itself: the slowest-trees list shows the tree clicked; a page with
 * `data-live` on its body listens to that URL's server-sent events and writes each second's
 * rates and percentiles into its live table.
 */
export const SCRIPT = `
(() => {
  for (const button of document.querySelectorAll('[data-tree]')) {
    button.addEventListener('click', () => {
      const chosen = button.getAttribute('data-tree');
      for (const b of document.querySelectorAll('[data-tree]')) b.setAttribute('aria-pressed', String(b === button));
      for (const view of document.querySelectorAll('[data-tree-view]')) view.hidden = view.getAttribute('data-tree-view') !== chosen;
    });
  }
  const live = document.body.getAttribute('data-live');
  if (!live) return;
  // The server's own \`duration\` (its source: self-contained), so that both write a time alike.
  const fmtNs = (ns) => !(ns >= 0) ? '—' : (${duration.toString()})(ns);
  const fmtN = (n) => Math.round(n).toLocaleString('en-US');
  const status = document.querySelector('[data-live-status]');
  const rates = document.querySelector('[data-live-rates]');
  const latency = document.querySelector('[data-live-latency]');
  const cell = (text, cls) => { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; };
  const fill = (body, rows) => { body.replaceChildren(...rows.map((cells) => { const tr = document.createElement('tr'); tr.append(...cells); return tr; })); };
  const events = new EventSource(live);
  let updates = 0;
  events.addEventListener('sample', (event) => {
    const sample = JSON.parse(event.data);
    updates++;
    document.body.setAttribute('data-live-updates', String(updates));
    status.textContent = sample.second === null ? 'waiting for the first second of data…' : 'second ' + sample.time + ' (updated ' + updates + ' times)';
    status.setAttribute('data-second', String(sample.second));
    fill(rates, sample.rates.map((r) => [cell(r.stream, 'text'), cell(fmtN(r.perSecond), 'value')]));
    fill(latency, sample.latency.map((r) => [cell(r.actor, 'text'), cell(r.stream, 'text'), cell(fmtN(r.count), 'value'), cell(fmtNs(r.p50), 'value'), cell(fmtNs(r.p99), 'value'), cell(fmtNs(r.max), 'value')]));
    const total = sample.rates.reduce((n, r) => n + r.perSecond, 0);
    const value = document.querySelector('[data-live-total]');
    value.textContent = fmtN(total);
    value.setAttribute('data-value', String(total));
    if (sample.second !== null && sample.second !== lastSecond) {
      lastSecond = sample.second;
      history.push({ total, p99: Math.max(0, ...sample.latency.map((r) => r.p99)) });
      if (history.length > 60) history.shift();
      draw();
    }
  });
  // The last minute of samples: messages/s (blue) and the worst p99 (red), each on its own scale.
  const history = [];
  let lastSecond = null;
  const draw = () => {
    const chart = document.querySelector('[data-live-chart]');
    const line = (key, selector) => {
      const peak = Math.max(1e-9, ...history.map((h) => h[key]));
      const points = history.map((h, i) => (i * 400 / 59).toFixed(1) + ',' + (76 - (h[key] / peak) * 72).toFixed(1)).join(' ');
      chart.querySelector(selector).setAttribute('points', points);
    };
    line('total', '.rate');
    line('p99', '.p99');
    chart.setAttribute('data-samples', String(history.length));
  };
  // The process has ended: its last second stays shown, and the browser does not reconnect.
  let ended = false;
  events.addEventListener('ended', (event) => {
    ended = true;
    events.close();
    const last = JSON.parse(event.data);
    status.textContent = 'the process has ended' + (last.time ? ': second ' + last.time + ' is the last one shown' : '');
    document.body.setAttribute('data-live-ended', 'true');
  });
  events.addEventListener('error', () => { if (!ended) status.textContent = 'disconnected; retrying…'; });
})();
`;
