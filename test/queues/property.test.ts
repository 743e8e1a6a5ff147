import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defineMessage, type FieldSpec, SeqlockQueue } from '../../src/index.js';

type Spec = FieldSpec;
const scalarTypes = ['f64', 'f32', 'i8', 'u8', 'i16', 'u16', 'i32', 'u32', 'i64', 'u64', 'bool'] as const;

const fieldSpec: fc.Arbitrary<Spec> = fc.oneof(
  fc.constantFrom(...scalarTypes),
  fc.record({
    type: fc.constantFrom('string' as const, 'bytes' as const),
    bytes: fc.integer({ min: 1, max: 40 }),
  }),
);

const layoutSpec = fc
  .dictionary(fc.stringMatching(/^[a-z][a-zA-Z0-9_]{0,8}$/), fieldSpec, { minKeys: 1, maxKeys: 12 })
  // Names that differ in case only are refused (they would be one column in the lake's SQL).
  .filter(
    (spec) => new Set(Object.keys(spec).map((name) => name.toLowerCase())).size === Object.keys(spec).length,
  );

function arbitraryValue(spec: Spec): fc.Arbitrary<unknown> {
  const type = typeof spec === 'string' ? spec : spec.type;
  switch (type) {
    case 'f64':
      return fc.double();
    case 'f32':
      return fc.double();
    case 'i8':
      return fc.integer({ min: -128, max: 127 });
    case 'u8':
      return fc.integer({ min: 0, max: 255 });
    case 'i16':
      return fc.integer({ min: -32768, max: 32767 });
    case 'u16':
      return fc.integer({ min: 0, max: 65535 });
    case 'i32':
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case 'u32':
      return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case 'i64':
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case 'u64':
      return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    case 'bool':
      return fc.boolean();
    case 'string': {
      const bytes = (spec as { bytes: number }).bytes;
      return fc.string({ unit: 'grapheme', maxLength: bytes }).filter((s) => Buffer.byteLength(s) <= bytes);
    }
    default: {
      const bytes = (spec as { bytes: number }).bytes;
      return fc.uint8Array({ maxLength: bytes });
    }
  }
}

/** What a consumer must read back for a published value. */
function expectedOf(spec: Spec, value: unknown): unknown {
  const type = typeof spec === 'string' ? spec : spec.type;
  if (type === 'f32') return Math.fround(value as number);
  if (type === 'bytes') {
    const padded = new Uint8Array((spec as { bytes: number }).bytes);
    padded.set(value as Uint8Array);
    return padded;
  }
  return value;
}

type Op = { kind: 'publish'; count: number } | { kind: 'poll'; count: number };
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('publish' as const), count: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('poll' as const), count: fc.integer({ min: 1, max: 20 }) }),
);

describe('property: random layouts, random messages, random interleavings', () => {
  it('a consumer reads back exactly what was published, in order, and loses exactly what a lap skips', () => {
    const scenario = layoutSpec.chain((fields) => {
      const message = fc.record(
        Object.fromEntries(Object.entries(fields).map(([k, s]) => [k, arbitraryValue(s)])),
      );
      return fc.record({
        fields: fc.constant(fields),
        capacity: fc.constantFrom(2, 4, 8, 16),
        messages: fc.array(message, { minLength: 1, maxLength: 60 }),
        ops: fc.array(op, { minLength: 1, maxLength: 30 }),
      });
    });
    fc.assert(
      fc.property(scenario, ({ fields, capacity, messages, ops }) => {
        const layout = defineMessage('Random', fields);
        const queue = SeqlockQueue.create(layout, { capacity });
        const producer = queue.producer();
        const consumer = SeqlockQueue.attach(layout, queue.buffer).consumer();
        const out = layout.create() as Record<string, unknown>;
        let published = 0;
        let position = 0; // the model's consumer position
        let lost = 0;
        for (const { kind, count } of ops) {
          for (let i = 0; i < count; i++) {
            if (kind === 'publish') {
              producer.publish(messages[published % messages.length] as never);
              published++;
              continue;
            }
            // The model: a message is overwritten once the producer is more than a ring ahead;
            // a lapped consumer resumes half a ring behind the head and counts the skip.
            if (published - position > capacity) {
              lost += published - capacity / 2 - position;
              position = published - capacity / 2;
            }
            const got = consumer.poll(out as never);
            expect(got).toBe(position < published);
            if (!got) continue;
            const sent = messages[position % messages.length] as Record<string, unknown>;
            for (const [name, spec] of Object.entries(fields)) {
              expect(out[name]).toStrictEqual(expectedOf(spec, sent[name]));
            }
            position++;
          }
        }
        expect(consumer.lost).toBe(lost);
        expect(consumer.received + consumer.lost).toBe(position);
      }),
      { numRuns: 300 },
    );
  });
});
