import { threadWriter } from './binding.js';
import { LogEvent } from './events.js';
import type { Logger } from './logger.js';

/** Where a log event's own fields sit in its slot (its properties' are `PropertyWriter`'s). */
export const T = LogEvent.offsetOf('t');
export const SPAN = LogEvent.offsetOf('span');
export const TARGET = LogEvent.offsetOf('target');
export const TEMPLATE = LogEvent.offsetOf('template');
export const LEVEL = LogEvent.offsetOf('level');

/** A property's value: numbers and booleans are stored as numbers, strings inline (≤ 48 bytes). */
export type PropertyValue = number | boolean | string;
/** Up to 4 properties of a log entry, at most 2 of them strings (see `LogEvent`). */
export type Properties = Readonly<Record<string, PropertyValue>>;

/**
 * Writes one log entry of `logger`'s target into this thread's logs queue. Nothing is allocated
 * once the target, the template and the property keys are interned (their first use). An entry
 * whose string cannot be interned (table full, or longer than 250 bytes) is dropped and counted.
 */
export function writeLog(logger: Logger, level: number, template: string, properties?: Properties): void {
  const writer = threadWriter();
  const strings = writer.strings;
  let targetId = logger.targetId;
  if (targetId < 0) {
    targetId = strings.intern(logger.target);
    if (targetId < 0) {
      strings.countDroppedForString('logs');
      return;
    }
    logger.targetId = targetId;
  }
  let templateId = logger.lastTemplateId;
  if (template !== logger.lastTemplate) {
    templateId = strings.intern(template);
    if (templateId < 0) {
      strings.countDroppedForString('logs');
      return;
    }
    logger.lastTemplate = template;
    logger.lastTemplateId = templateId;
  }
  // The thread's writer, unless this entry is logged by a getter of another's properties. An
  // entry without properties needs none of a writer's scratch (see `storeNone`).
  const props = properties === undefined || properties === null ? undefined : writer.properties.free();
  if (props !== undefined && !props.resolve(properties)) {
    strings.countDroppedForString('logs');
    return;
  }
  // In place: nothing between the claim and the commit can throw.
  const views = writer.logViews;
  const logs = writer.logs;
  const sequence = logs.sequence;
  const at = logs.claim();
  views.f64[(at + T) >> 3] = writer.clock.now();
  views.f64[(at + SPAN) >> 3] = writer.currentSpan();
  views.u32[(at + TARGET) >> 2] = targetId;
  views.u32[(at + TEMPLATE) >> 2] = templateId;
  views.u8[at + LEVEL] = level;
  if (props === undefined) writer.properties.storeNone(views, at, sequence);
  else props.store(views, at, sequence);
  logs.commit();
}
