import { colour, count, duration, esc, seconds as secondsText, short } from './format.js';
import { BUCKETS_PER_DECADE, type LatencyDistribution, type TimeSeries } from './report-data.js';

const W = 560;
const H = 200;
const M = { left: 52, right: 12, top: 12, bottom: 28 };

/**
 * A latency histogram on a log-scale axis: one bar per bucket (`data-bucket`, `data-count`), the
 * p50 and p99 marked. Buckets are `BUCKETS_PER_DECADE` per decade of nanoseconds.
 */
export function latencyHistogram(d: LatencyDistribution): string {
  const buckets = d.histogram;
  const total = buckets.reduce((n, [, c]) => n + c, 0);
  const head = `<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" data-chart="latency" data-actor="${esc(d.actor)}" data-stream="${esc(d.stream)}" data-total="${total}" role="img" aria-label="latency of ${esc(d.actor)} on ${esc(d.stream)}">`;
  if (buckets.length === 0)
    return `${head}<text x="${W / 2}" y="${H / 2}" class="empty">no timing records</text></svg>`;
  const first = Math.floor(Math.min(...buckets.map(([b]) => b)) / BUCKETS_PER_DECADE) * BUCKETS_PER_DECADE;
  const last =
    Math.ceil((Math.max(...buckets.map(([b]) => b)) + 1) / BUCKETS_PER_DECADE) * BUCKETS_PER_DECADE;
  const span = Math.max(last - first, BUCKETS_PER_DECADE);
  const peak = Math.max(...buckets.map(([, c]) => c));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const x = (bucket: number) => M.left + ((bucket - first) / span) * plotW;
  const y = (c: number) => M.top + plotH - (c / peak) * plotH;
  const parts = [head, axes(plotW, plotH)];
  for (let decade = first; decade <= first + span; decade += BUCKETS_PER_DECADE) {
    const at = x(decade);
    parts.push(
      `<line class="grid" x1="${at}" y1="${M.top}" x2="${at}" y2="${M.top + plotH}"/><text class="tick" x="${at}" y="${H - 10}" text-anchor="middle">${esc(duration(10 ** (decade / BUCKETS_PER_DECADE)))}</text>`,
    );
  }
  parts.push(
    `<text class="tick" x="${M.left - 6}" y="${M.top + 8}" text-anchor="end">${esc(short(peak))}</text><text class="tick" x="${M.left - 6}" y="${M.top + plotH}" text-anchor="end">0</text>`,
  );
  const barW = Math.max(1, plotW / span - 1);
  for (const [bucket, c] of buckets) {
    const top = y(c);
    parts.push(
      `<rect class="bar" data-bucket="${bucket}" data-count="${c}" x="${x(bucket).toFixed(1)}" y="${top.toFixed(1)}" width="${barW.toFixed(1)}" height="${(M.top + plotH - top).toFixed(1)}"><title>${esc(duration(10 ** (bucket / BUCKETS_PER_DECADE)))} – ${esc(duration(10 ** ((bucket + 1) / BUCKETS_PER_DECADE)))}: ${count(c)}</title></rect>`,
    );
  }
  for (const [name, ns] of [
    ['p50', d.latency.p50],
    ['p99', d.latency.p99],
  ] as const) {
    if (!(ns > 0)) continue;
    const at = x(Math.log10(ns) * BUCKETS_PER_DECADE);
    parts.push(
      `<line class="mark" data-mark="${name}" x1="${at.toFixed(1)}" y1="${M.top}" x2="${at.toFixed(1)}" y2="${M.top + plotH}"/><text class="mark-label" x="${(at + 3).toFixed(1)}" y="${M.top + 10}">${name}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}

/** Options of `timeChart`. */
export interface TimeChartOptions {
  /** `data-chart` of the SVG. */
  readonly chart: string;
  /** Width of a bucket, in ns (the x axis is in seconds since the first bucket). */
  readonly bucketNs: number;
  /** How a value on the y axis reads. */
  readonly format?: (value: number) => string;
  /** Colour index of each series (default: its position). */
  readonly colourOf?: (name: string, i: number) => number;
}

/** Series over time as lines (one `path` per series, `data-series`, `data-points`), with a legend. */
export function timeChart(series: readonly TimeSeries[], options: TimeChartOptions): string {
  const format = options.format ?? short;
  const buckets = Math.max(1, ...series.map((s) => s.values.length));
  const values = series.flatMap((s) => s.values.filter(Number.isFinite));
  const low = Math.min(0, ...values);
  const high = Math.max(low + 1e-9, ...values);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const x = (i: number) => M.left + (buckets <= 1 ? 0 : (i / (buckets - 1)) * plotW);
  const y = (v: number) => M.top + plotH - ((v - low) / (high - low)) * plotH;
  const seconds = (buckets * options.bucketNs) / 1e9;
  const parts = [
    `<svg class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" data-chart="${esc(options.chart)}" data-series-count="${series.length}" role="img">`,
    axes(plotW, plotH),
    `<text class="tick" x="${M.left - 6}" y="${M.top + 8}" text-anchor="end">${esc(format(high))}</text>`,
    `<text class="tick" x="${M.left - 6}" y="${M.top + plotH}" text-anchor="end">${esc(format(low))}</text>`,
  ];
  for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
    const at = M.left + fraction * plotW;
    parts.push(
      `<text class="tick" x="${at}" y="${H - 10}" text-anchor="middle">${esc(secondsText(fraction * seconds))}</text>`,
    );
  }
  series.forEach((s, i) => {
    // A bucket without a value (a metric measured less often than buckets pass) is stepped over.
    let d = '';
    s.values.forEach((v, b) => {
      if (Number.isFinite(v)) d += `${d === '' ? 'M' : 'L'}${x(b).toFixed(1)},${y(v).toFixed(1)}`;
    });
    const points = s.values.filter(Number.isFinite).length;
    const c = colour(options.colourOf?.(s.name, i) ?? i);
    parts.push(
      `<path class="line" data-series="${esc(s.name)}" data-points="${points}" d="${d}" stroke="${c}"><title>${esc(s.name)}</title></path>`,
    );
  });
  parts.push('</svg>');
  const legend = series
    .map(
      (s, i) =>
        `<span class="key"><i style="background:${colour(options.colourOf?.(s.name, i) ?? i)}"></i>${esc(s.name)}</span>`,
    )
    .join('');
  return `<figure>${parts.join('')}<figcaption>${legend}</figcaption></figure>`;
}

