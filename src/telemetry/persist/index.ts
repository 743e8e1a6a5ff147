/**
 * The persister: what `new System(spine, { persist })` attaches (registered by the public face,
 * loaded on first use). The reading of what it wrote, and the shipping of a plain process's
 * instrumentation, are the `dorsal/persist` subpath (src/persist.ts).
 */
import type { AttachmentFactory } from '../../actors/index.js';
import { Persister } from './persister.js';

export const persistAttachment: AttachmentFactory = (options) => new Persister(options);
