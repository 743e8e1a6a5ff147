import { threadWriter } from './binding.js';
import type { Logger } from './logger.js';

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
  const out = writer.logOut;
  out.t = writer.clock.now();
  out.span = writer.currentSpan();
  out.level = level;
  out.target = targetId;
  out.template = templateId;
  if (!writer.properties.write(properties)) {
    strings.countDroppedForString('logs');
    return;
  }
  writer.logs.publish(out);
}