/** Horizontal bars, one per row (`data-label`, `data-value`), longest first as given. */
export function barList(
  chart: string,
  rows: readonly { readonly label: string; readonly value: number; readonly text: string }[],
): string {
  const rowH = 20;
  const labelW = 180;
  const height = Math.max(rowH, rows.length * rowH) + 4;
  const peak = Math.max(1e-9, ...rows.map((r) => r.value));
  const parts = [
    `<svg class="chart" viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" data-chart="${esc(chart)}" role="img">`,
  ];
  rows.forEach((r, i) => {
    const width = Math.max(1, (r.value / peak) * (W - labelW - 90));
    const top = i * rowH + 2;
    parts.push(
      `<g data-label="${esc(r.label)}" data-value="${r.value}"><text class="tick" x="${labelW - 6}" y="${top + 14}" text-anchor="end">${esc(r.label.length > 28 ? `${r.label.slice(0, 27)}…` : r.label)}</text><rect class="bar" x="${labelW}" y="${top + 3}" width="${width.toFixed(1)}" height="${rowH - 6}" fill="${colour(i)}"/><text class="tick" x="${labelW + width + 4}" y="${top + 14}">${esc(r.text)}</text></g>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

function axes(plotW: number, plotH: number): string {
  return `<line class="axis" x1="${M.left}" y1="${M.top + plotH}" x2="${M.left + plotW}" y2="${M.top + plotH}"/><line class="axis" x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + plotH}"/>`;
}
