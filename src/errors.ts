/**
 * Every error dorsal throws on purpose is a `DorsalError` with a stable `code`, so that callers
 * (and the CLI) can tell them apart without parsing messages.
 *
 * @example
 * try { defineMessage('Bad', { x: 'f128' as never }); }
 * catch (e) { if (e instanceof DorsalError) console.error(e.code, e.message); }
 */
export class DorsalError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A message layout or a value that does not fit it: unknown type, wrong value type, too long. */
export class LayoutError extends DorsalError {
  constructor(message: string) {
    super('DORSAL_LAYOUT', message);
  }
}

/** An option out of range: a capacity that is not a power of two, a buffer of the wrong size. */
export class ConfigError extends DorsalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DORSAL_CONFIG', message, options);
  }
}

/**
 * A slot whose writer died half way: a `SeqlockVector` key left half written for longer than the
 * vector's poison timeout. Names the layout and the key; the next write takes the key over.
 */
export class PoisonedSlotError extends DorsalError {
  readonly layout: string;
  readonly index: number;

  constructor(message: string, layout: string, index: number) {
    super('DORSAL_POISONED_SLOT', message);
    this.layout = layout;
    this.index = index;
  }
}
