import { threadWriter } from './binding.js';
import { MetricKind } from './events.js';

/**
 * Records a float measure of `name` in `unit` (both interned: keep them static) in this thread's
 * metrics queue.
 *
 * @example
 * metric('book.depth', 42, 'levels');
 * metric('fill.ratio', 0.75);
 */
export function metric(name: string, value: number, unit = ''): void {
  writeMetric(name, value, unit, MetricKind.FLOAT);
}

/** Records an integer measure; a fractional value is truncated toward zero. Exact up to 2^53. */
export function intMetric(name: string, value: number, unit = ''): void {
  writeMetric(name, Math.trunc(value), unit, MetricKind.INTEGER);
}

function writeMetric(name: string, value: number, unit: string, kind: number): void {
  const writer = threadWriter();
  const strings = writer.strings;
  const nameId = writer.metricName.of(strings, name);
  const unitId = writer.metricUnit.of(strings, unit);
  if (nameId < 0 || unitId < 0) {
    strings.countDroppedForString('metrics');
    return;
  }
  const out = writer.metricOut;
  out.t = writer.clock.now();
  // A value of another type from untyped code becomes a number (NaN at worst): never a throw.
  out.value = typeof value === 'number' ? value : Number(value);
  out.span = writer.currentSpan();
  out.name = nameId;
  out.unit = unitId;
  out.kind = kind;
  writer.metrics.publish(out);
}
