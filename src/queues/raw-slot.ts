import { ConfigError } from '../errors.js';
import type { BoundCodec, BufferViews } from './codec.js';
import type { QueueCore } from './queue-core.js';
import { QueueHeader as H } from './queue-header.js';

/**
 * Where a raw consumer copies each message: its bytes as they sit in the slot (the envelope, if
 * the queue has one, then the message), as Int32 words into `words` from index `at`. The caller
 * moves `at` on after each message it keeps. Integer words copy any bit pattern exactly (a copy
 * through Float64 may change a NaN's bits).
 */
export interface RawSlot {
  words: Int32Array;
  at: number;
}

/** What a consumer decodes with: a layout, or the raw copy of `rawSlotSource`. */
export interface CodecSource<M> {
  bind(views: BufferViews): BoundCodec<M>;
}

/** Int32 words of a queue's slot payload (envelope and message; both sizes are multiples of 8). */
export function rawSlotWords(core: QueueCore): number {
  return (core.views.i32[H.ENVELOPE_SIZE]! + core.views.i32[H.MESSAGE_SIZE]!) >> 2;
}

function refuseRoom(at: number, words: number, length: number): never {
  throw new ConfigError(
    `a raw slot of ${words} words does not fit from word ${at} of an array of ${length}: give it rawWords words from 'at'`,
  );
}

/** The codec of a raw consumer: `read` copies the payload words of the slot whose message starts at `base`. */
export function rawSlotSource(core: QueueCore): CodecSource<RawSlot> {
  const words = rawSlotWords(core);
  const envelopeBytes = core.messageByte - H.SLOT_PAYLOAD_BYTE;
  const refuse = (): never => {
    throw new ConfigError('a raw consumer only reads');
  };
  return {
    bind: (views) => ({
      check: refuse,
      write: refuse,
      read(base: number, out: RawSlot): void {
        const src = views.i32;
        const from = (base - envelopeBytes) >> 2;
        const dst = out.words;
        const at = out.at;
        // Before any copy, so that the consumer stays on this message: stores past the array's
        // end are dropped by the language, and the message would be counted read, cut.
        if (!(Number.isInteger(at) && at >= 0 && at + words <= dst.length)) refuseRoom(at, words, dst.length);
        for (let i = 0; i < words; i++) dst[at + i] = src[from + i]!;
      },
    }),
  };
}
