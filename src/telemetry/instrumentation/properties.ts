import { utf8Length } from '../../queues/codec.js';
import { CachedId } from './cached-id.js';
import {
  type LogEvent,
  LogFlags,
  MAX_PROPERTIES,
  MAX_TEXT_BYTES,
  MAX_TEXT_PROPERTIES,
  PropertyType,
} from './events.js';
import type { Properties } from './log-writer.js';
import type { StringInterner } from './string-table.js';

/**
 * Fills the property fields of a thread's reused log event: each key interned, each value
 * stored by type. Bounded: the first 4 properties, at most 2 of them strings; the rest are left
 * out and the event says so (`flags`).
 *
 * String values are inline, not interned: a value is data (an order id, an error's text), often
 * of unbounded variety, and would fill the thread's append-only table, after which every event
 * with a new string would be dropped. Inline, a value costs its bytes in this event only and no
 * lookup; it is cut at 48 bytes. Keys are interned: they are as static as the template.
 *
 * The event is reused, so only the slots the previous entry filled are cleared (an entry with no
 * properties after one with none touches no property field). Slots are filled through a switch,
 * not by computed names (`'key' + i`), which would allocate a string per property.
 */
export class PropertyWriter {
  private readonly strings: StringInterner;
  private readonly out: LogEvent;
  /** The last key of each slot and its id. */
  private readonly keys: readonly CachedId[] = [
    new CachedId(),
    new CachedId(),
    new CachedId(),
    new CachedId(),
  ];
  /** Slots and inline texts the event's fields hold from the previous entry. */
  private slots = 0;
  private texts = 0;

  constructor(strings: StringInterner, out: LogEvent) {
    this.strings = strings;
    this.out = out;
  }

  /** Fills the fields from `properties`; false if a key could not be interned (drop the entry). */
  write(properties: Properties | undefined): boolean {
    const out = this.out;
    let n = 0;
    let texts = 0;
    let flags = 0;
    if (properties !== undefined && properties !== null) {
      for (const key in properties) {
        if (n === MAX_PROPERTIES) {
          flags |= LogFlags.PROPERTIES_LEFT_OUT;
          break;
        }
        const value = properties[key];
        let type: number;
        let number: number;
        if (typeof value === 'number') {
          type = PropertyType.NUMBER;
          number = value;
        } else if (typeof value === 'boolean') {
          type = PropertyType.BOOLEAN;
          number = value ? 1 : 0;
        } else if (typeof value === 'string' && texts < MAX_TEXT_PROPERTIES) {
          type = PropertyType.STRING;
          number = texts;
          const text = fitText(value);
          if (text !== value) flags |= LogFlags.TEXT_CUT;
          if (texts++ === 0) out.text0 = text;
          else out.text1 = text;
        } else {
          flags |= LogFlags.PROPERTIES_LEFT_OUT;
          continue;
        }
        const keyId = this.keys[n]!.of(this.strings, key);
        if (keyId < 0) return false;
        setProperty(out, n++, keyId, type, number);
      }
    }
    for (let slot = n; slot < this.slots; slot++) setProperty(out, slot, 0, PropertyType.NONE, 0);
    if (texts < 1 && this.texts > 0) out.text0 = '';
    if (texts < 2 && this.texts > 1) out.text1 = '';
    this.slots = n;
    this.texts = texts;
    out.flags = flags;
    return true;
  }
}

function setProperty(out: LogEvent, slot: number, key: number, type: number, value: number): void {
  switch (slot) {
    case 0:
      out.key0 = key;
      out.type0 = type;
      out.value0 = value;
      return;
    case 1:
      out.key1 = key;
      out.type1 = type;
      out.value1 = value;
      return;
    case 2:
      out.key2 = key;
      out.type2 = type;
      out.value2 = value;
      return;
    default:
      out.key3 = key;
      out.type3 = type;
      out.value3 = value;
  }
}

/** `text`, or its longest prefix of at most 48 UTF-8 bytes that ends on a whole character. */
export function fitText(text: string): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes: a short string fits without being measured.
  if (text.length * 3 <= MAX_TEXT_BYTES) return text;
  if (text.length <= MAX_TEXT_BYTES && utf8Length(text) <= MAX_TEXT_BYTES) return text;
  let bytes = 0;
  let end = 0;
  while (end < text.length) {
    const c = text.charCodeAt(end);
    const pair = c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(end + 1) & 0xfc00) === 0xdc00;
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : pair ? 4 : 3;
    if (bytes + size > MAX_TEXT_BYTES) break;
    bytes += size;
    end += pair ? 2 : 1;
  }
  return text.slice(0, end);
}
