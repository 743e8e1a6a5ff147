import { describe, expect, it } from 'vitest';
import {
  collectStringIds,
  createThreadBuffers,
  decodeStringEntries,
  encodeStringEntries,
  INSTRUMENTATION_STREAMS,
  Layout,
  LogEvent,
  MetricEvent,
  SpanEvent,
  StringEntry,
  span,
  ThreadBuffersReader,
} from '../../src/index.js';
import { viewsOf } from '../../src/queues/codec.js';
import { StringTableHeader } from '../../src/telemetry/instrumentation/string-table.js';
import { freshBuffers } from './fresh.js';

/** name:type@offset, for a compact comparison. */
const fields = (layout: Layout<object>) =>
  layout.describe().fields.map((f) => `${f.name}:${f.type}${f.bytes ? `(${f.bytes})` : ''}@${f.offset}`);

describe('the layouts a lake stream declares, and the shared-memory header', () => {
  it('each event layout is what readers decode by, offset by offset', () => {
    expect(LogEvent.size).toBe(184);
    expect(fields(LogEvent)).toEqual([
      't:f64@0',
      'span:f64@8',
      'value0:f64@16',
      'value1:f64@24',
      'value2:f64@32',
      'value3:f64@40',
      'target:u32@48',
      'template:u32@52',
      'key0:u32@56',
      'key1:u32@60',
      'key2:u32@64',
      'key3:u32@68',
      'text0:string(48)@72',
      'text1:string(48)@122',
      'level:u8@172',
      'flags:u8@173',
      'type0:u8@174',
      'type1:u8@175',
      'type2:u8@176',
      'type3:u8@177',
    ]);
    expect(MetricEvent.size).toBe(40);
    expect(fields(MetricEvent)).toEqual([
      't:f64@0',
      'value:f64@8',
      'span:f64@16',
      'name:u32@24',
      'unit:u32@28',
      'kind:u8@32',
    ]);
    expect(SpanEvent.size).toBe(32);
    expect(fields(SpanEvent)).toEqual([
      't:f64@0',
      'id:f64@8',
      'parent:f64@16',
      'name:u32@24',
      'depth:u16@28',
      'kind:u8@30',
      'flags:u8@31',
    ]);
    expect(StringEntry.size).toBe(256);
    expect(fields(StringEntry)).toEqual(['id:u32@0', 'text:string(250)@4']);
    expect(INSTRUMENTATION_STREAMS.map((s) => [s.name, s.tag, s.layout.name])).toEqual([
      ['logs', 'log', 'dorsal.LogEvent'],
      ['metrics', 'metrics', 'dorsal.MetricEvent'],
      ['spans', 'spans', 'dorsal.SpanEvent'],
    ]);
  });

  it('a layout rebuilt from its description alone decodes the same bytes', () => {
    for (const layout of [LogEvent, MetricEvent, SpanEvent, StringEntry] as Layout<object>[]) {
      const rebuilt = Layout.fromDescription(JSON.parse(JSON.stringify(layout.describe())));
      expect(rebuilt.fingerprint).toBe(layout.fingerprint);
    }
  });

  it('the string table header: constants in one place, lines apart', () => {
    expect(StringTableHeader).toEqual({
      MAGIC: 0,
      FORMAT: 1,
      MAX_STRINGS: 2,
      MAX_BYTES: 3,
      WRITER: 4,
      THREAD_ID: 5,
      CLOCK_BASE_F64: 4,
      COUNT: 16,
      DROPPED_STRING_LOGS: 17,
      DROPPED_STRING_METRICS: 18,
      DROPPED_STRING_SPANS: 19,
      DROPPED_DEPTH: 20,
      ENDS_BYTE: 128,
    });
    // The writer's counters sit on their own cache line, after line 0's constants.
    expect(StringTableHeader.COUNT * 4).toBe(64);
    expect(StringTableHeader.CLOCK_BASE_F64 * 8).toBeLessThan(64);
  });

  it('a descriptor survives a structured clone (a postMessage) with its memory shared', () => {
    const descriptor = createThreadBuffers({ name: 'posted', clockBaseNs: 12345 });
    const copy = structuredClone(descriptor);
    expect(copy).not.toBe(descriptor);
    new Uint8Array(copy.strings)[0xff] = 7;
    expect(new Uint8Array(descriptor.strings)[0xff]).toBe(7);
    const reader = ThreadBuffersReader.attach(copy);
    expect([reader.name, reader.clockBaseNs, reader.strings.clockBaseNs, reader.threadId]).toEqual([
      'posted',
      12345,
      12345,
      -1,
    ]);
  });

  it("a block's dependencies: the ids its events reference, shipped as string entries", () => {
    const fresh = freshBuffers();
    const strings = fresh.reader.strings;
    // Raw event bytes, laid end to end as a block holds them.
    const event = LogEvent.create();
    const bytes = new ArrayBuffer(2 * LogEvent.size);
    const codec = LogEvent.bind(viewsOf(bytes));
    Object.assign(event, { target: 3, template: 5, key0: 7 });
    codec.write(0, event);
    Object.assign(event, { target: 3, template: 9, key0: 0 });
    codec.write(LogEvent.size, event);
    const ids = new Set<number>();
    collectStringIds('logs', new Uint8Array(bytes), 2, ids);
    expect([...ids].sort((a, b) => a - b)).toEqual([0, 3, 5, 7, 9]);

    // Interned through the public API (a span's name), then shipped out of id order, repeated.
    const texts = ['', 'a', 'é€😀', 'x'.repeat(250)];
    for (const text of texts.slice(1)) span(text, () => undefined);
    const entries = encodeStringEntries(strings, [3, 1, 2, 0, 1]);
    expect(entries.length).toBe(4 * StringEntry.size);
    expect(decodeStringEntries(entries)).toEqual(new Map(texts.map((text, id) => [id, text])));
    expect(() => encodeStringEntries(strings, [99])).toThrow(/not in the table/);
  });
});
