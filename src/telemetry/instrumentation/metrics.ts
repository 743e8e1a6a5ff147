import { threadWriter } from './binding.js';
import { MetricEvent, MetricKind } from './events.js';

const T = MetricEvent.offsetOf('t');
const VALUE = MetricEvent.offsetOf('value');
const SPAN = MetricEvent.offsetOf('span');
const NAME = MetricEvent.offsetOf('name');
const UNIT = MetricEvent.offsetOf('unit');
const KIND = MetricEvent.offsetOf('kind');

/**
 * Why `metric` is split in two, and why the writer is called through a variable.
 *
 * A float handed to a function that V8 does not inline is boxed by the caller: a fresh 16-byte
 * HeapNumber per call, whatever the callee does with it. So `metric` allocates nothing only where
 * its caller's optimized code inlines it, and V8 decides that on `metric`'s size: its bytecode plus
 * what its own optimized code inlined. `metric` is small, so V8 optimizes it early on its own (as
 * soon as a loop calls it), and if that code had inlined the writer below (interning, the clock,
 * the seqlock publish: ~900 bytes of bytecode), every caller optimized afterwards would refuse to
 * inline it (the cumulative budget is 920) and box the value at every call. That was the flaky
 * `metric` of the garbage test (8 bytes per call: a HeapNumber for every odd `i * 0.5`), in the
 * runs where `metric` was optimized before the test's arrow that calls it.
 *
 * Hence: `metric` stores the value into `staged` (a Float64Array: no box, and no field whose
 * representation a string from untyped code could widen) and then calls the writer, which takes
 * no float and reads the value back. `metric` is 25 bytes of bytecode and its optimized code
 * inlines nothing, under V8's "small function" limit (27: bytecode plus inlined bytecode), which
 * every optimized caller inlines whatever else competes for its budget. The writer is called
 * through a variable that holds one function for the first call and another ever after: that call
 * site in `metric` sees two functions and goes megamorphic, and V8 inlines nothing at a megamorphic
 * call site, so `metric`'s own optimized code stays small however V8 tiers it. Keep `metric` and
 * `intMetric` that small (`node --print-bytecode --print-bytecode-filter=metric`), and do not call
 * the writers directly from them.
 *
 * Each thread loads its own instance of this module: `staged` is the thread's own, and the writer
 * reads it before anything else can record a metric.
 */
const staged = new Float64Array(1);

/** Writes the staged value as a metric of one kind; takes no float, so calling it boxes nothing. */
type StagedWriter = (name: string, unit: string | undefined) => void;

let writeStagedFloat: StagedWriter = (name, unit) => {
  // The second function this variable holds: see the note above.
  writeStagedFloat = writeFloat;
  writeFloat(name, unit);
};

let writeStagedInteger: StagedWriter = (name, unit) => {
  // The second function this variable holds: see the note above.
  writeStagedInteger = writeInteger;
  writeInteger(name, unit);
};

/**
 * Records a float measure of `name` in `unit` (both interned: keep them static; the unit
 * defaults to '') in this thread's metrics queue. A value of another type from untyped code
 * becomes a number as a Float64Array makes it (`Number(value)`; NaN at worst), and a BigInt or a
 * Symbol throws a TypeError.
 *
 * @example
 * metric('book.depth', 42, 'levels');
 * metric('fill.ratio', 0.75);
 */
export function metric(name: string, value: number, unit?: string): void {
  staged[0] = value;
  writeStagedFloat(name, unit);
}

/**
 * Records an integer measure; a fractional value is truncated toward zero. Exact up to 2^53.
 * Other types as in `metric`.
 */
export function intMetric(name: string, value: number, unit?: string): void {
  staged[0] = value;
  writeStagedInteger(name, unit);
}

function writeFloat(name: string, unit: string | undefined): void {
  writeStaged(name, unit, MetricKind.FLOAT);
}

function writeInteger(name: string, unit: string | undefined): void {
  writeStaged(name, unit, MetricKind.INTEGER);
}

function writeStaged(name: string, unit: string | undefined, kind: number): void {
  const writer = threadWriter();
  // The staged value first, before any other work of the writer.
  const value = kind === MetricKind.FLOAT ? staged[0]! : Math.trunc(staged[0]!);
  const strings = writer.strings;
  const nameId = writer.metricName.of(strings, name);
  const unitId = writer.metricUnit.of(strings, unit === undefined ? '' : unit);
  if (nameId < 0 || unitId < 0) {
    strings.countDroppedForString('metrics');
    return;
  }
  // In place: nothing between the claim and the commit can throw.
  const views = writer.metricViews;
  const at = writer.metrics.claim();
  views.f64[(at + T) >> 3] = writer.clock.now();
  views.f64[(at + VALUE) >> 3] = value;
  views.f64[(at + SPAN) >> 3] = writer.currentSpan();
  views.u32[(at + NAME) >> 2] = nameId;
  views.u32[(at + UNIT) >> 2] = unitId;
  views.u8[at + KIND] = kind;
  writer.metrics.commit();
}
